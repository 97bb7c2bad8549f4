// Several real processes race to claim the same files: every file must be
// claimed exactly once overall.
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

function runClaimer(root: string, order: string) {
  const child = spawn(process.execPath, ['--input-type=module', '-e', CLAIMER, root, order], {
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
