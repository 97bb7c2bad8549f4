// Scenario 8: how soon a following consumer yields a file another process
// committed. The producer stamps each file with the wall-clock time of its
// 'finish'; the consumer subtracts it from the time the file is yielded.
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fmt, median, withDir } from './harness.mjs';

export const title = 'consume({ follow: true }): delivery latency from another process';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

function now() {
  return performance.timeOrigin + performance.now();
}

/** Contender (runs in a child): follows `new/` until `files` files came, returns their latencies in ms. */
export async function follow({ dir, files }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir, { durability: 'none' });
  const latencies = [];
  for await (const entry of store.consume({ follow: true })) {
    const yielded = now();
    latencies.push(yielded - Number(await readFile(entry.path, 'utf8')));
    if (latencies.length === files) break;
  }
  return { value: median(latencies), latencies };
}

/** Producer (runs in a child): after `delay` ms, commits `files` files `gap` ms apart, each stamped at its finish. */
export async function produce({ dir, files, gap, delay }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir, { durability: 'none' });
  await sleep(delay);
  for (let i = 0; i < files; i++) {
    // the stamp is written before the commit, so it is slightly earlier than 'finish': latencies err high
    const writer = store.create();
    await new Promise((resolve, reject) => writer.on('finish', resolve).on('error', reject).end(String(now())));
    await sleep(gap);
  }
  return { value: files };
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

export async function run(ctx) {
  const files = ctx.full ? 1000 : 100;
  const gap = 10;
  ctx.note(
    `${fmt(files)} files committed ${gap} ms apart by a producer process, durability none, ${ctx.rounds} rounds, dir ${ctx.cpuDir}`,
  );
  const round = () =>
    withDir(ctx.cpuDir, async (dir) => {
      const { FileStore } = await import(LIB);
      await new FileStore(dir).prepare();
      const [consumer] = await Promise.all([
        ctx.child(import.meta.url, follow.name, { dir, files }),
        ctx.child(import.meta.url, produce.name, { dir, files, gap, delay: 500 }),
      ]);
      return consumer;
    });
  const { consume } = await ctx.alternate('consume latency', { consume: round });
  const all = consume.results.flatMap((r) => r.latencies);
  const p50 = percentile(all, 50);
  ctx.check('follow: latency p50', `${fmt(p50, 2)} ms`, '<= 50 ms', p50 <= 50);
  ctx.measure('follow: latency p99 / max', `${fmt(percentile(all, 99), 2)} ms / ${fmt(Math.max(...all), 2)} ms`);
}
