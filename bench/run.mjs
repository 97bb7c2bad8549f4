/**
 * The bench runner: `npm run bench [-- --full] [--only 1,4] [--rounds n]
 * [--cpu-dir dir] [--disk-dir dir] [--prof]`.
 *
 * Every `bench/<n>-<name>.mjs` is a scenario: it exports `title` and
 * `run(ctx)` (see harness.mjs) plus the contenders its children run. Adding
 * a scenario is adding one such file. The runner prints each scenario's
 * rows as it goes and a Markdown table at the end, and writes the results as
 * JSON and the commits/s chart as SVG into bench/results/.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { renderChart } from './chart.mjs';
import { Context } from './harness.mjs';

const BENCH = fileURLToPath(new URL('.', import.meta.url));
const RESULTS = join(BENCH, 'results');

const { values: flags } = parseArgs({
  options: {
    full: { type: 'boolean', default: false },
    only: { type: 'string' },
    rounds: { type: 'string' },
    'cpu-dir': { type: 'string' },
    'disk-dir': { type: 'string' },
    prof: { type: 'boolean', default: false },
  },
});

const options = {
  full: flags.full,
  rounds: Number(flags.rounds ?? (flags.full ? 5 : 3)),
  cpuDir: flags['cpu-dir'] ?? process.env.BENCH_CPU_DIR ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir()),
  diskDir: flags['disk-dir'] ?? process.env.BENCH_DISK_DIR ?? tmpdir(),
};
const only = flags.only === undefined ? null : new Set(flags.only.split(',').map((s) => s.trim()));
const execArgv = flags.prof ? ['--cpu-prof', '--cpu-prof-dir', join(RESULTS, 'profiles')] : [];

function fileSystem(dir) {
  try {
    return execFileSync('df', ['--output=fstype', dir], { encoding: 'utf8' }).trim().split('\n').pop();
  } catch {
    return 'unknown';
  }
}

const machine = {
  cpus: cpus().length,
  cpuModel: cpus()[0]?.model ?? 'unknown',
  memoryGiB: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  platform: `${process.platform} ${process.arch}`,
  cpuDir: `${options.cpuDir} (${fileSystem(options.cpuDir)})`,
  diskDir: `${options.diskDir} (${fileSystem(options.diskDir)})`,
  date: new Date().toISOString(),
  loadAverage: loadavg()
    .map((n) => n.toFixed(2))
    .join(' '),
};

const files = (await readdir(BENCH))
  .filter((f) => /^\d+-[a-z0-9-]+\.mjs$/.test(f))
  .sort((a, b) => parseInt(a, 10) - parseInt(b, 10));

console.log(
  `maildir-filestore bench, ${options.full ? 'full' : 'quick'} suite, ${options.rounds} rounds per comparison`,
);
console.log(
  `${machine.cpus} x ${machine.cpuModel}, ${machine.memoryGiB} GiB, node ${machine.node}, ${machine.platform}`,
);
console.log(
  `cpu-bound dir: ${machine.cpuDir}; durability dir: ${machine.diskDir}; load average ${machine.loadAverage}\n`,
);

const started = performance.now();
const scenarios = [];
for (const file of files) {
  const id = String(parseInt(file, 10));
  if (only !== null && !only.has(id)) continue;
  const url = pathToFileURL(join(BENCH, file)).href;
  const mod = await import(url);
  const ctx = new Context({ id, title: mod.title, options, execArgv });
  console.log(`[${id}] ${mod.title}`);
  const t0 = performance.now();
  try {
    await mod.run(ctx, url);
  } catch (err) {
    ctx.check('scenario ran to the end', String(err?.code ?? err?.message ?? err).split('\n')[0], 'no error', false);
    console.error(err);
  }
  const seconds = (performance.now() - t0) / 1000;
  for (const row of ctx.rows) {
    console.log(`  ${row.measure}: ${row.value}${row.target ? `  (target ${row.target}: ${row.result})` : ''}`);
  }
  console.log(`  (${seconds.toFixed(1)} s)\n`);
  scenarios.push({
    id,
    file,
    title: mod.title,
    seconds,
    rows: ctx.rows,
    notes: ctx.notes,
    samples: ctx.samples,
    series: ctx.series,
  });
}

const cell = (s) => String(s).replaceAll('|', '\\|');
const table = [
  '| # | measure | value | target | result |',
  '|---|---|---|---|---|',
  ...scenarios.flatMap((s) =>
    s.rows.map((r) => `| ${s.id} | ${cell(r.measure)} | ${cell(r.value)} | ${cell(r.target)} | ${r.result} |`),
  ),
].join('\n');
console.log(table);
const misses = scenarios.flatMap((s) => s.rows).filter((r) => r.result === 'MISS').length;
const total = (performance.now() - started) / 1000;
console.log(
  `\n${misses === 0 ? 'all targets met' : `${misses} target(s) missed`}; ${total.toFixed(0)} s; load average at the end ${loadavg()
    .map((n) => n.toFixed(2))
    .join(' ')}`,
);

await mkdir(RESULTS, { recursive: true });
const stamp = machine.date.replace(/[:.]/g, '-');
const result = {
  mode: options.full ? 'full' : 'quick',
  rounds: options.rounds,
  machine,
  seconds: total,
  scenarios,
  table,
};
const json = JSON.stringify(result, null, 2);
await writeFile(join(RESULTS, `${stamp}.json`), json);
await writeFile(join(RESULTS, 'latest.json'), json);
const points = scenarios.flatMap((s) => s.series);
if (points.length > 0) {
  const svg = renderChart(
    points,
    `commits/s, 1 KiB files, durability none (${machine.cpus} cores, node ${machine.node}, ${machine.date.slice(0, 10)})`,
  );
  await writeFile(join(RESULTS, 'commits-vs-writers.svg'), svg);
}
console.log(
  `results: ${join(RESULTS, `${stamp}.json`)}${points.length > 0 ? `, chart: ${join(RESULTS, 'commits-vs-writers.svg')}` : ''}`,
);
