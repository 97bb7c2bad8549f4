// Scenario 9: what a lease costs. One process drains new/ with consume()
// and acknowledges each file by removing it, taken for good against leased
// (lease 30 s: the delivery count and lease start written at each claim, the
// file looked at again when the body is done, one sweep of cur/ per pass).
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, ratio, withDir } from './harness.mjs';

export const title = 'Leased consume: claims/s against taken for good';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/** Contender (runs in a child): drains `new/`, removing each file in the loop body; `lease` or not. */
export async function drain({ dir, lease }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir, { durability: 'none' });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let claims = 0;
  for await (const entry of store.consume(lease === undefined ? {} : { lease })) {
    await store.remove(entry.name, 'cur');
    claims += 1;
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return { value: claims / seconds, claims, cpuMsPerClaim: (cpu.user + cpu.system) / 1000 / Math.max(1, claims) };
}

/** Fills `new/` with `files` empty files, drains them in a child, checks that nothing is left. */
export async function drainRun(dir, files, lease, child) {
  for (const area of ['new', 'cur', 'tmp']) mkdirSync(join(dir, area), { recursive: true });
  for (let i = 0; i < files; i++) closeSync(openSync(join(dir, 'new', `f${i}`), 'wx'));
  const result = await child({ dir, lease });
  const left = (await readdir(join(dir, 'new'))).length + (await readdir(join(dir, 'cur'))).length;
  return { ...result, left };
}

export async function run(ctx) {
  const files = ctx.full ? 20_000 : 5_000;
  ctx.note(`${fmt(files)} files, one process, each removed in the loop body, ${ctx.rounds} rounds, dir ${ctx.cpuDir}`);
  const child = (args) => ctx.child(import.meta.url, drain.name, args);
  const one = (lease) => () => withDir(ctx.cpuDir, (dir) => drainRun(dir, files, lease, child));
  const summary = await ctx.alternate('leased consume', { 'taken for good': one(undefined), leased: one(30_000) });
  for (const [name, { median, results }] of Object.entries(summary)) {
    const cpu = results.reduce((s, r) => s + r.cpuMsPerClaim, 0) / results.length;
    ctx.measure(`${name}: claims/s`, `${fmt(median)} (${fmt(cpu * 1000, 1)} us CPU per claim)`);
  }
  ctx.measure('leased / taken for good', ratio(summary.leased.median / summary['taken for good'].median));
  const all = Object.values(summary).flatMap((s) => s.results);
  const wrong = all.filter((r) => r.claims !== files || r.left !== 0);
  ctx.check(`every file once, none left (${all.length} runs)`, `${wrong.length} wrong`, '0 wrong', wrong.length === 0);
}
