// The reader thread of exportTar: readBatch on real files (with faults put in
// through the fs object it is given, the way the thread is given node:fs), the
// thread's life, and exports that go through it: real EACCES as a non-root
// user, no descriptor left open, and a process that still exits by itself.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { chmod, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { FileStore } from '../lib/index.js';
import {
  BATCH_BYTES,
  BATCH_NAMES,
  Kind,
  readBatch,
  readerThread,
  RECORD_FIELDS,
  SMALL_FILE_MAX,
  type Batch,
  type BatchLimits,
  type SyncFs,
} from '../lib/tar/reader.js';
import { DIST, tempDir, tempStore } from './helpers.js';
import { collect, entriesOf, openFilesUnder } from './tar-helpers.js';
import { readableCopy } from './readable-copy.js';
import { IS_ROOT, probe } from './reliability.js';

const run = promisify(execFile);

const LIMITS: BatchLimits = {
  flags: fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK,
  smallFileMax: SMALL_FILE_MAX,
  batchBytes: BATCH_BYTES,
};

/** The kinds of a batch's records, in order. */
function kinds(batch: Batch): number[] {
  const out: number[] = [];
  for (let at = 0; at < batch.records.length; at += RECORD_FIELDS) out.push(batch.records[at] as number);
  return out;
}

/** The bytes of the index-th record of a batch. */
function bytesOf(batch: Batch, index: number): Buffer {
  const at = index * RECORD_FIELDS;
  return Buffer.from(batch.data, batch.records[at + 1], batch.records[at + 2]);
}

interface Fault {
  /** The call that fails, for the file of this name. */
  syscall: 'open' | 'fstat' | 'read';
  name: string;
  code: string;
}

/** node:fs's synchronous calls, counting the descriptors open, failing one call if asked, and running `afterFstat`. */
function countingFs(fault?: Fault, afterFstat?: (path: string) => void): SyncFs & { open: Map<number, string> } {
  const open = new Map<number, string>();
  const fails = (syscall: Fault['syscall'], path: string): boolean =>
    fault !== undefined && fault.syscall === syscall && path.endsWith(`/${fault.name}`);
  const fail = (syscall: string, path: string): never => {
    throw Object.assign(new Error(`${fault?.code}: injected, ${syscall} '${path}'`), {
      code: fault?.code,
      syscall,
      path,
    });
  };
  return {
    open,
    openSync(bytesOrText, flags) {
      const path = String(bytesOrText);
      if (fails('open', path)) fail('open', path);
      const fd = fs.openSync(path, flags);
      open.set(fd, path);
      return fd;
    },
    fstatSync(fd) {
      const path = open.get(fd) ?? '';
      if (fails('fstat', path)) fail('fstat', path);
      const stats = fs.fstatSync(fd);
      afterFstat?.(path);
      return stats;
    },
    readSync(fd, buffer, offset, length, position) {
      const path = open.get(fd) ?? '';
      if (fails('read', path)) fail('read', path);
      return fs.readSync(fd, buffer, offset, length, position);
    },
    closeSync(fd) {
      open.delete(fd);
      fs.closeSync(fd);
    },
  };
}

async function filesIn(dir: string, files: Record<string, string | Buffer>): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  for (const [name, data] of Object.entries(files)) await writeFile(join(dir, name), data);
  return Object.keys(files);
}

