// exportTar and importTar, checked against GNU tar, the reader users have.
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import {
  appendFile,
  chmod,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  truncate,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Header } from 'tar-stream';
import { describe, expect, it, vi } from 'vitest';
import type { FileStore, ImportTarError } from '../lib/index.js';
import { docBlock } from './doc-blocks.js';
import { DIST, namesIn, put, tempDir, tempStore } from './helpers.js';
import { archive, collect, gnuTar, openFilesUnder } from './tar-helpers.js';
import { BATCH_NAMES, SMALL_FILE_MAX } from '../lib/tar/reader.js';

const run = promisify(execFile);

/** A store and an empty sentinel directory next to it, to prove nothing lands outside the store. */
async function storeWithSentinel(): Promise<{ store: FileStore; parent: string; sentinel: string }> {
  const store = await tempStore({ durability: 'none' });
  const parent = dirname(store.root);
  const sentinel = join(parent, 'sentinel');
  await mkdir(sentinel);
  return { store, parent, sentinel };
}

async function expectNothingOutside(store: FileStore, parent: string, sentinel: string): Promise<void> {
  expect((await readdir(parent)).sort()).toEqual(['sentinel', 'store']);
  expect(await readdir(sentinel)).toEqual([]);
  expect((await readdir(store.root)).sort()).toEqual(['cur', 'new', 'tmp']);
  expect(await namesIn(store, 'tmp')).toEqual([]);
}

async function rejection(promise: Promise<unknown>): Promise<ImportTarError> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: ImportTarError) => err,
  );
}

const LONG_NAME = `${'n'.repeat(250)}.long`; // 255 bytes: needs a pax or GNU long-name header
const UNICODE_NAME = 'café-überweisung-日本.txt';

