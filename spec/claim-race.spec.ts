// Several real processes race to claim the same files: every file must be
// claimed exactly once overall, and a lost race is never a rejection (issue
// 12: consumers removing their files at once made losers see EEXIST with the
// target gone, 4 of 1,200 files in one local run).
import { spawn } from 'node:child_process';
import { finished } from 'node:stream/promises';
import { expect, it } from 'vitest';
import { DIST, namesIn, tempStore } from './helpers.js';

const CLAIMER = `
import { FileStore } from ${JSON.stringify(DIST)};
const [root, order] = process.argv.slice(1);
const store = new FileStore(root);
const names = [];
for await (const entry of store.list('new')) names.push(entry.name);
if (order === 'reverse') names.reverse();
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const won = [];
for (const name of names) if (await store.claim(name)) won.push(name);
process.stdout.write(JSON.stringify(won));
`;

function runClaimer(root: string, order: string, script = CLAIMER) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', script, root, order], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    child.on('exit', () => reject(new Error('claimer exited before it was ready')));
  });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('ready\n')) markReady();
  });
  const exited = new Promise<string[]>((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.slice('ready\n'.length)) as string[])
        : reject(new Error(`claimer exited ${code}`)),
    ),
  );
  return { child, ready, exited };
}

it('claims every file exactly once across processes', async () => {
  const store = await tempStore({ durability: 'none' });
  const writers = Array.from({ length: 2400 }, (_, i) => {
    const w = store.create();
    w.end(`job ${i}`);
    return w;
  });
  await Promise.all(writers.map((w) => finished(w)));
  const all = writers.map((w) => w.name).sort();

  const claimers = ['forward', 'reverse', 'forward', 'reverse', 'forward'].map((order) =>
    runClaimer(store.root, order),
  );
  // every child has listed new/ before any starts claiming
  await Promise.all(claimers.map((c) => c.ready));
  for (const { child } of claimers) child.stdin.end('go\n');
  const results = await Promise.all(claimers.map((c) => c.exited));

  const claimed = results.flat();
  expect(claimed).toHaveLength(all.length);
  expect([...claimed].sort()).toEqual(all);
  // the race was real: more than one process won something
  expect(results.filter((r) => r.length > 0).length).toBeGreaterThan(1);
  expect(await namesIn(store, 'new')).toEqual([]);
  expect(await namesIn(store, 'cur')).toEqual(all);
});

const CONSUMER = `
import { FileStore } from ${JSON.stringify(DIST)};
const [root] = process.argv.slice(1);
const store = new FileStore(root, { durability: 'none' });
process.stdout.write('ready\\n');
await new Promise((resolve) => process.stdin.once('data', resolve));
const won = [];
try {
  // remove each claimed file at once: the winner's cur/ name vanishes while losers still look at it
  for await (const entry of store.consume()) {
    won.push(entry.name);
    await store.remove(entry.name, 'cur');
  }
} catch (err) {
  process.stdout.write(JSON.stringify({ rejected: err.code ?? String(err) }));
  process.exit(0);
}
process.stdout.write(JSON.stringify(won));
`;

it('consumers that remove each file at once: every file claimed exactly once, no rejection', async () => {
  const store = await tempStore({ durability: 'none' });
  const writers = Array.from({ length: 3000 }, (_, i) => {
    const w = store.create(`job-${String(i).padStart(4, '0')}`);
    w.end(`job ${i}`);
    return w;
  });
  await Promise.all(writers.map((w) => finished(w)));
  const all = writers.map((w) => w.name).sort();

  const consumers = Array.from({ length: 4 }, () => runClaimer(store.root, '', CONSUMER));
  await Promise.all(consumers.map((c) => c.ready));
  for (const { child } of consumers) child.stdin.end('go\n');
  const results = await Promise.all(consumers.map((c) => c.exited));

  for (const r of results) expect(Array.isArray(r), JSON.stringify(r)).toBe(true);
  const claimed = results.flat();
  expect([...claimed].sort()).toEqual(all);
  expect(results.filter((r) => r.length > 0).length).toBeGreaterThan(1);
  expect(await namesIn(store, 'new')).toEqual([]);
  expect(await namesIn(store, 'cur')).toEqual([]);
});