describe('readBatch', () => {
  it('reads small files whole, with size, mode and mtime, into one buffer', async () => {
    const dir = await tempDir();
    const names = await filesIn(dir, { a: 'alpha', empty: '', b: Buffer.alloc(1000, 7), c: 'gamma' });
    await chmod(join(dir, 'b'), 0o640);
    await utimes(join(dir, 'c'), 1_700_000_000, 1_700_000_000.5);
    const fsCalls = countingFs();
    const batch = readBatch(fsCalls, dir, names, LIMITS);
    expect(kinds(batch)).toEqual([Kind.Read, Kind.Read, Kind.Read, Kind.Read]);
    expect(bytesOf(batch, 0).toString()).toBe('alpha');
    expect(bytesOf(batch, 1).length).toBe(0);
    expect(bytesOf(batch, 2).equals(Buffer.alloc(1000, 7))).toBe(true);
    expect(bytesOf(batch, 3).toString()).toBe('gamma');
    expect((batch.records[2 * RECORD_FIELDS + 3] as number) & 0o7777).toBe(0o640);
    expect(batch.records[3 * RECORD_FIELDS + 4]).toBe(1_700_000_000_500);
    expect(batch.data.byteLength).toBe(5 + 0 + 1000 + 5 + 1);
    expect(fsCalls.open.size).toBe(0);
  });

  it('skips vanished files, symlinks and what is not a regular file', async () => {
    const dir = await tempDir();
    await filesIn(dir, { real: 'real' });
    await symlink(join(dir, 'real'), join(dir, 'link'));
    await mkdir(join(dir, 'subdir'));
    const fsCalls = countingFs();
    const batch = readBatch(fsCalls, dir, ['gone', 'link', 'subdir', 'real'], LIMITS);
    expect(kinds(batch)).toEqual([Kind.Skip, Kind.Skip, Kind.Skip, Kind.Read]);
    expect(bytesOf(batch, 3).toString()).toBe('real');
    expect(fsCalls.open.size).toBe(0);
  });

  it('leaves files over the small-file size, and those past the byte budget, to the main thread', async () => {
    const dir = await tempDir();
    const names = await filesIn(dir, {
      small: 'x',
      over: Buffer.alloc(SMALL_FILE_MAX + 1),
      max: Buffer.alloc(SMALL_FILE_MAX, 1),
      fits: Buffer.alloc(10, 2),
    });
    const fsCalls = countingFs();
    const batch = readBatch(fsCalls, dir, names, { ...LIMITS, batchBytes: SMALL_FILE_MAX + 5 });
    expect(kinds(batch)).toEqual([Kind.Read, Kind.Large, Kind.Read, Kind.Large]);
    expect(bytesOf(batch, 2).equals(Buffer.alloc(SMALL_FILE_MAX, 1))).toBe(true);
    expect(fsCalls.open.size).toBe(0);
  });

  it.each([
    ['grew', Kind.Grew, (path: string) => fs.appendFileSync(path, 'more')],
    ['shrank', Kind.Shrank, (path: string) => fs.truncateSync(path, 2)],
  ])('marks a file that %s between its fstat and its read, and ends the batch there', async (_, kind, change) => {
    const dir = await tempDir();
    const names = await filesIn(dir, { before: 'fine', changing: 'changing', after: 'never read' });
    // a real change, made right after the fstat
    const fsCalls = countingFs(undefined, (path) => path.endsWith('/changing') && change(path));
    const batch = readBatch(fsCalls, dir, names, LIMITS);
    expect(kinds(batch)).toEqual([Kind.Read, kind]);
    expect(bytesOf(batch, 0).toString()).toBe('fine');
    expect(fsCalls.open.size).toBe(0);
  });

  it.each([
    { syscall: 'open', name: 'b', code: 'EACCES' },
    { syscall: 'fstat', name: 'b', code: 'EIO' },
    { syscall: 'read', name: 'b', code: 'EIO' },
  ] as const)('ends the batch with the error of a failing $syscall, and closes every descriptor', async (fault) => {
    const dir = await tempDir();
    const names = await filesIn(dir, { a: 'a', b: 'b', c: 'c' });
    const fsCalls = countingFs(fault);
    const batch = readBatch(fsCalls, dir, names, LIMITS);
    expect(kinds(batch)).toEqual([Kind.Read, Kind.Failed]);
    expect(batch.error).toMatchObject({ code: fault.code, syscall: fault.syscall, path: join(dir, 'b') });
    expect(bytesOf(batch, 0).toString()).toBe('a');
    expect(fsCalls.open.size).toBe(0);
  });
});

