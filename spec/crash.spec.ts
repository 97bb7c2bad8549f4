// Guarantees 1 and 2 under SIGKILL: a child streams self-checking files through
// create() and reports each name once 'finish' fired; the parent kills it at a
// random moment, round after round, into the same store. After every round
// each reported name is in new/ and verifies, nothing in new/ is partial, and
// whatever the kill interrupted is left in tmp/ only, where clean() finds it.
import { randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { contentsOf, reported, rounds, SOAK, startWorker, TIMEOUT, verifiesSelf } from './reliability.js';
import { tempStore } from './helpers.js';

interface CrashCase {
  title: string;
  durability: 'full' | 'none';
  /** Caller-chosen names (commit by link + unlink) instead of generated ones (rename). */
  named: boolean;
  rounds: number;
}

const cases: CrashCase[] = [
  { title: 'durability full, generated names', durability: 'full', named: false, rounds: rounds(10, 150) },
  { title: 'durability none, caller-chosen names', durability: 'none', named: true, rounds: rounds(10, 150) },
];

/** Totals over every case, printed once at the end (the README's figures come from a soak run). */
const totals = { rounds: 0, reported: 0, leftovers: 0 };

it.each(cases)(
  '$title: every reported file survives SIGKILL whole, leftovers only in tmp/',
  async (c) => {
    const store = await tempStore({ durability: c.durability });
    const committed = new Set<string>();
    for (let round = 0; round < c.rounds; round++) {
      const worker = startWorker('crash-writer', {
        root: store.root,
        durability: c.durability,
        named: c.named,
        tag: round,
        concurrency: 4,
        maxBytes: 96 * 1024,
      });
      await worker.waitFor('started');
      await new Promise((resolve) => setTimeout(resolve, randomInt(5, 120)));
      worker.child.kill('SIGKILL');
      const exit = await worker.exit;
      expect(exit.signal, exit.stderr).toBe('SIGKILL');

      for (const name of reported(worker, 'done:')) committed.add(name);
      const inNew = await contentsOf(store.root, 'new');
      for (const name of committed) expect(inNew.has(name), `reported ${name} missing from new/`).toBe(true);
      for (const [name, data] of inNew) expect(verifiesSelf(data), `partial file in new/: ${name}`).toBe(true);
      expect(inNew.size).toBeGreaterThanOrEqual(committed.size);
      expect(await readdir(store.root)).toEqual(expect.arrayContaining(['tmp', 'new', 'cur']));
      expect((await readdir(store.root)).length).toBe(3);
      expect(await readdir(`${store.root}/cur`)).toEqual([]);
      totals.rounds++;
    }
    totals.reported += committed.size;
    const leftovers = (await readdir(`${store.root}/tmp`)).sort();
    totals.leftovers += leftovers.length;
    expect(committed.size).toBeGreaterThan(0);

    // clean() removes exactly the leftovers (no writer of this process is live) and nothing committed
    const inNew = await contentsOf(store.root, 'new');
    expect((await store.clean({ olderThan: 0 })).sort()).toEqual(leftovers);
    expect(await readdir(`${store.root}/tmp`)).toEqual([]);
    // compared with Buffer.equals: a deep toEqual over megabytes of Buffers takes a minute
    const after = await contentsOf(store.root, 'new');
    expect([...after.keys()].sort()).toEqual([...inNew.keys()].sort());
    for (const [name, data] of after)
      expect(data.equals(inNew.get(name) as Buffer), `changed by clean: ${name}`).toBe(true);
  },
  TIMEOUT,
);

it('reports the totals', () => {
  // Printed so a soak run (FILESTORE_SOAK=1) yields the README's figures.
  console.log(
    `crash: ${totals.rounds} SIGKILL rounds${SOAK ? ' (soak)' : ''}, ${totals.reported} committed files verified, ${totals.leftovers} files left in tmp/, 0 lost`,
  );
  expect(totals.rounds).toBe(cases.reduce((n, c) => n + c.rounds, 0));
});
