// The progress line of export and import: the meter (drawn on a terminal only, throttled)
// and the tar counter that feeds it, checked against archives GNU tar writes.
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { ProgressMeter, formatBytes, progressLine } from '../lib/cli/progress.js';
import { TarCounter } from '../lib/tar/counter.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);

/** A stream that collects what is written to it, a terminal or not. */
class Sink extends Writable {
  text = '';
  readonly isTTY: boolean;

  constructor(isTTY: boolean) {
    super();
    this.isTTY = isTTY;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString();
    cb();
  }
}

const drawn = (text: string): string => `\rmaildir-filestore: ${text}\x1b[K`;

describe('progressLine and formatBytes', () => {
  it('shows files and bytes with decimal units', () => {
    expect([0, 999, 1000, 1_500, 999_949, 12_345_678, 4e9, 2e15].map(formatBytes)).toEqual([
      '0 B',
      '999 B',
      '1.0 kB',
      '1.5 kB',
      '999.9 kB',
      '12.3 MB',
      '4.0 GB',
      '2.0 PB',
    ]);
    expect(progressLine('exporting', 1, 512)).toBe('exporting: 1 file, 512 B');
    expect(progressLine('importing', 3, 2_000_000)).toBe('importing: 3 files, 2.0 MB');
  });

  it('shows the totals and the rate where known', () => {
    expect(progressLine('exporting', 3, 1_500_000, { total: { files: 10 }, rate: 2_000_000 })).toBe(
      'exporting: 3 of 10 files, 1.5 MB, 2.0 MB/s',
    );
    expect(progressLine('exporting', 0, 0, { total: { files: 1 } })).toBe('exporting: 0 of 1 file, 0 B');
    expect(progressLine('importing', 3, 1_500_000, { total: { bytes: 4_000_000 }, rate: 512.4 })).toBe(
      'importing: 3 files, 1.5 MB of 4.0 MB (37%), 512 B/s',
    );
    expect(progressLine('importing', 0, 0, { total: { bytes: 0 } })).toBe('importing: 0 files, 0 B of 0 B (100%)');
    expect(progressLine('importing', 1, 5_000, { total: { bytes: 4_000 } })).toBe(
      'importing: 1 file, 5.0 kB of 4.0 kB (100%)',
    );
  });
});

describe('ProgressMeter', () => {
  it('draws nothing at all when the stream is not a terminal', () => {
    const sink = new Sink(false);
    let now = 0;
    const meter = new ProgressMeter(sink, 'exporting', { now: () => now });
    for (now = 0; now < 2000; now += 100) meter.update(now, now * 10);
    meter.finish(20, 20_000);
    expect(meter.enabled).toBe(false);
    expect(sink.text).toBe('');
  });

  it('on a terminal redraws in place at most once per interval, and ends the line once', () => {
    const sink = new Sink(true);
    let now = 1000;
    const meter = new ProgressMeter(sink, 'exporting', { now: () => now, interval: 250 });
    meter.update(1, 100); // too soon after the start
    now = 1249;
    meter.update(1, 200);
    expect(sink.text).toBe('');
    now = 1250;
    meter.update(2, 2_000);
    expect(sink.text).toBe(drawn('exporting: 2 files, 2.0 kB, 8.0 kB/s'));
    now = 1400;
    meter.update(3, 3_000);
    now = 1500;
    meter.update(4, 4_000);
    meter.finish(5, 1_500_000);
    now = 5000;
    meter.update(6, 6_000);
    meter.finish(6, 6_000);
    expect(sink.text).toBe(
      `${drawn('exporting: 2 files, 2.0 kB, 8.0 kB/s')}${drawn('exporting: 4 files, 4.0 kB, 8.0 kB/s')}${drawn('exporting: 5 files, 1.5 MB, 3.0 MB/s')}\n`,
    );
  });
});

