// Scenario 3: several writer processes (64 concurrent writers each) committing
// into one store; aggregate commits/s, and every file arrives exactly once.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commitLoop } from './commit-loop.mjs';
import { fmt, ratio, withDir } from './harness.mjs';

export const title = 'Several processes x 64 writers into one store, durability none';

const LOOP = new URL('./commit-loop.mjs', import.meta.url).href;

/**
 * Runs `processes` children at once, each committing `perProcess` files whose
 * content is `<process>:<index>`; resolves with commits/s over the wall time
 * and the arrival check of `new/`.
 */
export async function storeRun(
  ctx,
  dir,
  processes,
  perProcess,
  child = (args) => ctx.child(LOOP, commitLoop.name, args),
) {
  const t0 = performance.now();
  const results = await Promise.all(
    Array.from({ length: processes }, (_, p) =>
      child({ contender: 'maildir-filestore', dir, writers: 64, count: perProcess, tag: `p${p}` }),
    ),
  );
  const seconds = (performance.now() - t0) / 1000;
  const names = await readdir(join(dir, 'new'));
  const seen = new Map();
  for (const name of names) {
    const body = await readFile(join(dir, 'new', name), 'utf8');
    seen.set(body, (seen.get(body) ?? 0) + 1);
  }
  let missing = 0;
  let duplicated = 0;
  for (let p = 0; p < processes; p++) {
    for (let i = 0; i < perProcess; i++) {
      const n = seen.get(`p${p}:${i}\n`) ?? 0;
      if (n === 0) missing++;
      if (n > 1) duplicated += n - 1;
    }
  }
  const leftInTmp = (await readdir(join(dir, 'tmp'))).length;
  const errors = results.flatMap((r) => Object.keys(r.errors));
  const committed = results.reduce((sum, r) => sum + r.commits, 0);
  return { value: committed / seconds, files: names.length, missing, duplicated, leftInTmp, errors };
}

export async function run(ctx) {
  const perProcess = ctx.full ? 20_000 : 1_500;
  ctx.note(`${fmt(perProcess)} files per process (64 writers each), ${ctx.rounds} rounds, dir ${ctx.cpuDir}`);
  const counts = [1, 2, 4];
  const contenders = Object.fromEntries(
    counts.map((n) => [`${n} processes`, () => withDir(ctx.cpuDir, (dir) => storeRun(ctx, dir, n, perProcess))]),
  );
  const summary = await ctx.alternate('processes', contenders);
  for (const n of counts) {
    const s = summary[`${n} processes`];
    ctx.measure(`${n} x 64 writers, aggregate`, `${fmt(s.median)} commits/s`);
    if (n > 1) ctx.measure(`${n} processes / 1 process`, ratio(s.median / summary['1 processes'].median));
  }
  for (const n of counts.filter((c) => c > 1)) {
    const bad = summary[`${n} processes`].results.filter(
      (r) => r.missing > 0 || r.duplicated > 0 || r.leftInTmp > 0 || r.errors.length > 0 || r.files !== n * perProcess,
    );
    const detail = bad.map(
      (r) => `missing ${r.missing}, duplicated ${r.duplicated}, tmp ${r.leftInTmp}, errors ${r.errors.join('/') || 0}`,
    );
    ctx.check(
      `${n} processes: every file arrived once (${ctx.rounds} x ${fmt(n * perProcess)})`,
      bad.length === 0 ? 'yes' : detail.join('; '),
      'all, once',
      bad.length === 0,
    );
  }
}
