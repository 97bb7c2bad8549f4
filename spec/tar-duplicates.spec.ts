// An export holds each name at most once, even when the directory read
// returns a name twice. tmpfs does that on Linux 6.x: its directories hand
// out entries newest first and resume a read at the offset of the next entry;
// a rename over an existing name (what `overwrite: true` commits do) moves the
// file to the front of the list but gives it the old name's offset, so a
// reader whose next entry was that name starts again from the front and lists
// everything it already had a second time (`opendir` in C sees the same; ext4
// does not). The live spec replaces files of new/ from a child process while
// this one exports new/ again and again; the deterministic one replaces every
// file while an export is paused by backpressure. The `names` spec needs no
// tmpfs. Each archive is parsed back (tar-stream, and GNU tar where noted).
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { DIST, put, tempStore } from './helpers.js';
import { SOAK } from './reliability.js';
import { collect, entriesOf, gnuTar } from './tar-helpers.js';

/** /dev/shm when it is tmpfs, the file system whose directory reads repeat names. */
const SHM = '/dev/shm';
const SHM_IS_TMPFS = readFileSync('/proc/mounts', 'utf8')
  .split('\n')
  .some((line) => line.split(' ')[1] === SHM && line.split(' ')[2] === 'tmpfs');
const NO_TMPFS = `skipped: ${SHM} is not a tmpfs mount here, and no other file system repeats names in a directory read`;

/** Files in new/: enough that a listing takes several directory reads. */
const FILES = 3000;
/** Exports of the live spec: at least MIN_EXPORTS, more (up to MAX_EXPORTS) until a listing repeated a name. */
const MIN_EXPORTS = SOAK ? 200 : 8;
const MAX_EXPORTS = SOAK ? 200 : 40;

const made: string[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A prepared store on tmpfs with FILES files in new/. */
async function storeOnTmpfs(): Promise<FileStore> {
  const dir = await mkdtemp(join(SHM, 'filestore-dup-'));
  made.push(dir);
  const store = new FileStore(join(dir, 'store'), { durability: 'none' });
  await store.prepare();
  for (let i = 0; i < FILES; i++) await writeFile(join(store.root, 'new', nameOf(i)), `file ${i}`);
  return store;
}

/**
 * A maildir-like name (the length matters: it sets how many names one
 * directory read returns); every other one is marked for the replacing child.
 */
function nameOf(i: number): string {
  return `1764230000.M${String(i).padStart(6, '0')}P4242Q${i}R9f3a.${i % 2 === 0 ? REPLACED : 'kept'}.example.org`;
}
const REPLACED = 'replaced';

/** The names of new/ as `list()` yields them, each also pushed onto `listed`. */
async function* recorded(store: FileStore, listed: string[]): AsyncGenerator<string> {
  for await (const { name } of store.list('new')) {
    listed.push(name);
    yield name;
  }
}

/** How many entries of a list repeat an earlier one. */
function repeats(names: string[]): number {
  return names.length - new Set(names).size;
}

/** The names of an archive's entries, in order. */
async function namesOf(archive: Readable): Promise<string[]> {
  return (await entriesOf(archive)).map((entry) => entry.name);
}

/**
 * A child process that replaces the marked files of new/ one after another,
 * in a loop until killed, the way a maildir writer replaces a file: it writes
 * the new one in tmp/ and renames it over the old one.
 */
function startReplacing(root: string): Promise<ChildProcess> {
  const script = `
    const { readdirSync, renameSync, writeFileSync } = require('node:fs');
    const [area, tmp] = process.argv.slice(1);
    const names = readdirSync(area).filter((name) => name.includes('.${REPLACED}.'));
    console.log('started');
    for (let n = 0; ; n++) {
      writeFileSync(tmp, 'replaced ' + n);
      renameSync(tmp, area + '/' + names[n % names.length]);
    }`;
  const args = ['-e', script, join(root, 'new'), join(root, 'tmp', 'replacement')];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code) => reject(new Error(`the replacing child exited (${code}) before it started`)));
    child.stdout?.once('data', () => resolve(child));
  });
}