describe('ProgressMeter with totals', () => {
  it('shows the total given at the start or later, and the rate once an interval has passed', () => {
    const sink = new Sink(true);
    let now = 0;
    const meter = new ProgressMeter(sink, 'importing', { now: () => now, total: { bytes: 10_000_000 } });
    now = 250;
    meter.update(1, 1_000_000);
    meter.setTotal({ files: 4 });
    now = 1000;
    meter.update(2, 5_000_000);
    now = 2000;
    meter.finish(4, 10_000_000);
    expect(sink.text).toBe(
      `${drawn('importing: 1 file, 1.0 MB of 10.0 MB (10%), 4.0 MB/s')}${drawn('importing: 2 of 4 files, 5.0 MB of 10.0 MB (50%), 5.0 MB/s')}${drawn('importing: 4 of 4 files, 10.0 MB of 10.0 MB (100%), 5.0 MB/s')}\n`,
    );
  });

  it('leaves the rate out before an interval has passed', () => {
    const sink = new Sink(true);
    let now = 0;
    const meter = new ProgressMeter(sink, 'exporting', { now: () => now, total: { files: 2 } });
    now = 100;
    meter.finish(2, 2_048);
    expect(sink.text).toBe(`${drawn('exporting: 2 of 2 files, 2.0 kB')}\n`);
  });
});

/** Chunks of `data` of the given sizes, in turn. */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length] as number;
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

async function count(
  data: Buffer,
  sizes: number[],
): Promise<{ files: number; bytes: number; out: Buffer; calls: number }> {
  let calls = 0;
  const counter = new TarCounter(() => calls++);
  const out: Buffer[] = [];
  await pipeline(Readable.from(chunked(data, sizes)), counter, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) out.push(chunk);
  });
  return { files: counter.files, bytes: counter.bytes, out: Buffer.concat(out), calls };
}

describe('TarCounter', () => {
  it('counts the regular files of GNU tar archives (gnu, pax, ustar), however the bytes are chunked, and passes them through unchanged', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    await mkdir(join(src, 'sub'), { recursive: true });
    const files = ['empty', 'small', 'block', 'big', `${'n'.repeat(150)}.long`, 'café-日本', join('sub', 'inner')];
    const sizes = [0, 10, 512, 300_001, 3, 7, 1025];
    await Promise.all(files.map((name, i) => writeFile(join(src, name), Buffer.alloc(sizes[i] as number, i))));
    for (const format of ['gnu', 'pax', 'ustar']) {
      // ustar cannot hold the 155-byte name; `sub` adds a directory entry, which is not counted
      const members = files.filter(
        (name) => name !== join('sub', 'inner') && !(format === 'ustar' && name.endsWith('.long')),
      );
      const archive = join(dir, `${format}.tar`);
      await run('tar', ['-cf', archive, `--format=${format}`, '-C', src, ...members, 'sub']);
      const data = await readFile(archive);
      for (const chunking of [[1], [7, 511, 513], [65_536]]) {
        if (chunking[0] === 1 && format !== 'gnu') continue; // byte by byte once is enough
        const counted = await count(data, chunking);
        expect([format, chunking, counted.files]).toEqual([format, chunking, members.length + 1]);
        expect(counted.bytes).toBe(data.length);
        expect(counted.out.equals(data)).toBe(true);
        expect(counted.calls).toBe(chunked(data, chunking).length);
      }
    }
  });

  it('stops counting files, but still passes every byte, at a header that is not a tar header', async () => {
    const dir = await tempDir();
    const src = join(dir, 'src');
    await mkdir(src);
    await Promise.all(['a', 'b', 'c'].map((name) => writeFile(join(src, name), Buffer.alloc(600, name))));
    await run('tar', ['-cf', join(dir, 'x.tar'), '-C', src, 'a', 'b', 'c']);
    const data = await readFile(join(dir, 'x.tar'));
    expect((await count(data, [4096])).files).toBe(3);
    const damaged = Buffer.from(data);
    damaged.writeUInt8(damaged.readUInt8(512 * 3 + 10) ^ 0xff, 512 * 3 + 10); // inside the name of the second header: its checksum no longer matches
    const counted = await count(damaged, [4096]);
    expect(counted.files).toBe(1);
    expect(counted.out.equals(damaged)).toBe(true);
    expect((await count(Buffer.from('not a tar archive at all'.repeat(100)), [100])).files).toBe(0);
  });
});
