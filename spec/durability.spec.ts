// Counts fsyncs and injects faults by wrapping the callback fs API that
// lib/writer.ts and lib/durability.ts really call. Everything else is real.
import * as realFs from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Durability } from '../lib/index.js';
import { namesIn, tempStore } from './helpers.js';

type Cb = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;

const hooks = vi.hoisted(() => ({
  directoryFds: new Set<number>(),
  fileFsyncs: 0,
  directoryFsyncs: 0,
  /** Runs before each fs.write/writev; may delay or fail it. */
  beforeWrite: null as null | ((proceed: () => void, fail: (err: NodeJS.ErrnoException) => void) => void),
  /** Runs before each file fsync; may delay or fail it. */
  beforeFileFsync: null as null | ((proceed: () => void, fail: (err: NodeJS.ErrnoException) => void) => void),
  bytesWritten: 0,
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const gate = (hook: typeof hooks.beforeWrite, run: () => void, cb: Cb): void => {
    if (hook === null) return run();
    hook(run, (err) => cb(err));
  };
  const wrapped = {
    ...fs,
    open: ((path: string, flags: number, ...rest: unknown[]) => {
      const cb = rest.pop() as Cb;
      const mode = (rest[0] ?? 0o666) as number;
      fs.open(path, flags, mode, (err, fd) => {
        if (!err && typeof flags === 'number' && (flags & fs.constants.O_DIRECTORY) !== 0) hooks.directoryFds.add(fd);
        cb(err, fd);
      });
    }) as typeof fs.open,
    close: ((fd: number, cb: Cb) => {
      hooks.directoryFds.delete(fd);
      fs.close(fd, cb);
    }) as typeof fs.close,
    fsync: ((fd: number, cb: Cb) => {
      if (hooks.directoryFds.has(fd)) {
        hooks.directoryFsyncs++;
        return fs.fsync(fd, cb);
      }
      hooks.fileFsyncs++;
      gate(hooks.beforeFileFsync, () => fs.fsync(fd, cb), cb);
    }) as typeof fs.fsync,
    write: ((fd: number, buffer: Buffer, offset: number, length: number, position: null, cb: Cb) => {
      gate(
        hooks.beforeWrite,
        () =>
          fs.write(fd, buffer, offset, length, position, (err, n, b) => {
            if (!err) hooks.bytesWritten += n;
            cb(err, n, b);
          }),
        cb,
      );
    }) as typeof fs.write,
    writev: ((fd: number, buffers: Buffer[], position: null, cb: Cb) => {
      gate(
        hooks.beforeWrite,
        () =>
          fs.writev(fd, buffers, position, (err, n, b) => {
            if (!err) hooks.bytesWritten += n;
            cb(err, n, b);
          }),
        cb,
      );
    }) as typeof fs.writev,
  };
  return { ...wrapped, default: wrapped };
});

afterEach(() => {
  hooks.fileFsyncs = 0;
  hooks.directoryFsyncs = 0;
  hooks.beforeWrite = null;
  hooks.beforeFileFsync = null;
  hooks.bytesWritten = 0;
});

function ioError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: injected`), { code, syscall: 'write' });
}

async function commitMany(durability: Durability, count: number): Promise<string[]> {
  const store = await tempStore({ durability });
  const writers = Array.from({ length: count }, (_, i) => {
    const w = store.create();
    w.end(`file ${i}`);
    return w;
  });
  await Promise.all(writers.map((w) => finished(w)));
  const names = await namesIn(store, 'new');
  expect(names).toEqual(writers.map((w) => w.name).sort());
  for (const w of writers) expect(await readFile(join(store.root, 'new', w.name), 'utf8')).toMatch(/^file \d+$/);
  expect(await namesIn(store, 'tmp')).toEqual([]);
  return names;
}

describe('durability', () => {
  it("'none' commits without any fsync", async () => {
    await commitMany('none', 16);
    expect(hooks.fileFsyncs).toBe(0);
    expect(hooks.directoryFsyncs).toBe(0);
  });

  it("'file' fsyncs each file and no directory", async () => {
    await commitMany('file', 16);
    expect(hooks.fileFsyncs).toBe(16);
    expect(hooks.directoryFsyncs).toBe(0);
  });

  it("'full' fsyncs each file and the directory after the commit", async () => {
    await commitMany('full', 1);
    expect(hooks.fileFsyncs).toBe(1);
    expect(hooks.directoryFsyncs).toBe(1);
  });

  it("'full' commits running at once share directory fsyncs", async () => {
    await commitMany('full', 64);
    expect(hooks.fileFsyncs).toBe(64);
    expect(hooks.directoryFsyncs).toBeGreaterThanOrEqual(1);
    expect(hooks.directoryFsyncs).toBeLessThan(64 / 2);
  });

  it('the default is full', async () => {
    const store = await tempStore();
    const w = store.create();
    w.end('x');
    await finished(w);
    expect(hooks.fileFsyncs).toBe(1);
    expect(hooks.directoryFsyncs).toBe(1);
  });

  it('rejects an unknown durability', async () => {
    await expect(tempStore({ durability: 'always' as Durability })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
  });
});

describe('faults', () => {
  it('a failing write removes the tmp file and closes it', async () => {
    const store = await tempStore();
    const before = await realFs.promises.readdir('/proc/self/fd');
    let writes = 0;
    hooks.beforeWrite = (proceed, fail) => (++writes === 3 ? fail(ioError('ENOSPC')) : proceed());
    const writer = store.create('full-disk');
    const source = Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(64 * 1024, 1)));
    await expect(pipeline(source, writer)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await realFs.promises.readdir('/proc/self/fd')).toEqual(before);
  });

  it('a failing fsync fails the commit and removes the tmp file', async () => {
    const store = await tempStore();
    hooks.beforeFileFsync = (_proceed, fail) => fail(Object.assign(ioError('EIO'), { syscall: 'fsync' }));
    const writer = store.create('unsynced');
    writer.end('data');
    await expect(finished(writer)).rejects.toMatchObject({ code: 'EIO', syscall: 'fsync' });
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('destroy() during the fsync waits for it, then aborts the commit', async () => {
    const store = await tempStore();
    let release: () => void = () => {};
    hooks.beforeFileFsync = (proceed) => {
      release = proceed;
    };
    const writer = store.create('aborted');
    writer.end('data');
    await vi.waitFor(() => expect(hooks.fileFsyncs).toBe(1));
    writer.destroy();
    // the descriptor is still in use by the pending fsync: nothing is closed or unlinked yet
    expect(await namesIn(store, 'tmp')).toHaveLength(1);
    release();
    await finished(writer).catch(() => {});
    expect(writer.closed).toBe(true);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('honours backpressure: a 64 MiB upload into a slow disk stays a few chunks ahead', async () => {
    const store = await tempStore({ durability: 'none' });
    hooks.beforeWrite = (proceed) => void setTimeout(proceed, 1);
    const chunk = 64 * 1024;
    const total = 64 * 1024 * 1024;
    let produced = 0;
    let maxAhead = 0;
    const source = new Readable({
      highWaterMark: chunk,
      read() {
        maxAhead = Math.max(maxAhead, produced - hooks.bytesWritten);
        if (produced >= total) return void this.push(null);
        produced += chunk;
        this.push(Buffer.alloc(chunk, produced & 0xff));
      },
    });
    const writer = store.create('large');
    await pipeline(source, writer);
    expect((await realFs.promises.stat(writer.path)).size).toBe(total);
    expect(hooks.bytesWritten).toBe(total);
    // the source never runs more than the two streams' buffers ahead of the disk
    expect(maxAhead).toBeLessThanOrEqual(4 * chunk);
  });
});