describe.skipIf(!SHM_IS_TMPFS)('exportTar on tmpfs, whose directory reads repeat names', () => {
  it('exports each name once while another process replaces files of the area', async (context) => {
    const store = await storeOnTmpfs();
    await startReplacing(store.root);
    const kept = Array.from({ length: FILES }, (_, i) => nameOf(i))
      .filter((name) => !name.includes(`.${REPLACED}.`))
      .sort();
    const exportedTwice: number[] = [];
    let listedTwice = 0;
    // Every other export takes the area's listing through `names`, counting what the listing repeats:
    // the proof that the kernel did repeat names. Run until it did, within MAX_EXPORTS.
    for (let i = 0; i < MIN_EXPORTS || (listedTwice === 0 && i < MAX_EXPORTS); i++) {
      const listed: string[] = [];
      const archive = i % 2 === 0 ? store.exportTar('new') : store.exportTar('new', { names: recorded(store, listed) });
      const names = await namesOf(archive);
      exportedTwice.push(repeats(names));
      listedTwice += repeats(listed);
      // a file that stays is never missed
      expect(names.filter((name) => !name.includes(`.${REPLACED}.`)).sort()).toEqual(kept);
    }
    if (SOAK) {
      const repeating = exportedTwice.filter((count) => count > 0);
      console.log(
        `tar-duplicates: ${exportedTwice.length} exports, ${repeating.length} with repeated names ` +
          `(${repeating.reduce((a, b) => a + b, 0)} in all, at most ${Math.max(0, ...repeating)}); ` +
          `the listings of ${Math.floor(exportedTwice.length / 2)} of them repeated ${listedTwice}`,
      );
    }
    expect(exportedTwice, 'names each export repeated').toEqual(exportedTwice.map(() => 0));
    if (listedTwice === 0) context.skip(`the kernel repeated no name in ${MAX_EXPORTS / 2} listings: nothing proven`);
  });

  it('exports each name once when every file is replaced while the export waits for its consumer', async () => {
    const store = await storeOnTmpfs();
    const listed: string[] = [];
    for await (const entry of store.list('new')) listed.push(entry.name);
    const archive = store.exportTar('new');
    await once(archive, 'readable'); // nothing reads it: the export has listed its first names and waits
    // replace every file, in listing order
    for (const name of listed) {
      await new Promise<void>((resolve, reject) =>
        store.create(name, { overwrite: true }).on('finish', resolve).on('error', reject).end('replaced'),
      );
    }
    const bytes = await collect(archive);
    const names = await namesOf(Readable.from([bytes]));
    expect(repeats(names)).toBe(0);
    // and so it imports back (a name twice failed with EEXIST)
    const copy = await tempStore({ durability: 'none' });
    expect((await copy.importTar(Readable.from([bytes]))).sort()).toEqual([...names].sort());
  });
});
if (!SHM_IS_TMPFS) it.skip(NO_TMPFS, () => {});

describe('exportTar with names given more than once', () => {
  it('exports each name once, where it first comes, from a sync or an async iterable', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await put(store, name, `file ${name}`);
    expect(await gnuTar(store.exportTar('new', { names: ['b', 'a', 'b', 'c', 'a', 'b'] }), ['-t'])).toBe('b\na\nc\n');
    async function* names(): AsyncGenerator<string> {
      yield* ['c', 'c', 'a', 'c'];
    }
    expect(await gnuTar(store.exportTar('new', { names: names() }), ['-t'])).toBe('c\na\n');
  });

  it('draws a source that repeats its names forever without blocking the event loop or growing the heap', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b']) await put(store, name, `file ${name}`);
    // In a child with a small heap and gc(): 'a', 'b', then 'a', 'b', ... forever. At draw 1,000,000 a
    // setImmediate destroys the export: it runs only if the export yields to the event loop.
    const script = `
      const { FileStore } = await import(${JSON.stringify(DIST)});
      const store = new FileStore(${JSON.stringify(store.root)});
      const heap = [];
      let draws = 0;
      let closed = false;
      function* names() {
        try {
          for (;;) {
            draws++;
            if (draws === 100_000 || draws === 1_000_000) { gc(); heap.push(process.memoryUsage().heapUsed); }
            if (draws === 1_000_000) setImmediate(() => archive.destroy());
            yield draws % 2 === 1 ? 'a' : 'b';
          }
        } finally {
          closed = true;
        }
      }
      const archive = store.exportTar('new', { names: names() });
      let bytes = 0;
      archive.on('data', (chunk) => (bytes += chunk.length));
      archive.on('close', () => setImmediate(() => console.log(JSON.stringify({ bytes, closed, grew: heap[1] - heap[0] }))));`;
    const out = execFileSync(
      process.execPath,
      ['--expose-gc', '--max-old-space-size=48', '--input-type=module', '-e', script],
      { encoding: 'utf8', timeout: 50_000 }, // killed if the export never yields to destroy()
    );
    const { bytes, closed, grew } = JSON.parse(out) as { bytes: number; closed: boolean; grew: number };
    expect(bytes, 'a and b once: a header and a block each').toBe(4 * 512);
    expect(closed, "the source's return() was called").toBe(true);
    expect(grew, 'heap growth from draw 100,000 to 1,000,000').toBeLessThan(1024 * 1024);
  });
});
