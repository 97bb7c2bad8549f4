// A durable overwrite whose directory fsync fails must not lose the name:
// the version it replaced is put back (or, where it could not be kept, the
// new one stays and the error says so). The fault is injected by wrapping
// the callback fs API that lib/writer.ts and lib/durability.ts really call;
// everything else is real.
import * as realFs from 'node:fs';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { afterEach, describe, expect, it } from 'vitest';
import { vi } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { createServer } from '../lib/server/index.js';
import { namesIn, tempStore } from './helpers.js';

type Cb = (err: NodeJS.ErrnoException | null, ...rest: unknown[]) => void;

const hooks = vi.hoisted(() => ({
  directoryFds: new Set<number>(),
  directoryOpens: 0,
  directoryFsyncs: 0,
  /** The error every directory fsync fails with, when set. */
  directoryFsyncError: null as null | string,
  /** The error every link fails with, when set (a file system without hard links). */
  linkError: null as null | string,
}));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const fault = (code: string, syscall: string): NodeJS.ErrnoException =>
    Object.assign(new Error(`${code}: injected, ${syscall}`), { code, syscall });
  const wrapped = {
    ...fs,
    open: ((path: string, flags: number, ...rest: unknown[]) => {
      const cb = rest.pop() as Cb;
      const isDirectory = typeof flags === 'number' && (flags & fs.constants.O_DIRECTORY) !== 0;
      if (isDirectory) hooks.directoryOpens++;
      fs.open(path, flags, (rest[0] ?? 0o666) as number, (err, fd) => {
        if (!err && isDirectory) hooks.directoryFds.add(fd);
        cb(err, fd);
      });
    }) as typeof fs.open,
    close: ((fd: number, cb: Cb) => {
      hooks.directoryFds.delete(fd);
      fs.close(fd, cb);
    }) as typeof fs.close,
    // lib/durability.ts closes a held directory with closeSync: a stale entry here would turn a later file's fsync into a directory fsync
    closeSync: ((fd: number) => {
      hooks.directoryFds.delete(fd);
      fs.closeSync(fd);
    }) as typeof fs.closeSync,
    fsync: ((fd: number, cb: Cb) => {
      if (!hooks.directoryFds.has(fd)) return fs.fsync(fd, cb);
      hooks.directoryFsyncs++;
      const code = hooks.directoryFsyncError;
      if (code === null) return fs.fsync(fd, cb);
      setImmediate(() => cb(fault(code, 'fsync')));
    }) as typeof fs.fsync,
    link: ((from: string, to: string, cb: Cb) => {
      const code = hooks.linkError;
      if (code === null) return fs.link(from, to, cb);
      setImmediate(() => cb(fault(code, 'link')));
    }) as typeof fs.link,
  };
  return { ...wrapped, default: wrapped };
});

afterEach(() => {
  hooks.directoryOpens = 0;
  hooks.directoryFsyncs = 0;
  hooks.directoryFsyncError = null;
  hooks.linkError = null;
});

/** A store at durability full whose new/ holds `old` under `name`, and cur/ `new` (the source of copy). */
async function storeWithOld(name = 'x'): Promise<FileStore> {
  const store = await tempStore({ durability: 'full' });
  await writeFile(join(store.root, 'new', name), 'old');
  await writeFile(join(store.root, 'cur', name), 'new');
  return store;
}

function createOver(store: FileStore, name: string): Promise<void> {
  const writer = store.create(name, { overwrite: true });
  writer.end('new');
  return finished(writer);
}

async function archiveOf(name: string, body: string): Promise<Buffer> {
  const pack = tarStream.pack();
  pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function putOver(store: FileStore, name: string): Promise<void> {
  const server = createServer(store, {});
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/files/${name}?overwrite=true`, {
      method: 'PUT',
      body: 'new',
    });
    const answer = (await response.json()) as { error?: { code: string } };
    if (response.status !== 201) throw Object.assign(new Error(`HTTP ${response.status}`), answer.error);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

const PATHS: Array<[string, (store: FileStore, name: string) => Promise<unknown>]> = [
  ['create', createOver],
  ['copy', (store, name) => store.copy(name, 'cur', 'new', { overwrite: true })],
  [
    'importTar',
    async (store, name) => store.importTar(Readable.from([await archiveOf(name, 'new')]), { overwrite: true }),
  ],
  ['HTTP PUT ?overwrite=true', putOver],
];

describe('a durable overwrite whose directory fsync fails (injected EIO)', () => {
  it.each(PATHS)('%s puts the replaced version back and fails with the fsync error', async (_path, overwrite) => {
    const store = await storeWithOld();
    hooks.directoryFsyncError = 'EIO';
    await expect(overwrite(store, 'x')).rejects.toMatchObject({ code: 'EIO' });
    expect(await readFile(join(store.root, 'new', 'x'), 'utf8')).toBe('old');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it.each(PATHS)(
    '%s without hard links keeps the new version, failing with ERR_COMMIT_NOT_DURABLE',
    async (_path, overwrite) => {
      const store = await storeWithOld();
      hooks.directoryFsyncError = 'EIO';
      hooks.linkError = 'EPERM';
      await expect(overwrite(store, 'x')).rejects.toMatchObject({ code: 'ERR_COMMIT_NOT_DURABLE' });
      expect(await readFile(join(store.root, 'new', 'x'), 'utf8')).toBe('new');
      expect(await namesIn(store, 'tmp')).toEqual([]);
    },
  );

  it.each(PATHS)('%s that succeeds leaves only the new version', async (_path, overwrite) => {
    const store = await storeWithOld();
    await overwrite(store, 'x');
    expect(await readFile(join(store.root, 'new', 'x'), 'utf8')).toBe('new');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('a new name (nothing replaced) is taken back: the failed write leaves nothing', async () => {
    const store = await tempStore({ durability: 'full' });
    hooks.directoryFsyncError = 'EIO';
    await expect(createOver(store, 'fresh')).rejects.toMatchObject({ code: 'EIO' });
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });
});

describe('the directory fsync of a commit', () => {
  it('opens no descriptor after the writer has opened its file, and none stays open after it', async () => {
    const store = await storeWithOld();
    const before = await realFs.promises.readdir('/proc/self/fd');
    const writer = store.create('x', { overwrite: true });
    await new Promise<void>((resolve, reject) => writer.write('ne', (err) => (err ? reject(err) : resolve())));
    hooks.directoryOpens = 0;
    writer.end('w');
    await finished(writer);
    expect(hooks.directoryFsyncs).toBe(1);
    expect(hooks.directoryOpens).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await realFs.promises.readdir('/proc/self/fd')).toEqual(before);
    expect(await readFile(join(store.root, 'new', 'x'), 'utf8')).toBe('new');
  });

  it('is shared by concurrent writers holding one descriptor of the directory', async () => {
    const store = await tempStore({ durability: 'full' });
    const writers = Array.from({ length: 32 }, (_, i) => {
      const writer = store.create(`w${i}`);
      writer.end(`${i}`);
      return writer;
    });
    await Promise.all(writers.map((writer) => finished(writer)));
    expect(hooks.directoryOpens).toBe(1);
    expect(await namesIn(store, 'new')).toHaveLength(32);
  });
});
