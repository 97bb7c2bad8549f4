// Scenario 5: listing a large area through list() against one
// fs.promises.readdir: time, and memory that must not grow with the directory.
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fmt, peakRssMB, ratio, withDir } from './harness.mjs';

export const title = 'list() of a large area against one fs.promises.readdir';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/**
 * Contender (runs in a child with --expose-gc): counts the entries of `new/`,
 * or only the first `limit`. Halfway through, it collects garbage and notes
 * the heap the iteration holds on to (`retainedMB`).
 */
export async function listArea({ contender, dir, limit, total }) {
  const { FileStore } = await import(LIB);
  const store = new FileStore(dir);
  const heap = () => {
    global.gc();
    return process.memoryUsage().heapUsed;
  };
  const heapBefore = heap();
  const rssBefore = process.memoryUsage().rss;
  let retained = 0;
  const t0 = performance.now();
  let count = 0;
  if (contender === 'readdir') {
    const names = await readdir(join(dir, 'new'));
    count = names.length;
    const t1 = performance.now();
    retained = heap() - heapBefore;
    return {
      value: (t1 - t0) / 1000,
      count,
      retainedMB: retained / 2 ** 20,
      rssGrowthMB: peakRssMB() - rssBefore / 2 ** 20,
    };
  }
  const middle = Math.floor((limit ?? total) / 2);
  let paused = 0;
  for await (const entry of store.list('new')) {
    if (entry.name.length > 0) count++;
    if (count === middle) {
      const p0 = performance.now();
      retained = heap() - heapBefore;
      paused = performance.now() - p0;
    }
    if (count === limit) break;
  }
  const seconds = (performance.now() - t0 - paused) / 1000;
  return { value: seconds, count, retainedMB: retained / 2 ** 20, rssGrowthMB: peakRssMB() - rssBefore / 2 ** 20 };
}

export async function run(ctx) {
  const n = ctx.full ? 1_000_000 : 100_000;
  const tenth = n / 10;
  const rounds = Math.max(ctx.rounds, 5); // short runs: more rounds for a steadier median
  await withDir(ctx.cpuDir, async (dir) => {
    const area = join(dir, 'new');
    mkdirSync(area, { recursive: true });
    mkdirSync(join(dir, 'tmp'));
    mkdirSync(join(dir, 'cur'));
    const t0 = performance.now();
    for (let i = 0; i < n; i++)
      closeSync(openSync(join(area, `${1764230000 + (i >> 10)}.M${i % 1e6}P4242Q${i}R9f3a1b2c.benchhost`), 'wx'));
    ctx.note(
      `${fmt(n)} empty files made in ${((performance.now() - t0) / 1000).toFixed(1)} s in ${ctx.cpuDir}; ${rounds} rounds`,
    );
    const one = (contender, limit) => () =>
      ctx.child(import.meta.url, listArea.name, { contender, dir, limit, total: n }, ['--expose-gc']);
    const summary = await ctx.alternate(
      'list',
      {
        'list()': one('list()'),
        readdir: one('readdir'),
        'list(), first tenth': one('list()', tenth),
      },
      rounds,
    );
    const list = summary['list()'];
    const rd = summary.readdir;
    const partial = summary['list(), first tenth'];
    const counted = list.results.every((r) => r.count === n) && rd.results.every((r) => r.count === n);
    if (!counted) ctx.check('entries counted', 'wrong count', `${fmt(n)}`, false);
    ctx.measure(`list() of ${fmt(n)}`, `${fmt(list.median * 1000)} ms`);
    ctx.measure(`fs.promises.readdir of ${fmt(n)}`, `${fmt(rd.median * 1000)} ms`);
    ctx.check('list() time / readdir time', ratio(list.median / rd.median), '<= 1.50x', list.median / rd.median <= 1.5);
    const med = (s, key) => s.results.map((r) => r[key]).sort((a, b) => a - b)[s.results.length >> 1];
    ctx.measure(
      'peak RSS growth: list() / readdir',
      `${fmt(med(list, 'rssGrowthMB'), 1)} / ${fmt(med(rd, 'rssGrowthMB'), 1)} MB`,
    );
    ctx.measure('heap held, after GC: readdir', `${fmt(med(rd, 'retainedMB'), 2)} MB`);
    // "Memory that does not grow with the directory": halfway through ten
    // times the entries, list() holds no more heap than halfway through a
    // tenth of them (1 MB allowed for noise), while readdir holds all names.
    const [all, part] = [med(list, 'retainedMB'), med(partial, 'retainedMB')];
    ctx.check(
      `heap held by list(), halfway through ${fmt(n)} vs ${fmt(tenth)} entries`,
      `${fmt(all, 2)} MB vs ${fmt(part, 2)} MB`,
      'no growth (<= +1 MB)',
      all <= part + 1,
    );
  });
}
