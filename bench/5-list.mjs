// Scenario 5: listing a large area through list() against one
// fs.promises.readdir: time, and memory that must not grow with the directory.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, ratio, withDir } from './harness.mjs';

export const title = 'list() of a large area against one fs.promises.readdir';

const DIST = new URL('../dist/index.js', import.meta.url).href;

/** Contender (runs in a child): counts the entries of `new/`, or only the first `limit`. */
export async function listArea({ contender, dir, limit = Infinity }) {
  const { FileStore } = await import(DIST);
  const store = new FileStore(dir);
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let count = 0;
  if (contender === 'readdir') {
    count = (await readdir(join(dir, 'new'))).length;
  } else {
    for await (const entry of store.list('new')) {
      if (entry.name.length > 0) count++;
      if (count >= limit) break;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const growthMB = (process.resourceUsage().maxRSS * 1024 - rssBefore) / 2 ** 20;
  return { value: seconds, count, growthMB };
}

export async function run(ctx) {
  const n = ctx.full ? 1_000_000 : 100_000;
  const tenth = n / 10;
  await withDir(ctx.cpuDir, async (dir) => {
    const area = join(dir, 'new');
    mkdirSync(area, { recursive: true });
    mkdirSync(join(dir, 'tmp'));
    mkdirSync(join(dir, 'cur'));
    const t0 = performance.now();
    for (let i = 0; i < n; i++) closeSync(openSync(join(area, `${1764230000 + (i >> 10)}.M${i % 1e6}P4242Q${i}R9f3a1b2c.benchhost`), 'wx'));
    ctx.note(`${fmt(n)} empty files made in ${((performance.now() - t0) / 1000).toFixed(1)} s in ${ctx.cpuDir}; ${ctx.rounds} rounds`);
    const one = (contender, limit) => () => ctx.child(import.meta.url, listArea.name, { contender, dir, limit });
    const summary = await ctx.alternate('list', {
      'list()': one('list()'),
      readdir: one('readdir'),
      'list(), first tenth': one('list()', tenth),
    });
    const list = summary['list()'];
    const rd = summary.readdir;
    const partial = summary['list(), first tenth'];
    const counted = list.results.every((r) => r.count === n) && rd.results.every((r) => r.count === n);
    if (!counted) ctx.check('entries counted', 'wrong count', `${fmt(n)}`, false);
    ctx.measure(`list() of ${fmt(n)}`, `${fmt(list.median * 1000)} ms`);
    ctx.measure(`fs.promises.readdir of ${fmt(n)}`, `${fmt(rd.median * 1000)} ms`);
    ctx.check('list() time / readdir time', ratio(list.median / rd.median), '<= 1.50x', list.median / rd.median <= 1.5);
    const med = (s) => s.results.map((r) => r.growthMB).sort((a, b) => a - b)[s.results.length >> 1];
    const [gList, gPart, gRd] = [med(list), med(partial), med(rd)];
    ctx.measure('peak RSS growth: list() all / first tenth / readdir', `${fmt(gList, 1)} / ${fmt(gPart, 1)} / ${fmt(gRd, 1)} MB`);
    // "does not grow with the directory": ten times the entries may cost at most
    // 1.5x the memory of a tenth, plus 4 MB for allocator noise.
    const bound = gPart * 1.5 + 4;
    ctx.check(`list() memory, ${fmt(n)} vs ${fmt(tenth)} entries`, `${fmt(gList, 1)} MB vs ${fmt(gPart, 1)} MB`, `<= 1.5x + 4 MB (${fmt(bound, 1)})`, gList <= bound);
  });
}
