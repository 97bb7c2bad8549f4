// Scenario 1: commits/s of 1 KiB files from 1-256 concurrent writers in one
// process, durability none, on the CPU-bound dir, against the same syscalls
// by hand, against its own thread-pool path (the commit thread refused, as before
// it existed) and against the atomic-write packages users would otherwise pick.
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

  const POOL = `${LIB}, thread pool`;
  const rate = (writers, name) => medians[writers][name].median;
  const cpu = (writers, name) => median(medians[writers][name].results.map((r) => r.cpuMicrosPerCommit));
  const us = (writers, name) => `${fmt(cpu(writers, name), 1)} us`;
  for (const writers of writerCounts) {
    ctx.measure(
      `${LIB}, ${writers} writer${writers === 1 ? '' : 's'}`,
      `${fmt(rate(writers, LIB))} commits/s, CPU ${us(writers, LIB)} per commit (thread pool ${fmt(rate(writers, POOL))}/s, ${us(writers, POOL)})`,
    );
  }
  const at64 = medians[64];
  const peers = Object.keys(at64).filter((name) => name !== LIB);
  ctx.measure(`peers, 64 writers`, peers.map((name) => `${name} ${fmt(at64[name].median)}/s`).join('; '));
  const versus = (writers, a, b) =>
    `${ratio(rate(writers, a) / rate(writers, b))} (CPU per commit, all threads: ${us(writers, a)} vs ${us(writers, b)})`;
  const hand = rate(64, LIB) / rate(64, 'callback fs');
  ctx.check(`${LIB} / callback fs, 64 writers`, versus(64, LIB, 'callback fs'), '>= 1.10x', hand >= 1.1);
  const single = rate(1, LIB) / rate(1, POOL);
  ctx.check(`${LIB} / its thread-pool path, 1 writer`, versus(1, LIB, POOL), '>= 2.00x', single >= 2);
  ctx.measure(`${LIB} / callback fs, 1 writer`, versus(1, LIB, 'callback fs'));
  ctx.measure(`${LIB} / its thread-pool path, 64 writers`, versus(64, LIB, POOL));
  const wfa = rate(64, LIB) / rate(64, 'write-file-atomic');
  ctx.check(
    `${LIB} / write-file-atomic (fsync off), 64 writers`,
    versus(64, LIB, 'write-file-atomic'),
    '>= 5.00x',
    wfa >= 5,
  );
  ctx.measure(`${LIB} / fs-write-stream-atomic, 64 writers`, versus(64, LIB, 'fs-write-stream-atomic'));
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
  const collapse = rate(256, LIB) / rate(64, LIB);
  ctx.check(
    `${LIB}, 256 writers / 64 writers`,
    `${ratio(collapse)} (CPU per commit ${us(256, LIB)} vs ${us(64, LIB)})`,
    '>= 0.95x',
    collapse >= 0.95,
  );
}
