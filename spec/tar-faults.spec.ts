// exportTar under file-system faults that cannot be made for real here (the
// specs may run as root, which ignores permissions, and EIO needs a failing
// disk). Files of the first batch, and large files, are read on the main
// thread through node:fs, which is wrapped to fail chosen opens and reads (the
// first read of a file succeeds, later ones fail). Later small files are read
// by the reader thread, which a spy replaces with the same readBatch run here,
// on node:fs's synchronous calls with the same faults (a real EACCES through
// the thread is in tar-reader.spec.ts). Files that change between fstat and
// read are changed for real, right after the fstat.
import * as fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BATCH_NAMES, LIMITS, readBatch, readerThread, type SyncFs } from '../lib/tar/reader.js';
import { tempStore } from './helpers.js';
import { openFilesUnder } from './tar-helpers.js';

const faults = vi.hoisted(() => ({ open: new Map<string, string>(), read: new Map<string, string>() }));

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const fail = (code: string, syscall: string, path: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: injected, ${syscall} '${path}'`), { code, syscall, path });
  const failingReads = new Map<number, { code: string; path: string; reads: number }>();
  type Callback = (err: NodeJS.ErrnoException | null, value?: unknown) => void;
  const open = (path: string, ...rest: unknown[]): void => {
    const callback = rest.pop() as Callback;
    const openCode = faults.open.get(path);
    if (openCode !== undefined) return process.nextTick(callback, fail(openCode, 'open', path));
    (real.open as (...args: unknown[]) => void)(path, ...rest, (err: NodeJS.ErrnoException | null, fd: number) => {
      const readCode = faults.read.get(path);
      if (!err && readCode !== undefined) failingReads.set(fd, { code: readCode, path, reads: 0 });
      callback(err, fd);
    });
  };
  const read = (
    fd: number,
    buffer: Buffer,
    offset: number,
    length: number,
    position: number,
    callback: Callback,
  ): void => {
    const failing = failingReads.get(fd);
    if (failing !== undefined && failing.reads++ > 0)
      return process.nextTick(callback, fail(failing.code, 'read', failing.path));
    real.read(fd, buffer, offset, length, position, (err, bytesRead) => callback(err, bytesRead));
  };
  const closeSync = (fd: number): void => {
    failingReads.delete(fd);
    real.closeSync(fd);
  };
  return { ...real, open, read, closeSync, default: { ...real, open, read, closeSync } };
});

afterEach(() => {
  faults.open.clear();
  faults.read.clear();
  vi.restoreAllMocks();
});

async function drain(stream: Readable): Promise<unknown> {
  try {
    for await (const chunk of stream) void chunk;
    return undefined;
  } catch (err) {
    return err;
  }
}

it('destroys the stream with EACCES when a file cannot be opened', async () => {
  const store = await tempStore({ durability: 'none' });
  for (const name of ['a', 'b', 'c']) await writeFile(join(store.root, 'new', name), name);
  faults.open.set(join(store.root, 'new', 'b'), 'EACCES');
  const err = await drain(store.exportTar('new', { names: ['a', 'b', 'c'] }));
  expect(err).toMatchObject({ code: 'EACCES', syscall: 'open', path: join(store.root, 'new', 'b') });
});

it('destroys the stream with EIO when a read fails, and closes the file', async () => {
  const store = await tempStore({ durability: 'none' });
  const path = join(store.root, 'new', 'big');
  await writeFile(path, Buffer.alloc(1024 * 1024, 2));
  faults.read.set(path, 'EIO');
  const err = await drain(store.exportTar('new'));
  expect(err).toMatchObject({ code: 'EIO', syscall: 'read' });
  await vi.waitFor(async () => expect(await openFilesUnder(store.root)).toEqual([]));
});

it('still skips a file whose open finds it gone', async () => {
  const store = await tempStore({ durability: 'none' });
  for (const name of ['a', 'b']) await writeFile(join(store.root, 'new', name), name);
  faults.open.set(join(store.root, 'new', 'a'), 'ENOENT');
  const chunks: Buffer[] = [];
  for await (const chunk of store.exportTar('new', { names: ['a', 'b'] })) chunks.push(chunk as Buffer);
  const archive = Buffer.concat(chunks);
  expect(archive.subarray(0, 2).toString()).toBe('b\0'); // the first header names b
  expect(archive.length).toBe(512 + 512 + 1024);
});

describe('small files after the first batch, read by the reader thread', () => {
  const fillers = Array.from({ length: BATCH_NAMES }, (_, i) => `filler-${i}`);

  /** A store with the fillers and `files`, and the reader thread replaced by readBatch on this thread. */
  async function storeWith(
    files: string[],
    afterFstat?: (path: string) => void,
  ): Promise<Awaited<ReturnType<typeof tempStore>>> {
    const store = await tempStore({ durability: 'none' });
    for (const name of [...fillers, ...files]) await writeFile(join(store.root, 'new', name), name);
    const fail = (code: string, syscall: string, path: string): never => {
      throw Object.assign(new Error(`${code}: injected, ${syscall} '${path}'`), { code, syscall, path });
    };
    const paths = new Map<number, string>();
    const syncFs: SyncFs = {
      openSync(bytesOrText, flags) {
        const path = String(bytesOrText);
        const code = faults.open.get(path);
        if (code !== undefined) fail(code, 'open', path);
        const fd = fs.openSync(path, flags);
        paths.set(fd, path);
        return fd;
      },
      fstatSync(fd) {
        const stats = fs.fstatSync(fd);
        afterFstat?.(paths.get(fd) ?? '');
        return stats;
      },
      readSync(fd, buffer, offset, length, position) {
        const path = paths.get(fd) ?? '';
        const code = faults.read.get(path);
        if (code !== undefined) fail(code, 'read', path);
        return fs.readSync(fd, buffer, offset, length, position);
      },
      closeSync(fd) {
        paths.delete(fd);
        fs.closeSync(fd);
      },
    };
    vi.spyOn(readerThread, 'read').mockImplementation(async (dir, names) => readBatch(syncFs, dir, names, LIMITS));
    return store;
  }

  it('destroys the stream with EACCES when a file cannot be opened', async () => {
    const store = await storeWith(['a', 'b', 'c']);
    faults.open.set(join(store.root, 'new', 'b'), 'EACCES');
    const err = await drain(store.exportTar('new', { names: [...fillers, 'a', 'b', 'c'] }));
    expect(err).toMatchObject({ code: 'EACCES', syscall: 'open', path: join(store.root, 'new', 'b') });
    expect(readerThread.read).toHaveBeenCalled();
  });

  it('destroys the stream with EIO when a read fails', async () => {
    const store = await storeWith(['a', 'b', 'c']);
    faults.read.set(join(store.root, 'new', 'b'), 'EIO');
    const err = await drain(store.exportTar('new', { names: [...fillers, 'a', 'b', 'c'] }));
    expect(err).toMatchObject({ code: 'EIO', syscall: 'read', path: join(store.root, 'new', 'b') });
    expect(await openFilesUnder(store.root)).toEqual([]);
  });

  it('still skips a file whose open finds it gone', async () => {
    const store = await storeWith(['a', 'b']);
    faults.open.set(join(store.root, 'new', 'a'), 'ENOENT');
    const chunks: Buffer[] = [];
    for await (const chunk of store.exportTar('new', { names: [...fillers, 'a', 'b'] })) chunks.push(chunk as Buffer);
    const archive = Buffer.concat(chunks);
    const entries = fillers.length + 1;
    expect(archive.length).toBe(entries * 1024 + 1024);
    expect(archive.subarray((entries - 1) * 1024, (entries - 1) * 1024 + 2).toString()).toBe('b\0'); // the last header names b
    expect(readerThread.read).toHaveBeenCalled();
  });

  it.each([
    ['grows', (path: string) => fs.appendFileSync(path, 'more')],
    ['shrinks', (path: string) => fs.truncateSync(path, 0)],
  ])('destroys the stream with ERR_FILE_CHANGED when a file %s between its fstat and its read', async (_, change) => {
    const store = await storeWith(['a', 'b', 'c'], (path) => path.endsWith('/b') && change(path));
    const err = await drain(store.exportTar('new', { names: [...fillers, 'a', 'b', 'c'] }));
    expect(err).toMatchObject({ code: 'ERR_FILE_CHANGED', path: join(store.root, 'new', 'b') });
    expect(await openFilesUnder(store.root)).toEqual([]);
  });
});
