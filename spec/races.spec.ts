// Guarantees 4 and 5 across processes: many children released at once (each
// prints "ready", the parent answers "go") race over one store, and each
// reports what it did, so every claim can be checked against the disk:
// nothing lost, nothing duplicated, no collision, no unhandled error.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { namesIn, tempDir, tempStore } from './helpers.js';
import { IS_ROOT, probe, reported, rounds, runTogether, startWorker, TIMEOUT, tree } from './reliability.js';

async function fill(store: FileStore, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) {
    const name = `file-${String(i).padStart(4, '0')}`;
    await pipeline(Readable.from([Buffer.from(name)]), store.create(name));
    names.push(name);
  }
  return names;
}

/** Totals for the README's figures. */
const figures = { processes: 0, files: 0 };

afterAll(() =>
  console.log(
    `races: ${figures.processes} racing processes over ${figures.files} files, none lost, duplicated or colliding`,
  ),
);

function expectNoDuplicates(names: string[]): void {
  expect(new Set(names).size).toBe(names.length);
}

it(
  'many processes prepare one store at once',
  async () => {
    const root = join(await tempDir(), 'a', 'b', 'store');
    const workers = Array.from({ length: rounds(8, 24) }, () => startWorker('prepare', { root }));
    await runTogether(workers);
    for (const w of workers) expect(w.lines).toContain('prepared');
    figures.processes += workers.length;
    expect(await tree(root)).toEqual(['cur/', 'new/', 'tmp/']);
  },
  TIMEOUT,
);

it(
  'many claimers over the same files: each file claimed exactly once',
  async () => {
    const store = await tempStore({ durability: 'none' });
    const names = await fill(store, rounds(300, 3000));
    const workers = Array.from({ length: 6 }, () => startWorker('claim', { root: store.root }));
    await runTogether(workers);
    const claimed = workers.flatMap((w) => reported(w, 'claimed:'));
    expectNoDuplicates(claimed);
    expect(claimed.sort()).toEqual(names);
    figures.processes += workers.length;
    figures.files += names.length;
    expect(await namesIn(store, 'cur')).toEqual(names);
    expect(await namesIn(store, 'new')).toEqual([]);
  },
  TIMEOUT,
);

it(
  'producers and consumers at full speed: every file consumed once, whole',
  async () => {
    const store = await tempStore({ durability: 'none' });
    const producers = Array.from({ length: 2 }, () =>
      startWorker('produce', { root: store.root, count: rounds(250, 5000) }),
    );
    const consumers = Array.from({ length: 3 }, () => startWorker('consume', { root: store.root }));
    const all = [...producers, ...consumers];
    await Promise.all(all.map((w) => w.waitFor('ready')));
    for (const w of all) w.send('go');
    const producerExits = await Promise.all(producers.map((w) => w.exit));
    for (const e of producerExits) expect(e.code, e.stderr).toBe(0);
    for (const w of consumers) w.send('stop');
    const consumerExits = await Promise.all(consumers.map((w) => w.exit));
    for (const e of consumerExits) expect(e.code, e.stderr).toBe(0);

    const made = producers.flatMap((w) => reported(w, 'made:')).sort();
    const claimed = consumers.flatMap((w) => reported(w, 'claimed:')).sort();
    expect(consumers.flatMap((w) => reported(w, 'bad:'))).toEqual([]);
    expectNoDuplicates(made);
    expectNoDuplicates(claimed);
    expect(claimed).toEqual(made);
    figures.processes += all.length;
    figures.files += made.length;
    expect(await namesIn(store, 'cur')).toEqual(made);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  },
  TIMEOUT,
);

/**
 * Two processes over the same files in new/, in opposite orders. What each
 * operation may report: a move that loses to a move sees the winner's link in
 * cur/ (EEXIST) or the source already gone (ENOENT), depending on timing.
 */
const contests: Array<{ ops: ['move' | 'remove', 'move' | 'remove']; allowed: Record<'move' | 'remove', string[]> }> = [
  { ops: ['move', 'remove'], allowed: { move: ['ok', 'ENOENT'], remove: ['ok', 'ENOENT'] } },
  { ops: ['move', 'move'], allowed: { move: ['ok', 'ENOENT', 'EEXIST'], remove: [] } },
  { ops: ['remove', 'remove'], allowed: { move: [], remove: ['ok', 'ENOENT'] } },
];

it.each(contests)(
  '$ops.0 against $ops.1 of the same files from two processes, 8 at a time each, in opposite orders: each file in exactly one place or removed, never both',
  async ({ ops, allowed }) => {
    const store = await tempStore({ durability: 'none' });
    const names = await fill(store, rounds(300, 3000));
    const workers = ops.map((op, i) =>
      startWorker('contend', { root: store.root, op, parallel: 8, names: i === 0 ? names : [...names].reverse() }),
    );
    await runTogether(workers);

    const outcome = (lines: string[]) =>
      new Map(lines.filter((l) => l !== 'ready').map((l) => [l.slice(l.indexOf(':') + 1), l.slice(0, l.indexOf(':'))]));
    const results = workers.map((w) => outcome(w.lines));
    const inCur = new Set(await namesIn(store, 'cur'));
    for (const name of names) {
      const got = results.map((r) => r.get(name) as string);
      for (const [i, result] of got.entries())
        expect(allowed[ops[i] as 'move' | 'remove'], `${ops[i]} ${name}`).toContain(result);
      // someone did it; a remove may succeed as well after a move linked the file and before it unlinked the source
      const wins = got.filter((result) => result === 'ok').length;
      expect(wins).toBeGreaterThanOrEqual(1);
      const moves = got.filter((result, i) => ops[i] === 'move' && result === 'ok').length;
      expect(moves).toBeLessThanOrEqual(1);
      if (!ops.includes('move')) expect(wins).toBe(1);
      expect(inCur.has(name)).toBe(moves === 1);
    }
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    figures.processes += 2;
    figures.files += names.length;
  },
  TIMEOUT,
);

const unshare = IS_ROOT
  ? probe(['unshare', '--pid', '--fork', 'true'])
  : { ok: false, reason: 'needs root for unshare --pid' };

describe.skipIf(!unshare.ok)(
  `writers in separate PID namespaces${unshare.ok ? '' : ` (skipped: ${unshare.reason})`}`,
  () => {
    it(
      'each is pid 1, all share one hostname, and their generated names never collide',
      async () => {
        const store = await tempStore({ durability: 'none' });
        const count = rounds(240, 4000);
        const writers = Array.from({ length: 4 }, (_, i) =>
          startWorker('pid-writer', { root: store.root, hostname: 'shared-volume', count, lanes: 4, id: `w${i}` }, [
            'unshare',
            '--pid',
            '--fork',
          ]),
        );
        await runTogether(writers);
        for (const w of writers) expect(reported(w, 'pid:')).toEqual(['1']);
        const made = writers.flatMap((w) => reported(w, 'made:'));
        expect(made.length).toBe(4 * count);
        expectNoDuplicates(made);
        expect(await namesIn(store, 'new')).toEqual([...made].sort());
        figures.processes += writers.length;
        figures.files += made.length;
        for (const [i, w] of writers.entries()) {
          for (const name of reported(w, 'made:')) {
            expect(name).toMatch(/P1Q\d+R[0-9a-f]{8}\.shared-volume$/);
            expect(await readFile(join(store.root, 'new', name), 'utf8')).toBe(`w${i}`);
          }
        }
      },
      TIMEOUT,
    );
  },
);
