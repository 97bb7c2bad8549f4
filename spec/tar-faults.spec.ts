// exportTar under file-system faults that cannot be made for real here (the
// specs may run as root, which ignores permissions, and EIO needs a failing
// disk): node:fs/promises, the module lib/tar.ts reads through, is wrapped
// to fail chosen opens and reads.
import { readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterEach, expect, it, vi } from 'vitest';
import { tempStore } from './helpers.js';

const faults = vi.hoisted(() => ({ open: new Map<string, string>(), read: new Map<string, string>() }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const fail = (code: string, syscall: string, path: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: injected, ${syscall} '${path}'`), { code, syscall, path });
  const open: typeof real.open = async (path, flags, mode) => {
    const openCode = faults.open.get(String(path));
    if (openCode !== undefined) throw fail(openCode, 'open', String(path));
    const handle = await real.open(path, flags, mode);
    const readCode = faults.read.get(String(path));
    if (readCode !== undefined) {
      const read = handle.read.bind(handle) as (...args: unknown[]) => Promise<unknown>;
      let reads = 0;
      Object.assign(handle, {
        read: (...args: unknown[]) => (reads++ === 0 ? read(...args) : Promise.reject(fail(readCode, 'read', String(path)))),
      });
    }
    return handle;
  };
  return { ...real, open, default: { ...real, open } };
});

afterEach(() => {
  faults.open.clear();
  faults.read.clear();
});

async function drain(stream: Readable): Promise<unknown> {
  try {
    for await (const chunk of stream) void chunk;
    return undefined;
  } catch (err) {
    return err;
  }
}

async function openFilesUnder(dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
  return targets.filter((target) => target.startsWith(dir));
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
