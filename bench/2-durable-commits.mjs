// Scenario 2: durable commits on the real disk. The library's `full` (file
// fsync, then a directory fsync shared by concurrent commits) against the
// same by hand with callback fs (file and directory fsync per commit) and
// write-file-atomic with fsync (the file only): a stronger guarantee should
// cost nothing.
import { commitLoop } from './commit-loop.mjs';
import { fmt, median, ratio, withDir } from './harness.mjs';

export const title = 'Durable commits on the real disk, 64 writers, 1 KiB';

const LOOP = new URL('./commit-loop.mjs', import.meta.url).href;

export async function run(ctx) {
  const writers = 64;
  const ms = ctx.full ? 3000 : 700;
  const warmupMs = ctx.full ? 300 : 150;
  const rounds = Math.max(ctx.rounds, 5); // the disk is shared and noisy: more, shorter rounds
  ctx.note(`${ms} ms measured after ${warmupMs} ms warm-up per run, ${rounds} rounds, dir ${ctx.diskDir}`);
  const run1 = (contender, durability) => () =>
    withDir(ctx.diskDir, (dir) =>
      ctx.child(LOOP, commitLoop.name, { contender, dir, writers, ms, warmupMs, durability }),
    );
  const summary = await ctx.alternate(
    'durable',
    {
      'maildir-filestore full': run1('maildir-filestore', 'full'),
      'callback fs, file + directory fsync': run1('callback fs, file + directory fsync', 'full'),
      'write-file-atomic fsync': run1('write-file-atomic', 'full'),
    },
    rounds,
  );
  const lib = summary['maildir-filestore full'].median;
  const wfa = summary['write-file-atomic fsync'].median;
  const hand = summary['callback fs, file + directory fsync'].median;
  const cpu = (name) => `${fmt(median(summary[name].results.map((r) => r.cpuMicrosPerCommit)), 1)} us`;
  ctx.measure(
    'maildir-filestore, durability full',
    `${fmt(lib)} commits/s, CPU ${cpu('maildir-filestore full')} per commit`,
  );
  ctx.measure(
    'callback fs, file + directory fsync',
    `${fmt(hand)} commits/s, CPU ${cpu('callback fs, file + directory fsync')} per commit`,
  );
  ctx.measure('write-file-atomic, fsync: true', `${fmt(wfa)} commits/s`);
  const errors = Object.values(summary).flatMap((s) => s.results.flatMap((r) => Object.keys(r.errors)));
  if (errors.length > 0) ctx.check('errors', errors.join(', '), 'none', false);
  ctx.check(
    'maildir-filestore full / callback fs, file + directory fsync',
    ratio(lib / hand),
    '>= 1.00x',
    lib / hand >= 1,
  );
  ctx.check('maildir-filestore full / write-file-atomic fsync', ratio(lib / wfa), '>= 1.00x', lib / wfa >= 1);
}
