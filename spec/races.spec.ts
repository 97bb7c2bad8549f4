// Guarantees 4 and 5 across processes: many children released at once (each
// prints "ready", the parent answers "go") race over one store, and each
// reports what it did, so every claim can be checked against the disk:
// nothing lost, nothing duplicated, no collision, no unhandled error.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
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

afterAll(() => console.log(`races: ${figures.processes} racing processes over ${figures.files} files, none lost, duplicated or colliding`));

function expectNoDuplicates(names: string[]): void {
  expect(new Set(names).size).toBe(names.length);
}

it('many processes prepare one store at once', async () => {
  const root = join(await tempDir(), 'a', 'b', 'store');
  const workers = Array.from({ length: rounds(8, 24) }, () => startWorker('prepare', { root }));
  await runTogether(workers);
  for (const w of workers) expect(w.lines).toContain('prepared');
  figures.processes += workers.length;
  expect(await tree(root)).toEqual(['cur/', 'new/', 'tmp/']);
}, TIMEOUT);

it('many claimers over the same files: each file claimed exactly once', async () => {
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
}, TIMEOUT);

it('producers and consumers at full speed: every file consumed once, whole', async () => {
  const store = await tempStore({ durability: 'none' });
  const producers = Array.from({ length: 2 }, () => startWorker('produce', { root: store.root, count: rounds(250, 5000) }));
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
}, TIMEOUT);

it('move and remove of the same files from two processes: each file moved or removed, never both places', async () => {
  const store = await tempStore({ durability: 'none' });
  const names = await fill(store, rounds(300, 3000));
  const mover = startWorker('contend', { root: store.root, op: 'move', names });
  const remover = startWorker('contend', { root: store.root, op: 'remove', names: [...names].reverse() });
  await runTogether([mover, remover]);

  const outcome = (lines: string[]) => new Map(lines.map((l) => [l.slice(l.indexOf(':') + 1), l.slice(0, l.indexOf(':'))]));
  const moved = outcome(mover.lines.filter((l) => l !== 'ready'));
  const removed = outcome(remover.lines.filter((l) => l !== 'ready'));
  const inCur = new Set(await namesIn(store, 'cur'));
  for (const name of names) {
    expect(['ok', 'ENOENT']).toContain(moved.get(name));
    expect(['ok', 'ENOENT']).toContain(removed.get(name));
    // someone won; the file is in cur/ exactly when the move succeeded
    expect(moved.get(name) === 'ok' || removed.get(name) === 'ok').toBe(true);
    expect(inCur.has(name)).toBe(moved.get(name) === 'ok');
  }
  expect(await namesIn(store, 'new')).toEqual([]);
  expect(await namesIn(store, 'tmp')).toEqual([]);
  figures.processes += 2;
  figures.files += names.length;
}, TIMEOUT);

const unshare = IS_ROOT ? probe(['unshare', '--pid', '--fork', 'true']) : { ok: false, reason: 'needs root for unshare --pid' };

describe.skipIf(!unshare.ok)(`writers in separate PID namespaces${unshare.ok ? '' : ` (skipped: ${unshare.reason})`}`, () => {
  it('each is pid 1, all share one hostname, and their generated names never collide', async () => {
    const store = await tempStore({ durability: 'none' });
    const count = rounds(240, 4000);
    const writers = Array.from({ length: 4 }, (_, i) =>
      startWorker('pid-writer', { root: store.root, hostname: 'shared-volume', count, lanes: 4, id: `w${i}` }, ['unshare', '--pid', '--fork']),
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
  }, TIMEOUT);
});
