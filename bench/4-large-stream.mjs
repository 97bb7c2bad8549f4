// Scenario 4: one large stream piped through create() against
// fs.createWriteStream, on the CPU-bound dir: throughput and the child's peak RSS.
import { createWriteStream, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fmt, peakRssMB, ratio, withDir } from './harness.mjs';

export const title = 'One large stream: create() against fs.createWriteStream';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)
const CHUNK = 64 * 1024;

/** Contender (runs in a child): pipes `bytes` of 64 KiB chunks into one file. */
export async function streamFile({ contender, dir, bytes }) {
  const chunk = Buffer.alloc(CHUNK, 0x61);
  let left = bytes;
  const source = new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(n === CHUNK ? chunk : chunk.subarray(0, n));
    },
  });
  let sink;
  if (contender === 'maildir-filestore') {
    const { FileStore } = await import(LIB);
    const store = new FileStore(dir, { durability: 'none' });
    await store.prepare();
    sink = store.create();
  } else {
    mkdirSync(join(dir, 'new'), { recursive: true });
    sink = createWriteStream(join(dir, 'new', 'big'));
  }
  const t0 = performance.now();
  await pipeline(source, sink);
  const seconds = (performance.now() - t0) / 1000;
  return { value: bytes / 2 ** 20 / seconds, seconds, maxRssMB: peakRssMB() };
}

export async function run(ctx) {
  const bytes = (ctx.full ? 1024 : 256) * 2 ** 20;
  const rounds = Math.max(ctx.rounds, 5); // short runs: more rounds for a steadier median
  if (!ctx.full) ctx.note('quick mode streams 256 MiB, not the 1 GiB of the target (use --full for 1 GiB)');
  ctx.note(`${fmt(bytes / 2 ** 20)} MiB in 64 KiB chunks, durability none, ${rounds} rounds, dir ${ctx.cpuDir}`);
  const one = (contender) => () =>
    withDir(ctx.cpuDir, (dir) => ctx.child(import.meta.url, streamFile.name, { contender, dir, bytes }));
  const summary = await ctx.alternate(
    'large stream',
    {
      'maildir-filestore': one('maildir-filestore'),
      'fs.createWriteStream': one('fs.createWriteStream'),
    },
    rounds,
  );
  const lib = summary['maildir-filestore'];
  const fsws = summary['fs.createWriteStream'];
  ctx.measure('maildir-filestore', `${fmt(lib.median)} MiB/s`);
  ctx.measure('fs.createWriteStream', `${fmt(fsws.median)} MiB/s`);
  ctx.check(
    `create() / fs.createWriteStream, ${fmt(bytes / 2 ** 20)} MiB`,
    ratio(lib.median / fsws.median),
    '>= 0.90x',
    lib.median / fsws.median >= 0.9,
  );
  const rss = Math.max(...lib.results.map((r) => r.maxRssMB));
  const rssFs = Math.max(...fsws.results.map((r) => r.maxRssMB));
  ctx.check(
    'create(): peak RSS of the child (max of rounds)',
    `${fmt(rss, 1)} MB (fs.createWriteStream ${fmt(rssFs, 1)} MB)`,
    '< 100 MB',
    rss < 100,
  );
}
