// Scenario 1: commits/s of 1 KiB files from 1-256 concurrent writers in one
// process, durability none, on the CPU-bound dir, against the same syscalls
// by hand and against the atomic-write packages users would otherwise pick.
import { commitSeries, NODE_CONTENDERS, pythonMaildirAdd } from './commit-loop.mjs';
import { fmt, hasCommand, median, ratio, withDir } from './harness.mjs';

export const title = 'Commit throughput, 1 KiB files, durability none, one process';

const LOOP = new URL('./commit-loop.mjs', import.meta.url).href;
const LIB = 'maildir-filestore';

export async function run(ctx) {
  const writerCounts = [1, 16, 64, 256];
  const ms = ctx.full ? 2000 : 300;
  const warmupMs = ctx.full ? 1500 : 600;
  ctx.note(
    `each round: one fresh child per contender, ${warmupMs} ms warm-up (64 writers, uncounted), ` +
      `then ${ms} ms at each of ${writerCounts.join('/')} writers; ${ctx.rounds} rounds; dir ${ctx.cpuDir}`,
  );
  const python = hasCommand('python3');
  if (!python) ctx.note('python3 not found: mailbox.Maildir.add skipped');

  const contenders = {};
  for (const contender of NODE_CONTENDERS) {
    contenders[contender] = async () => {
      const byWriters = await withDir(ctx.cpuDir, (dir) =>
        ctx.child(LOOP, commitSeries.name, { contender, dir, writerCounts, ms, warmupMs }),
      );
      return { value: byWriters[64].value, byWriters };
    };
  }
  if (python) {
    contenders['python mailbox.Maildir.add'] = async () => {
      const result = await withDir(ctx.cpuDir, (dir) => pythonMaildirAdd({ dir, ms, warmupMs: 100 }));
      return { value: result.value, byWriters: { 1: result } };
    };
  }
  const summary = await ctx.alternate('commits', contenders);

  // medians[writers][contender] = { median, results }
  const medians = {};
  for (const writers of writerCounts) {
    medians[writers] = {};
    for (const [name, { results }] of Object.entries(summary)) {
      const runs = results.map((r) => r.byWriters[writers]).filter((r) => r !== undefined);
      if (runs.length === 0) continue;
      const perSecond = median(runs.map((r) => r.value));
      medians[writers][name] = { median: perSecond, results: runs };
      ctx.samples[`${writers} writers / ${name}`] = runs.map((r) => r.value);
      ctx.point(name, writers, perSecond);
    }
    const line = Object.entries(medians[writers])
      .map(([name, s]) => `${name} ${fmt(s.median)}/s`)
      .join(', ');
    console.log(`  ${writers} writers: ${line}`);
  }

  for (const writers of writerCounts) {
    ctx.measure(
      `${LIB}, ${writers} writer${writers === 1 ? '' : 's'}`,
      `${fmt(medians[writers][LIB].median)} commits/s`,
    );
  }
  const at64 = medians[64];
  const peers = Object.keys(at64).filter((name) => name !== LIB);
  ctx.measure(`peers, 64 writers`, peers.map((name) => `${name} ${fmt(at64[name].median)}/s`).join('; '));
  const cpu = (name) => median(at64[name].results.map((r) => r.cpuMicrosPerCommit));
  ctx.measure(
    'CPU per commit, all threads, 64 writers',
    `${LIB} ${fmt(cpu(LIB))} us; callback fs ${fmt(cpu('callback fs'))} us`,
  );
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
  const errors256 = medians[256][LIB].results.flatMap((r) =>
    Object.entries(r.errors).map(([code, n]) => `${code} x${n}`),
  );
  ctx.check(
    `${LIB}, 256 writers: errors`,
    errors256.length === 0 ? 'none' : errors256.join(', '),
    'no EMFILE',
    errors256.length === 0,
  );
  const collapse = medians[256][LIB].median / at64[LIB].median;
  ctx.check(`${LIB}, 256 writers / 64 writers`, ratio(collapse), '>= 0.80x', collapse >= 0.8);
}
