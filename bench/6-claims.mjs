// Scenario 6: several consumer processes draining the same new/ with
// consume(): claims/s for 1, 2 and 4 processes, and every file claimed
// exactly once. Consumers that lose a claim jump to a random later name, so
// adding consumers should add throughput instead of contention.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, ratio, withDir } from './harness.mjs';

export const title = 'Claims: consumer processes draining one new/';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/**
 * Contender (runs in a child): waits until `startAt` (ms since the epoch) so
 * that every process starts together, drains `new/` with `consume()` and
 * resolves with the names it won and its CPU time.
 */
export async function consumeAll({ dir, startAt = 0 }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir, { durability: 'none' });
  const won = [];
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, startAt - Date.now())));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  for await (const entry of store.consume()) won.push(entry.name);
  const end = performance.timeOrigin + performance.now();
  const cpu = process.cpuUsage(cpu0);
  return { won, start: performance.timeOrigin + t0, end, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Fills `new/` with `files` empty files, runs `processes` claimers at once, checks the outcome. */
export async function claimRun(dir, processes, files, child) {
  const area = join(dir, 'new');
  mkdirSync(area, { recursive: true });
  mkdirSync(join(dir, 'cur'));
  mkdirSync(join(dir, 'tmp'));
  for (let i = 0; i < files; i++) closeSync(openSync(join(area, `f${i}`), 'wx'));
  const startAt = Date.now() + 200 + 100 * processes;
  const results = await Promise.all(Array.from({ length: processes }, () => child({ dir, startAt })));
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
    cpuMsPerClaim: results.reduce((s, r) => s + (r.cpuMs ?? 0), 0) / Math.max(1, claims.length),
  };
}

export async function run(ctx) {
  const files = 20_000;
  ctx.note(`${fmt(files)} files, each process drains new/ with consume(), ${ctx.rounds} rounds, dir ${ctx.cpuDir}`);
  const child = (args) => ctx.child(import.meta.url, consumeAll.name, args);
  const one = (processes) => () => withDir(ctx.cpuDir, (dir) => claimRun(dir, processes, files, child));
  const summary = await ctx.alternate('claims', {
    '4 processes': one(4),
    '1 process': one(1),
    '2 processes': one(2),
  });
  const single = summary['1 process'].median;
  for (const [name, { median, results }] of Object.entries(summary)) {
    const cpu = results.reduce((s, r) => s + r.cpuMsPerClaim, 0) / results.length;
    ctx.measure(`${name}, claims/s`, `${fmt(median)} (${fmt(cpu * 1000, 1)} us CPU per claim)`);
  }
  for (const name of ['2 processes', '4 processes']) {
    const ratioToOne = summary[name].median / single;
    ctx.check(`${name} / 1 process`, ratio(ratioToOne), '>= 1.50x', ratioToOne >= 1.5);
  }
  const all = Object.values(summary).flatMap((s) => s.results);
  const bad = all.filter((r) => r.duplicates > 0 || r.unclaimed > 0 || r.inCur !== files || r.leftInNew > 0);
  ctx.check(
    `duplicates / unclaimed (${all.length} runs x ${fmt(files)})`,
    `${all.reduce((s, r) => s + r.duplicates, 0)} / ${all.reduce((s, r) => s + r.unclaimed, 0)}`,
    '0 / 0',
    bad.length === 0,
  );
}
