// Scenario 1: commits/s of 1 KiB files from 1-256 concurrent writers in one
// process, durability none, on the CPU-bound dir, against the same syscalls
// by hand and against the atomic-write packages users would otherwise pick.
import { commitLoop, NODE_CONTENDERS, pythonMaildirAdd } from './commit-loop.mjs';
import { fmt, hasCommand, ratio, withDir } from './harness.mjs';

export const title = 'Commit throughput, 1 KiB files, durability none, one process';

const LOOP = new URL('./commit-loop.mjs', import.meta.url).href;
const LIB = 'maildir-filestore';

export async function run(ctx) {
  const writerCounts = [1, 16, 64, 256];
  const ms = ctx.full ? 2000 : 300;
  const warmupMs = ctx.full ? 300 : 100;
  ctx.note(`${ms} ms measured after ${warmupMs} ms warm-up per run, ${ctx.rounds} rounds, dir ${ctx.cpuDir}`);
  const python = hasCommand('python3');
  if (!python) ctx.note('python3 not found: mailbox.Maildir.add skipped');

  const medians = {};
  for (const writers of writerCounts) {
    const contenders = {};
    for (const contender of NODE_CONTENDERS) {
      contenders[contender] = () =>
        withDir(ctx.cpuDir, (dir) => ctx.child(LOOP, commitLoop.name, { contender, dir, writers, ms, warmupMs }));
    }
    if (python && writers === 1) {
      contenders['python mailbox.Maildir.add'] = () => withDir(ctx.cpuDir, (dir) => pythonMaildirAdd({ dir, ms, warmupMs }));
    }
    const summary = await ctx.alternate(`${writers} writers`, contenders);
    medians[writers] = summary;
    for (const [name, { median: perSecond }] of Object.entries(summary)) ctx.point(name, writers, perSecond);
    const line = Object.entries(summary).map(([name, s]) => `${name} ${fmt(s.median)}/s`).join(', ');
    console.log(`  ${writers} writers: ${line}`);
  }

  for (const writers of writerCounts) {
    ctx.measure(`${LIB}, ${writers} writers`, `${fmt(medians[writers][LIB].median)} commits/s`);
  }
  const at64 = medians[64];
  ctx.check(
    `${LIB} / callback fs, 64 writers`,
    ratio(at64[LIB].median / at64['callback fs'].median),
    '>= 0.80x',
    at64[LIB].median / at64['callback fs'].median >= 0.8,
  );
  ctx.check(
    `${LIB} / write-file-atomic (fsync off), 64 writers`,
    ratio(at64[LIB].median / at64['write-file-atomic'].median),
    '>= 5.00x',
    at64[LIB].median / at64['write-file-atomic'].median >= 5,
  );
  ctx.measure(
    `${LIB} / fs-write-stream-atomic, 64 writers`,
    ratio(at64[LIB].median / at64['fs-write-stream-atomic'].median),
  );
  if (python) {
    ctx.measure(
      `${LIB} / python mailbox.Maildir.add, 1 writer`,
      ratio(medians[1][LIB].median / medians[1]['python mailbox.Maildir.add'].median),
    );
  }
  const errors256 = medians[256][LIB].results.flatMap((r) => Object.entries(r.errors).map(([code, n]) => `${code} x${n}`));
  ctx.check(`${LIB}, 256 writers: errors`, errors256.length === 0 ? 'none' : errors256.join(', '), 'no EMFILE', errors256.length === 0);
  const collapse = medians[256][LIB].median / at64[LIB].median;
  ctx.check(`${LIB}, 256 writers / 64 writers`, ratio(collapse), '>= 0.80x', collapse >= 0.8);
}
