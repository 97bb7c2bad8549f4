// Scenario 7: exportTar of many small files against tar-fs's pack and GNU
// tar, side by side; and the peak RSS of exporting one 1 GiB file.
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fmt, hasCommand, peakRssMB, ratio, withDir } from './harness.mjs';

export const title = 'exportTar against tar-fs pack and GNU tar; memory of a 1 GiB export';

const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/** A sink that counts and drops the archive, the same for every contender. */
function counter() {
  const sink = new Writable({
    write(chunk, _encoding, cb) {
      sink.bytes += chunk.length;
      cb();
    },
  });
  sink.bytes = 0;
  return sink;
}

/** Contender (runs in a child): archives `dir/new` into a counting sink. */
export async function archiveArea({ contender, dir }) {
  const sink = counter();
  const t0 = performance.now();
  if (contender === 'exportTar') {
    const { FileStore } = await import(LIB);
    await pipeline(new FileStore(dir).exportTar('new'), sink);
  } else if (contender === 'tar-fs') {
    const { pack } = await import('tar-fs');
    await pipeline(pack(join(dir, 'new')), sink);
  } else {
    const child = spawn('tar', ['-cf', '-', '-C', join(dir, 'new'), '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.on('close', resolve));
    await pipeline(child.stdout, sink);
    if ((await exited) !== 0) throw new Error('GNU tar failed');
  }
  return { value: (performance.now() - t0) / 1000, bytes: sink.bytes, maxRssMB: peakRssMB() };
}

function makeFiles(area, count, size) {
  mkdirSync(area, { recursive: true });
  const data = Buffer.alloc(size, 0x61);
  for (let i = 0; i < count; i++) {
    const fd = openSync(join(area, `${1764230000 + (i >> 10)}.M${i}P4242Q${i}R9f3a1b2c.benchhost`), 'wx');
    writeSync(fd, data);
    closeSync(fd);
  }
}

export async function run(ctx) {
  const count = 10_000;
  await withDir(ctx.cpuDir, async (dir) => {
    makeFiles(join(dir, 'new'), count, 1024);
    mkdirSync(join(dir, 'tmp'));
    mkdirSync(join(dir, 'cur'));
    const gnu = hasCommand('tar');
    if (!gnu) ctx.note('GNU tar not found: compared with tar-fs only');
    ctx.note(`${fmt(count)} files of 1 KiB in ${ctx.cpuDir}; ${ctx.rounds} rounds`);
    const one = (contender) => () => ctx.child(import.meta.url, archiveArea.name, { contender, dir });
    const contenders = { exportTar: one('exportTar'), 'tar-fs': one('tar-fs') };
    if (gnu) contenders['GNU tar'] = one('gnu');
    const summary = await ctx.alternate('tar export', contenders);
    const ours = summary.exportTar.median;
    ctx.measure(`exportTar of ${fmt(count)} x 1 KiB`, `${fmt(ours * 1000)} ms`);
    ctx.measure(`tar-fs pack of ${fmt(count)} x 1 KiB`, `${fmt(summary['tar-fs'].median * 1000)} ms`);
    ctx.check(
      'exportTar time / tar-fs time',
      ratio(ours / summary['tar-fs'].median),
      '<= 1.00x',
      ours <= summary['tar-fs'].median,
    );
    if (gnu) {
      const theirs = summary['GNU tar'].median;
      ctx.measure(`GNU tar -cf - of ${fmt(count)} x 1 KiB`, `${fmt(theirs * 1000)} ms`);
      ctx.check('exportTar time / GNU tar time', ratio(ours / theirs), '<= 3.00x', ours <= 3 * theirs);
    }
  });
  await withDir(ctx.diskDir, async (dir) => {
    const area = join(dir, 'new');
    mkdirSync(area, { recursive: true });
    mkdirSync(join(dir, 'tmp'));
    mkdirSync(join(dir, 'cur'));
    const fd = openSync(join(area, 'one-gibibyte'), 'wx');
    const block = Buffer.alloc(1024 * 1024, 0x62);
    for (let i = 0; i < 1024; i++) writeSync(fd, block);
    closeSync(fd);
    const result = await ctx.child(import.meta.url, archiveArea.name, { contender: 'exportTar', dir });
    if (result.bytes < 2 ** 30) ctx.check('1 GiB export complete', `${fmt(result.bytes)} bytes`, '>= 1 GiB', false);
    ctx.measure('1 GiB export time', `${fmt(result.value, 2)} s`);
    ctx.check('1 GiB export peak RSS', `${fmt(result.maxRssMB, 1)} MB`, '< 100 MB', result.maxRssMB < 100);
  });
}
