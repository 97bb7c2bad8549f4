// Scenario 6: several processes racing to claim the same files: claims/s,
// and every file claimed exactly once.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, ratio, withDir } from './harness.mjs';

export const title = 'Claims: processes racing for the files of new/';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/** Contender (runs in a child): claims every file it can from `new/`, 16 at a time; resolves with the names it won. */
export async function claimAll({ dir, concurrency = 16 }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir, { durability: 'none' });
  const won = [];
  let lost = 0;
  const t0 = performance.now();
  const entries = store.list('new');
  const worker = async () => {
    for (;;) {
      const { value: entry, done } = await entries.next();
      if (done) return;
      if (await store.claim(entry.name)) won.push(entry.name);
      else lost++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { won, lost, start: performance.timeOrigin + t0, end: performance.timeOrigin + performance.now() };
}

/** Fills `new/` with `files` empty files, runs `processes` claimers at once, checks the outcome. */
export async function claimRun(dir, processes, files, child) {
  const area = join(dir, 'new');
  mkdirSync(area, { recursive: true });
  mkdirSync(join(dir, 'cur'));
  mkdirSync(join(dir, 'tmp'));
  for (let i = 0; i < files; i++) closeSync(openSync(join(area, `f${i}`), 'wx'));
  const results = await Promise.all(Array.from({ length: processes }, () => child({ dir })));
  const seconds = (Math.max(...results.map((r) => r.end)) - Math.min(...results.map((r) => r.start))) / 1000;
  const claims = results.flatMap((r) => r.won);
  const unique = new Set(claims);
  const inCur = (await readdir(join(dir, 'cur'))).length;
  const leftInNew = (await readdir(area)).length;
  return {
    value: claims.length / seconds,
    claims: claims.length,
    duplicates: claims.length - unique.size,
    unclaimed: files - unique.size,
    inCur,
    leftInNew,
    lost: results.reduce((s, r) => s + r.lost, 0),
  };
}

export async function run(ctx) {
  const files = 20_000;
  ctx.note(
    `${fmt(files)} files, each process claims 16 at a time while listing, ${ctx.rounds} rounds, dir ${ctx.cpuDir}`,
  );
  const child = (args) => ctx.child(import.meta.url, claimAll.name, args);
  const one = (processes) => () => withDir(ctx.cpuDir, (dir) => claimRun(dir, processes, files, child));
  const summary = await ctx.alternate('claims', { '4 processes': one(4), '1 process': one(1) });
  const four = summary['4 processes'];
  const single = summary['1 process'];
  ctx.measure('4 processes, claims/s', `${fmt(four.median)} (lost races ${fmt(four.results[0].lost)} in round 1)`);
  ctx.measure('1 process, claims/s', fmt(single.median));
  ctx.measure('4 processes / 1 process', ratio(four.median / single.median));
  const bad = four.results.filter((r) => r.duplicates > 0 || r.unclaimed > 0 || r.inCur !== files || r.leftInNew > 0);
  ctx.check(
    `4 processes: duplicates / unclaimed (${ctx.rounds} x ${fmt(files)})`,
    `${four.results.reduce((s, r) => s + r.duplicates, 0)} / ${four.results.reduce((s, r) => s + r.unclaimed, 0)}`,
    '0 / 0',
    bad.length === 0,
  );
}