describe('the reader thread', () => {
  it('rejects the batches it is reading with ERR_READER_EXITED when it ends, and a new thread serves the next', async () => {
    const dir = await tempDir();
    const names = await filesIn(dir, Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`f${i}`, 'x'])));
    const reading = Array.from({ length: 20 }, () => readerThread.read(dir, names));
    await readerThread.stop();
    const results = await Promise.allSettled(reading);
    expect(results.some((result) => result.status === 'rejected')).toBe(true);
    for (const result of results) {
      if (result.status === 'rejected') expect(result.reason).toMatchObject({ code: 'ERR_READER_EXITED' });
    }
    const batch = await readerThread.read(dir, names.slice(0, 3));
    expect(kinds(batch)).toEqual([Kind.Read, Kind.Read, Kind.Read]);
  });

  it('ends an export with ERR_READER_EXITED when the thread ends under it', async () => {
    const store = await tempStore({ durability: 'none' });
    for (let i = 0; i < 4 * BATCH_NAMES; i++) await writeFile(join(store.root, 'new', `f${i}`), 'x');
    await readerThread.stop(); // the export starts a new thread, which takes far longer to start than the spec to stop it
    const stream = store.exportTar('new');
    const failed = collect(stream).then(
      () => undefined,
      (err: unknown) => err,
    );
    while (readerThread.pending === 0) await new Promise((resolve) => setImmediate(resolve));
    await readerThread.stop();
    expect(await failed).toMatchObject({ code: 'ERR_READER_EXITED' });
  });

  it('closes every descriptor it opened: none is left open on the store after an export', async () => {
    const store = await tempStore({ durability: 'none' });
    for (let i = 0; i < 10 * BATCH_NAMES; i++) await writeFile(join(store.root, 'new', `f${i}`), `file ${i}`);
    let bytes = 0;
    for await (const chunk of store.exportTar('new')) bytes += (chunk as Buffer).length;
    expect(bytes).toBeGreaterThan(10 * BATCH_NAMES * 1024);
    expect(await openFilesUnder(store.root)).toEqual([]);
  });

  it('shares one thread between exports running at once, each archive complete', async () => {
    const stores: FileStore[] = [];
    for (let s = 0; s < 3; s++) {
      const store = await tempStore({ durability: 'none' });
      for (let i = 0; i < 4 * BATCH_NAMES; i++)
        await writeFile(join(store.root, 'new', `s${s}-f${i}`), `store ${s} file ${i}`);
      stores.push(store);
    }
    const archives = await Promise.all(stores.map((store) => entriesOf(store.exportTar('new'))));
    archives.forEach((entries, s) => {
      const names = entries.map((entry) => entry.name);
      expect(names.length).toBe(4 * BATCH_NAMES);
      expect(names.every((name) => name.startsWith(`s${s}-`))).toBe(true);
    });
  });

  it("reads every file on the main thread where the process may not start threads (Node's permission model)", async () => {
    const store = await tempStore({ durability: 'none' });
    const count = 4 * BATCH_NAMES;
    for (let i = 0; i < count; i++) await writeFile(join(store.root, 'new', `f${i}`), `file ${i}`);
    const script = `
      import { FileStore } from ${JSON.stringify(DIST)};
      import { Worker } from 'node:worker_threads';
      let refused = '';
      try { new Worker('', { eval: true }).terminate(); } catch (err) { refused = err.code; }
      let entries = 0;
      for await (const chunk of new FileStore(${JSON.stringify(store.root)}).exportTar('new')) entries += chunk.length;
      console.log(JSON.stringify({ refused, bytes: entries }));
    `;
    const { stdout } = await run(process.execPath, [
      '--experimental-permission',
      '--allow-fs-read=*',
      '--no-warnings',
      '--input-type=module',
      '-e',
      script,
    ]);
    expect(JSON.parse(stdout)).toEqual({ refused: 'ERR_ACCESS_DENIED', bytes: count * 1024 + 1024 });
  });

  it('does not keep the process alive: a script that exports and returns exits by itself', async () => {
    const store = await tempStore({ durability: 'none' });
    for (let i = 0; i < 4 * BATCH_NAMES; i++) await writeFile(join(store.root, 'new', `f${i}`), 'x');
    const script = `
      import { FileStore } from ${JSON.stringify(DIST)};
      let bytes = 0;
      for await (const chunk of new FileStore(${JSON.stringify(store.root)}).exportTar('new')) bytes += chunk.length;
      console.log(bytes);
    `;
    // The thread ends after 10 s without work; were it to hold the process, the child would outlive the 8 s timeout.
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 8000 });
    expect(Number(stdout)).toBeGreaterThan(4 * BATCH_NAMES * 1024);
  });
});

const nobody = IS_ROOT ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
const canDrop = IS_ROOT ? probe([...nobody, 'true']) : { ok: true, reason: '' };

describe.skipIf(!canDrop.ok)(
  `a file the exporting user may not read${canDrop.ok ? '' : ` (skipped: ${canDrop.reason})`}`,
  () => {
    it.each([
      ['in the first batch (main thread)', 3],
      ['after the first batch (reader thread)', BATCH_NAMES + 3],
    ])('destroys the stream with EACCES, syscall open and its path: %s', async (_, position) => {
      const store = await tempStore({ durability: 'none' });
      await chmod(join(store.root, '..'), 0o755);
      const names = Array.from({ length: position + 5 }, (_, i) => `f${String(i).padStart(3, '0')}`);
      for (const name of names) await writeFile(join(store.root, 'new', name), name, { mode: 0o644 });
      const secret = names[position] as string;
      await chmod(join(store.root, 'new', secret), 0o000);
      const script = `
      import { FileStore } from ${JSON.stringify(readableCopy().dist)};
      try {
        for await (const chunk of new FileStore(${JSON.stringify(store.root)}).exportTar('new', { names: ${JSON.stringify(names)} })) void chunk;
        console.log(JSON.stringify({ ok: true }));
      } catch (err) {
        console.log(JSON.stringify({ code: err.code, syscall: err.syscall, path: err.path }));
      }
    `;
      const [command = '', ...args] = [...nobody, process.execPath, '--input-type=module', '-e', script];
      const { stdout } = await run(command, args);
      expect(JSON.parse(stdout)).toEqual({ code: 'EACCES', syscall: 'open', path: join(store.root, 'new', secret) });
    });
  },
);