describe('exportTar', () => {
  // The first batch of names (BATCH_NAMES) is read on the main thread; later ones by the reader
  // thread, except files over SMALL_FILE_MAX. Fillers before the files put them in either place.
  it.each([
    ['in the first batch, read on the main thread', 0],
    ['after the first batch, read by the reader thread', BATCH_NAMES],
  ])(
    'writes an archive GNU tar lists and extracts with the same names, sizes, modes, mtimes and bytes: files %s',
    async (_, fillers) => {
      const store = await tempStore({ durability: 'none' });
      const files = new Map<string, Buffer>([
        ['empty', Buffer.alloc(0)],
        ['small', Buffer.from('hello, tar')],
        ['block', Buffer.alloc(512, 1)],
        ['block-and-one', Buffer.alloc(513, 2)],
        ['largest-small', Buffer.alloc(SMALL_FILE_MAX, 3)],
        ['big', Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31) % 251))],
        [LONG_NAME, Buffer.from('long name')],
        [UNICODE_NAME, Buffer.from('unicode name')],
        ['no-permissions', Buffer.from('mode 000')],
        ['epoch', Buffer.from('mtime 0')],
      ]);
      for (let i = 0; i < fillers; i++) files.set(`filler-${i}`, Buffer.from(`filler ${i}`));
      for (const [name, data] of files) await put(store, name, data);
      await chmod(join(store.root, 'new', 'small'), 0o640);
      await chmod(join(store.root, 'new', 'no-permissions'), 0o000);
      const mtime = new Date('2025-03-04T05:06:07Z');
      await utimes(join(store.root, 'new', 'big'), mtime, mtime);
      await utimes(join(store.root, 'new', 'small'), mtime, mtime);
      await utimes(join(store.root, 'new', 'epoch'), 0, 0);
      const order = [...files.keys()].sort((a, b) => Number(b.startsWith('filler-')) - Number(a.startsWith('filler-')));
      const exported = (): Readable => store.exportTar('new', { names: order });

      const listing = await gnuTar(exported(), ['--numeric-owner', '--full-time', '--utc', '-tv']);
      const listed = new Map<string, { mode: string; size: number; time: string }>();
      for (const line of listing.trimEnd().split('\n')) {
        const match = /^(\S+)\s+\S+\s+(\d+)\s+(\S+ \S+)\s(.*)$/.exec(line);
        expect(match, line).not.toBeNull();
        const [, mode = '', size = '', time = '', name = ''] = match ?? [];
        listed.set(name, { mode, size: Number(size), time });
      }
      expect([...listed.keys()]).toEqual(order);
      for (const [name, data] of files) expect(listed.get(name)?.size).toBe(data.length);
      expect(listed.get('small')).toMatchObject({ mode: '-rw-r-----', time: '2025-03-04 05:06:07' });
      expect(listed.get('big')?.time).toBe('2025-03-04 05:06:07');
      expect(listed.get('no-permissions')?.mode).toBe('----------');
      expect(listed.get('epoch')?.time).toBe('1970-01-01 00:00:00');

      const out = await tempDir();
      await gnuTar(exported(), ['-x', '-p', '--no-same-owner', '-C', out]);
      expect((await readdir(out)).sort()).toEqual([...files.keys()].sort());
      for (const [name, data] of files) expect(await readFile(join(out, name))).toEqual(data);
      expect((await stat(join(out, 'small'))).mode & 0o777).toBe(0o640);
      expect((await stat(join(out, 'big'))).mtime.getTime()).toBe(mtime.getTime());
    },
  );

  it('keeps mtimes before 1970 and after 2038, which the ustar field cannot hold, in a pax mtime record', async () => {
    const store = await tempStore({ durability: 'none' });
    const times = new Map<string, [Date, string]>([
      ['before-1970', [new Date('1960-01-02T03:04:05Z'), '1960-01-02 03:04:05']],
      ['after-2038', [new Date('2040-05-06T07:08:09Z'), '2040-05-06 07:08:09']],
      ['after-2038-big', [new Date('2100-01-01T00:00:00Z'), '2100-01-01 00:00:00']],
      ['late-2038', [new Date('2038-01-19T03:14:07Z'), '2038-01-19 03:14:07']], // the last second ustar holds
    ]);
    for (const [name, [mtime]] of times) {
      await put(store, name, name.endsWith('big') ? Buffer.alloc(200_000, 5) : name);
      await utimes(join(store.root, 'new', name), mtime, mtime);
    }
    const listing = await gnuTar(store.exportTar('new'), ['--full-time', '--utc', '-tv']);
    for (const [name, [, shown]] of times) expect(listing).toMatch(new RegExp(`${shown} ${name}\n`));
    const out = await tempDir();
    // GNU tar warns about these (implausibly old, in the future): they are the point here.
    await gnuTar(store.exportTar('new'), ['-x', '--warning=no-timestamp', '-C', out]);
    for (const [name, [mtime]] of times)
      expect((await stat(join(out, name))).mtime.getTime(), name).toBe(mtime.getTime());
  });

  it('hands out chunks of its own: a consumer that overwrites the chunks it got does not spoil a later archive', async () => {
    const store = await tempStore({ durability: 'none' });
    await put(store, 'big', Buffer.alloc(100_000 + 7, 4)); // read on the main thread, padded
    for await (const chunk of store.exportTar('new')) (chunk as Buffer).fill(0xff);
    const out = await tempDir();
    await gnuTar(store.exportTar('new'), ['-x', '-C', out]);
    expect((await readFile(join(out, 'big'))).equals(Buffer.alloc(100_000 + 7, 4))).toBe(true);
  });

  it('keeps every byte in place when batches fill up: many mid-sized files, over several batches', async () => {
    const store = await tempStore({ durability: 'none' });
    const files = new Map<string, Buffer>();
    // 40 KiB each: about 25 fit the byte budget of a batch, the rest of each batch are streamed here
    for (let i = 0; i < 3 * BATCH_NAMES; i++)
      files.set(`mid-${String(i).padStart(3, '0')}`, Buffer.alloc(40 * 1024 + i, i % 251));
    for (const [name, data] of files) await put(store, name, data);
    const out = await tempDir();
    await gnuTar(store.exportTar('new'), ['-x', '-C', out]);
    expect((await readdir(out)).sort()).toEqual([...files.keys()].sort());
    // Buffer.equals: a deep toEqual over 8 MB of bytes takes seconds
    for (const [name, data] of files) expect((await readFile(join(out, name))).equals(data), name).toBe(true);
  });

  it('exports an empty area as an empty archive', async () => {
    const store = await tempStore({ durability: 'none' });
    expect(await gnuTar(store.exportTar('cur'), ['-t'])).toBe('');
  });

  it('exports only the given names, in their order, from a sync or an async iterable', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await put(store, name, name, 'cur');
    expect(await gnuTar(store.exportTar('cur', { names: ['c', 'a'] }), ['-t'])).toBe('c\na\n');
    async function* names(): AsyncGenerator<string> {
      yield 'b';
      yield 'c';
    }
    expect(await gnuTar(store.exportTar('cur', { names: names() }), ['-t'])).toBe('b\nc\n');
  });

  it('streams from a slow source of names: each file goes out before the next name is given', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await put(store, name, `file ${name}`);
    const received: string[] = [];
    let delivered = (): void => {};
    async function* names(): AsyncGenerator<string> {
      for (const name of ['a', 'b', 'c']) {
        const sent = new Promise<void>((resolve) => (delivered = resolve));
        yield name;
        await sent; // the next name only once this file reached the consumer
      }
    }
    for await (const chunk of store.exportTar('new', { names: names() })) {
      const text = (chunk as Buffer).toString('latin1');
      for (const name of ['a', 'b', 'c']) if (text.includes(`file ${name}`)) received.push(name);
      delivered();
    }
    expect(received).toEqual(['a', 'b', 'c']);
  });

  it('closes the source of names when one of them is invalid', async () => {
    const store = await tempStore({ durability: 'none' });
    await put(store, 'a', 'a');
    let closed = false;
    function* names(): Generator<string> {
      try {
        yield 'a';
        yield '../escape';
        yield 'never asked for';
      } finally {
        closed = true;
      }
    }
    await expect(collect(store.exportTar('new', { names: names() }))).rejects.toMatchObject({
      code: 'ERR_INVALID_NAME',
    });
    await vi.waitFor(() => expect(closed).toBe(true));
  });

  it('closes the source of names when the consumer stops early', async () => {
    const store = await tempStore({ durability: 'none' });
    for (let i = 0; i < 200; i++) await put(store, `f${i}`, Buffer.alloc(4096, i));
    let closed = false;
    function* names(): Generator<string> {
      try {
        for (let i = 0; ; i = (i + 1) % 200) yield `f${i}`; // endless
      } finally {
        closed = true;
      }
    }
    const stream = store.exportTar('new', { names: names() });
    await stream[Symbol.asyncIterator]().next();
    stream.destroy();
    await vi.waitFor(() => expect(closed).toBe(true));
  });

  it('skips a file that vanishes between listing and reading', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await put(store, name, name);
    async function* names(): AsyncGenerator<string> {
      yield 'a';
      await store.claim('b'); // another consumer takes b after it was listed
      yield 'b';
      yield 'c';
    }
    const out = await tempDir();
    await gnuTar(store.exportTar('new', { names: names() }), ['-x', '-C', out]);
    expect((await readdir(out)).sort()).toEqual(['a', 'c']);
    expect(await readFile(join(out, 'c'), 'utf8')).toBe('c');
  });

  it('never follows a symlink and skips what is not a regular file', async () => {
    const { store, parent, sentinel } = await storeWithSentinel();
    await writeFile(join(sentinel, 'secret'), 'outside the store');
    await symlink(join(sentinel, 'secret'), join(store.root, 'new', 'link'));
    await mkdir(join(store.root, 'new', 'subdir'));
    await put(store, 'plain', 'inside');
    expect(await gnuTar(store.exportTar('new'), ['-t'])).toBe('plain\n');
    expect((await readdir(parent)).sort()).toEqual(['sentinel', 'store']);
  });

  it('throws ERR_INVALID_AREA and ERR_INVALID_OPTION synchronously', async () => {
    const store = await tempStore({ durability: 'none' });
    expect(() => store.exportTar('old' as 'new')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_AREA' }));
    expect(() => store.exportTar('new', { names: 'abc' as unknown as string[] })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_OPTION' }),
    );
  });

  it('destroys the stream with ERR_INVALID_NAME for an invalid name in names', async () => {
    const store = await tempStore({ durability: 'none' });
    await put(store, 'a', 'a');
    await expect(collect(store.exportTar('new', { names: ['a', '../etc'] }))).rejects.toMatchObject({
      code: 'ERR_INVALID_NAME',
    });
  });

  it('destroys the stream with ENOENT when the store is missing', async () => {
    const store = await tempStore({ durability: 'none' });
    await rm(store.root, { recursive: true });
    await expect(collect(store.exportTar('new'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  describe('a file that changes size while it is read', () => {
    const SIZE = 4 * 1024 * 1024;

    /** Starts an export of one big file, lets it reach the first chunk, changes the file, then reads on. */
    async function exportWhileChanging(change: (path: string) => Promise<void>): Promise<unknown> {
      const store = await tempStore({ durability: 'none' });
      await put(store, 'big', Buffer.alloc(SIZE, 7));
      const stream = store.exportTar('new');
      const iterator = stream[Symbol.asyncIterator]();
      await iterator.next(); // the header and the first bytes; backpressure holds the rest unread
      await change(join(store.root, 'new', 'big'));
      try {
        for (;;) if ((await iterator.next()).done) return undefined;
      } catch (err) {
        return err;
      }
    }

    it('fails the stream with ERR_FILE_CHANGED when the file grows', async () => {
      const err = await exportWhileChanging((path) => appendFile(path, 'more'));
      expect(err).toMatchObject({ code: 'ERR_FILE_CHANGED' });
    });

    it('fails the stream with ERR_FILE_CHANGED when the file shrinks', async () => {
      const err = await exportWhileChanging((path) => truncate(path, SIZE / 2));
      expect(err).toMatchObject({ code: 'ERR_FILE_CHANGED' });
    });

    it('exports the file whole when it does not change', async () => {
      expect(await exportWhileChanging(async () => {})).toBeUndefined();
    });
  });

  // One big file is read on the main thread in chunks; small files by the reader thread, at most
  // 4 batches (of at most 1 MiB each) ahead of the one being written.
  it.each([
    ['one 32 MiB file', 1, 2 * 1024 * 1024],
    ['4,096 files of 8 KiB', 4096, 6 * 1024 * 1024],
  ])('pauses reading while the consumer does not read, and resumes when it does: %s', async (_, files, bound) => {
    const store = await tempStore({ durability: 'none' });
    const SIZE = 32 * 1024 * 1024;
    for (let i = 0; i < files; i++) await put(store, `f${i}`, Buffer.alloc(SIZE / files, 3));
    // A child exports the file without reading the stream, waits until the stream's buffer is
    // full and its read counter (rchar of /proc/self/io, every byte read(2) returned) settles
    // (grows by less than a page between polls: the poll itself reads /proc/self/io), then
    // reads the stream to the end.
    const script = `
      import { readFileSync } from 'node:fs';
      import { FileStore } from ${JSON.stringify(DIST)};
      const rchar = () => Number(/rchar: (\\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))[1]);
      const tick = () => new Promise((resolve) => setTimeout(resolve, 20));
      const store = new FileStore(${JSON.stringify(store.root)});
      const before = rchar();
      const stream = store.exportTar('new');
      let last = -1, still = 0;
      for (let i = 0; i < 500 && still < 5; i++) {
        await tick();
        const now = rchar();
        still = stream.readableLength >= stream.readableHighWaterMark && now - last < 4096 ? still + 1 : 0;
        last = now;
      }
      const paused = rchar() - before;
      let bytes = 0;
      for await (const chunk of stream) bytes += chunk.length;
      console.log(JSON.stringify({ paused, settled: still >= 5, total: rchar() - before, bytes }));
    `;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script]);
    const result = JSON.parse(stdout) as { paused: number; settled: boolean; total: number; bytes: number };
    expect(result.settled).toBe(true);
    expect(result.paused).toBeLessThan(bound);
    expect(result.total).toBeGreaterThan(SIZE);
    expect(result.bytes).toBe(files * 512 + SIZE + 1024);
  });

  it('closes the file it was reading when the consumer destroys the stream', async () => {
    const store = await tempStore({ durability: 'none' });
    const big = join(store.root, 'new', 'big');
    await put(store, 'big', Buffer.alloc(8 * 1024 * 1024, 1));
    const openOn = async (path: string): Promise<boolean> => (await openFilesUnder(path)).includes(path);
    const stream = store.exportTar('new');
    await stream[Symbol.asyncIterator]().next();
    expect(await openOn(big)).toBe(true);
    stream.destroy();
    await vi.waitFor(async () => expect(await openOn(big)).toBe(false));
  });
});

describe('importTar', () => {
  it('imports an archive GNU tar made of a directory, in every GNU tar format', async () => {
    const source = await tempDir();
    const files = new Map<string, string>([
      ['one', '1'],
      ['empty', ''],
      ['block', 'b'.repeat(512)],
      [UNICODE_NAME, 'unicode'],
    ]);
    for (const [name, data] of files) await writeFile(join(source, name), data);
    for (const format of ['gnu', 'posix', 'ustar']) {
      const tarFile = join(await tempDir(), 'a.tar');
      await run('tar', ['-c', `--format=${format}`, '-f', tarFile, '-C', source, '.']);
      const store = await tempStore({ durability: 'none' });
      const committed = await store.importTar(createReadStream(tarFile));
      expect(committed.sort(), format).toEqual([...files.keys()].sort());
      expect(await namesIn(store, 'new')).toEqual([...files.keys()].sort());
      for (const [name, data] of files) expect(await readFile(join(store.root, 'new', name), 'utf8')).toBe(data);
      expect(await namesIn(store, 'tmp')).toEqual([]);
    }
  });

  it('imports long names from GNU tar archives listing files by name', async () => {
    const source = await tempDir();
    await writeFile(join(source, LONG_NAME), 'long');
    await writeFile(join(source, 'short'), 'short');
    for (const format of ['gnu', 'posix']) {
      const tarFile = join(await tempDir(), 'a.tar');
      await run('tar', ['-c', `--format=${format}`, '-f', tarFile, '-C', source, LONG_NAME, 'short']);
      const store = await tempStore({ durability: 'none' });
      expect(await store.importTar(createReadStream(tarFile))).toEqual([LONG_NAME, 'short']);
      expect(await readFile(join(store.root, 'new', LONG_NAME), 'utf8')).toBe('long');
    }
  });

  it('round-trips an export into another store, into cur when asked', async () => {
    const from = await tempStore({ durability: 'none' });
    await put(from, 'a', Buffer.alloc(70_000, 5));
    await put(from, 'b', 'bee');
    const to = await tempStore();
    expect((await to.importTar(from.exportTar('new'), { area: 'cur' })).sort()).toEqual(['a', 'b']);
    expect(await namesIn(to, 'cur')).toEqual(['a', 'b']);
    expect(await namesIn(to, 'new')).toEqual([]);
    expect(await readFile(join(to.root, 'cur', 'a'))).toEqual(Buffer.alloc(70_000, 5));
  });

  it('keeps a file out of the target area until its entry is complete', async () => {
    const store = await tempStore({ durability: 'none' });
    const bytes = await archive([[{ name: 'slow' }, Buffer.alloc(100_000, 9)]]);
    const source = new PassThrough();
    const done = store.importTar(source);
    // past 64 KiB of the entry, so its writer has its file in tmp/ (smaller ones at durability none wait in memory)
    source.write(bytes.subarray(0, 80_000));
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(1));
    expect(await namesIn(store, 'new')).toEqual([]);
    source.end(bytes.subarray(80_000));
    expect(await done).toEqual(['slow']);
    expect(await namesIn(store, 'new')).toEqual(['slow']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  describe('refuses a hostile entry with ERR_UNSAFE_ENTRY, keeping what came before it', () => {
    const hostile: Array<[string, (sentinel: string) => Partial<Header> & { name: string }]> = [
      ['a parent traversal', () => ({ name: '../x' })],
      ['a traversal into a sibling', () => ({ name: '../sentinel/x' })],
      ['a traversal behind ./', () => ({ name: './../x' })],
      ['an absolute path', (sentinel) => ({ name: join(sentinel, 'x') })],
      ['/etc/passwd', () => ({ name: '/etc/passwd' })],
      ['a subdirectory path', () => ({ name: 'a/b' })],
      ['a dot-file', () => ({ name: '.hidden' })],
      ['a NUL in a pax path', () => ({ name: 'nul', pax: { path: 'a\0b' } })],
      ['a name over 255 bytes', () => ({ name: 'x'.repeat(256) })],
      ['a symlink out of the store', (sentinel) => ({ name: 'link', type: 'symlink', linkname: join(sentinel, 'x') })],
      ['a symlink to /etc/passwd', () => ({ name: 'link', type: 'symlink', linkname: '/etc/passwd' })],
      ['a hard link', () => ({ name: 'hard', type: 'link', linkname: 'first' })],
      ['a hard link to /etc/passwd', () => ({ name: 'hard', type: 'link', linkname: '/etc/passwd' })],
      ['a character device', () => ({ name: 'chr', type: 'character-device', devmajor: 1, devminor: 3 })],
      ['a block device', () => ({ name: 'blk', type: 'block-device', devmajor: 7, devminor: 0 })],
      ['a FIFO', () => ({ name: 'fifo', type: 'fifo' })],
      ['a directory', () => ({ name: 'dir', type: 'directory' })],
      ['a parent directory', () => ({ name: '../', type: 'directory' })],
    ];

    for (const [what, entry] of hostile) {
      it(what, async () => {
        const { store, parent, sentinel } = await storeWithSentinel();
        const bytes = await archive([
          [{ name: 'first' }, 'first'],
          [entry(sentinel), 'payload'],
          [{ name: 'after' }, 'after'],
        ]);
        const err = await rejection(store.importTar(Readable.from([bytes])));
        expect(err).toMatchObject({ code: 'ERR_UNSAFE_ENTRY', committed: ['first'] });
        expect(await namesIn(store, 'new')).toEqual(['first']);
        await expectNothingOutside(store, parent, sentinel);
      });
    }
  });

  it('skips the ./ root entry of a GNU tar archive but no other directory', async () => {
    const store = await tempStore({ durability: 'none' });
    const root = await archive([[{ name: './', type: 'directory' }], [{ name: './a' }, 'a']]);
    expect(await store.importTar(Readable.from([root]))).toEqual(['a']);
    const nested = await archive([[{ name: './sub/', type: 'directory' }]]);
    await expect(store.importTar(Readable.from([nested]))).rejects.toMatchObject({ code: 'ERR_UNSAFE_ENTRY' });
  });

  describe('a truncated or corrupt archive', () => {
    async function threeFiles(): Promise<{ bytes: Buffer; secondDataStart: number; thirdHeaderStart: number }> {
      const bytes = await archive([
        [{ name: 'a' }, 'a'.repeat(600)],
        [{ name: 'b' }, 'b'.repeat(5000)],
        [{ name: 'c' }, 'c'],
      ]);
      // a: header 512 + data 1024; b: header 512 + data 5120; then c's header
      return { bytes, secondDataStart: 512 + 1024 + 512, thirdHeaderStart: 512 + 1024 + 512 + 5120 };
    }

    it('cut inside an entry rejects with ERR_CORRUPT_ARCHIVE and reports what was committed', async () => {
      const { store, parent, sentinel } = await storeWithSentinel();
      const { bytes, secondDataStart } = await threeFiles();
      const err = await rejection(store.importTar(Readable.from([bytes.subarray(0, secondDataStart + 1000)])));
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: ['a'] });
      expect(await namesIn(store, 'new')).toEqual(['a']);
      await expectNothingOutside(store, parent, sentinel);
    });

    it('cut at an entry boundary (no end-of-archive blocks) rejects with ERR_CORRUPT_ARCHIVE', async () => {
      const store = await tempStore({ durability: 'none' });
      const { bytes, thirdHeaderStart } = await threeFiles();
      const err = await rejection(store.importTar(Readable.from([bytes.subarray(0, thirdHeaderStart)])));
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: ['a', 'b'] });
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('cut inside a header rejects with ERR_CORRUPT_ARCHIVE', async () => {
      const store = await tempStore({ durability: 'none' });
      const { bytes, thirdHeaderStart } = await threeFiles();
      const err = await rejection(store.importTar(Readable.from([bytes.subarray(0, thirdHeaderStart + 100)])));
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: ['a', 'b'] });
    });

    it('with a damaged header rejects with ERR_CORRUPT_ARCHIVE', async () => {
      const store = await tempStore({ durability: 'none' });
      const { bytes, thirdHeaderStart } = await threeFiles();
      const damaged = Buffer.from(bytes);
      damaged[thirdHeaderStart + 10] = 0x41; // inside c's name: the checksum no longer matches
      const err = await rejection(store.importTar(Readable.from([damaged])));
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: ['a', 'b'] });
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('that is empty or not a tar at all rejects with ERR_CORRUPT_ARCHIVE', async () => {
      const store = await tempStore({ durability: 'none' });
      await expect(store.importTar(Readable.from([Buffer.alloc(0)]))).rejects.toMatchObject({
        code: 'ERR_CORRUPT_ARCHIVE',
      });
      await expect(store.importTar(Readable.from([Buffer.alloc(4096, 'not a tar ')]))).rejects.toMatchObject({
        code: 'ERR_CORRUPT_ARCHIVE',
      });
      expect(await namesIn(store, 'new')).toEqual([]);
    });

    it('made by GNU tar and cut short is refused like any other', async () => {
      const source = await tempDir();
      await writeFile(join(source, 'one'), 'x'.repeat(3000));
      await writeFile(join(source, 'two'), 'y'.repeat(3000));
      const tarFile = join(await tempDir(), 'a.tar');
      await run('tar', ['-cf', tarFile, '-C', source, 'one', 'two']);
      const bytes = await readFile(tarFile);
      const store = await tempStore({ durability: 'none' });
      const err = await rejection(store.importTar(Readable.from([bytes.subarray(0, 512 + 3072 + 512 + 1000)])));
      expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: ['one'] });
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });
  });

  it('rejects with the source error when the source fails, leaving tmp empty', async () => {
    const store = await tempStore({ durability: 'none' });
    const bytes = await archive([
      [{ name: 'a' }, 'a'],
      [{ name: 'b' }, Buffer.alloc(100_000)],
    ]);
    const failure = Object.assign(new Error('connection reset'), { code: 'ECONNRESET' });
    const source = new Readable({ read() {} });
    const done = store.importTar(source);
    source.push(bytes.subarray(0, 512 + 512 + 512 + 50_000));
    await vi.waitFor(async () => expect(await namesIn(store, 'new')).toEqual(['a']));
    source.destroy(failure);
    const err = await rejection(done);
    expect(err).toBe(failure);
    expect(err.committed).toEqual(['a']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('fails with EEXIST on a name collision unless overwrite', async () => {
    const store = await tempStore({ durability: 'none' });
    await put(store, 'b', 'old');
    const bytes = await archive([
      [{ name: 'a' }, 'new a'],
      [{ name: 'b' }, 'new b'],
      [{ name: 'c' }, 'new c'],
    ]);
    const err = await rejection(store.importTar(Readable.from([bytes])));
    expect(err).toMatchObject({ code: 'EEXIST', committed: ['a'] });
    expect(await readFile(join(store.root, 'new', 'b'), 'utf8')).toBe('old');
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
    expect(await namesIn(store, 'tmp')).toEqual([]);

    expect(await store.importTar(Readable.from([bytes]), { overwrite: true })).toEqual(['a', 'b', 'c']);
    expect(await readFile(join(store.root, 'new', 'b'), 'utf8')).toBe('new b');
  });

  it('fails with EEXIST when one archive holds a name twice', async () => {
    const store = await tempStore({ durability: 'none' });
    const bytes = await archive([
      [{ name: 'a' }, 'first'],
      [{ name: './a' }, 'second'],
    ]);
    await expect(store.importTar(Readable.from([bytes]))).rejects.toMatchObject({ code: 'EEXIST', committed: ['a'] });
    expect(await readFile(join(store.root, 'new', 'a'), 'utf8')).toBe('first');
  });

  it('rejects bad options with ERR_INVALID_OPTION before reading', async () => {
    const store = await tempStore({ durability: 'none' });
    const bytes = await archive([[{ name: 'a' }, 'a']]);
    await expect(store.importTar(Readable.from([bytes]), { area: 'tmp' as 'new' })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
      committed: [],
    });
    await expect(
      store.importTar(Readable.from([bytes]), { overwrite: 'yes' as unknown as boolean }),
    ).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    await expect(store.importTar(bytes as unknown as Readable)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('rejects with ENOENT when the store is missing, leaving nothing behind', async () => {
    const store = await tempStore({ durability: 'none' });
    await rm(store.root, { recursive: true });
    const bytes = await archive([[{ name: 'a' }, 'a']]);
    await expect(store.importTar(Readable.from([bytes]))).rejects.toMatchObject({ code: 'ENOENT', committed: [] });
  });

  it('writes a GNU tar archive from a file stream end to end', async () => {
    const store = await tempStore({ durability: 'none' });
    await put(store, 'x', 'x');
    const tarFile = join(await tempDir(), 'x.tar');
    await pipeline(store.exportTar('new'), createWriteStream(tarFile));
    const { stdout } = await run('tar', ['-tf', tarFile]);
    expect(stdout).toBe('x\n');
  });
});

it('runs the README tar example as written', async () => {
  const example = docBlock('readme-tar', 'js');
  const cwd = await tempDir();
  await mkdir(join(cwd, 'queue', 'cur'), { recursive: true });
  await writeFile(join(cwd, 'queue', 'cur', 'report.txt'), 'done');
  const script = join(cwd, 'example.mjs');
  await writeFile(script, example.replaceAll("'maildir-filestore'", JSON.stringify(DIST)));
  const { stdout } = await run(process.execPath, [script], { cwd });
  expect(stdout).toBe("[ 'report.txt' ]\n");
  expect(await readFile(join(cwd, 'archive', 'new', 'report.txt'), 'utf8')).toBe('done');
  expect(await gnuTar(createReadStream(join(cwd, 'processed.tar')), ['-t'])).toBe('report.txt\n');
});
