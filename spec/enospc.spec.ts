// Guarantee 3 when the disk gives out. Real faults first: a small tmpfs filled
// mid-stream (ENOSPC on write) and one out of inodes (ENOSPC on create). Then
// the faults a test cannot make for real, injected into the module the code
// really calls: fsync/close/write of 'node:fs' (writer, directory fsync) and
// link/rename/unlink of 'node:fs/promises' (commit, move, claim). Every case
// checks that the tmp file is gone, nothing appeared in new/, what was
// committed before is intact, and no descriptor leaked.
import { once } from 'node:events';
import { mkdtemp, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { FileStore, type FileWriter } from '../lib/index.js';
import { namesIn, openFds, tempStore } from './helpers.js';
import { contentsOf, mountTmpfs, selfCheckingBody, unmount, verifiesSelf } from './reliability.js';

// ---- fault injection --------------------------------------------------------

type Fn = 'fsync' | 'close' | 'write' | 'writev' | 'link' | 'rename' | 'unlink';

const faults = vi.hoisted(() => {
  const armed = new Map<string, { code: string; skip: number; times: number }>();
  let injected = 0;
  return {
    /** Fails the call of `fn` after `skip` real ones, `times` calls in a row. */
    arm(fn: string, code: string, skip = 0, times = 1): void {
      armed.set(fn, { code, skip, times });
    },
    disarm(): void {
      armed.clear();
    },
    get injected(): number {
      return injected;
    },
    /** The error to raise for this call of `fn`, or null to run the real call. */
    take(fn: string, path?: unknown): (Error & { code: string; syscall: string }) | null {
      const fault = armed.get(fn);
      if (fault === undefined) return null;
      if (fault.skip > 0) {
        fault.skip--;
        return null;
      }
      if (--fault.times === 0) armed.delete(fn);
      injected++;
      const err = new Error(`${fault.code}: injected, ${fn}`) as Error & {
        code: string;
        syscall: string;
        path?: unknown;
      };
      err.code = fault.code;
      err.syscall = fn;
      if (path !== undefined) err.path = path;
      return err;
    },
  };
});

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  type Cb = (...args: unknown[]) => void;
  const callbackFault =
    (fn: string, realFn: (...args: any[]) => void) =>
    (...args: any[]) => {
      const err = faults.take(fn);
      if (err === null) return realFn(...args);
      process.nextTick(args.at(-1) as Cb, err);
    };
  return {
    ...real,
    fsync: callbackFault('fsync', real.fsync),
    write: callbackFault('write', real.write),
    writev: callbackFault('writev', real.writev),
    // the writer's commit links and renames through the callback API, move and claim through fs/promises
    link: callbackFault('link', real.link),
    rename: callbackFault('rename', real.rename),
    // close always releases the descriptor on Linux, even when it reports an error
    close: (fd: number, cb: Cb) => {
      const err = faults.take('close');
      real.close(fd, (closeErr) => cb(err ?? closeErr));
    },
  };
});

// The faults here are injected into node:fs of this thread, which small files at
// durability none bypass on the commit thread: every writer takes the thread
// pool, as where threads are refused. The commit thread's faults are in
// commit-thread.spec.ts (injected through its fs object, and real ENOSPC).
vi.mock('../lib/commit-thread.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../lib/commit-thread.js')>();
  real.commitThread.admit = () => false;
  return real;
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  const promiseFault =
    <A extends unknown[]>(fn: string, realFn: (...args: A) => Promise<void>) =>
    (...args: A) => {
      const err = faults.take(fn, args[0]);
      return err === null ? realFn(...args) : Promise.reject(err);
    };
  return {
    ...real,
    link: promiseFault('link', real.link),
    rename: promiseFault('rename', real.rename),
    unlink: promiseFault('unlink', real.unlink),
  };
});

/** Totals for the README's figures. */
const figures = { realFaults: 0 };

afterAll(() => {
  console.log(`enospc: ${faults.injected} injected faults, ${figures.realFaults} real ENOSPC faults, 0 files lost`);
});

async function write(writer: FileWriter, body: Buffer): Promise<void> {
  await pipeline(Readable.from([body]), writer);
}

// ---- real faults on a small tmpfs ------------------------------------------

const base = await mkdtemp(join(tmpdir(), 'filestore-enospc-'));
const small = await mountTmpfs(join(base, 'small'), 'size=512k,mode=0755');
const fewInodes = await mountTmpfs(join(base, 'inodes'), 'size=4m,nr_inodes=16,mode=0755');

afterAll(async () => {
  unmount(small);
  unmount(fewInodes);
  await rm(base, { recursive: true, force: true });
});

describe.skipIf(!small.ok)(`a full disk (512 KiB tmpfs)${small.ok ? '' : ` (skipped: ${small.reason})`}`, () => {
  it('fails a writer with ENOSPC mid-stream, removes its tmp file, keeps earlier commits, and writes again once space is freed', async () => {
    const store = new FileStore(join(base, 'small', 'store'));
    await store.prepare();
    const earlier = new Map<string, Buffer>();
    for (const [name, size] of [
      ['a', 10],
      ['b', 4000],
      ['big', 100_000],
    ] as const) {
      const body = selfCheckingBody(size);
      await write(store.create(name), body);
      earlier.set(name, body);
    }

    // leave 64 KiB free, then stream 256 KiB
    const { bavail, bsize } = await statfs(join(base, 'small'));
    const ballast = join(base, 'small', 'ballast');
    await writeFile(ballast, Buffer.alloc(bavail * bsize - 64 * 1024));
    const fds = openFds().length;

    const writer = store.create('too-big');
    const body = selfCheckingBody(256 * 1024);
    const chunk = 16 * 1024; // the writer's highWaterMark: every write waits for 'drain', so `landed` counts chunks on disk
    let landed = 0;
    const outcome = await (async () => {
      for (let offset = 0; offset < body.length; offset += chunk) {
        if (!writer.write(body.subarray(offset, offset + chunk))) await once(writer, 'drain');
        landed++;
      }
      writer.end();
      await finished(writer);
    })().then(
      () => 'finished',
      (err: unknown) => err,
    );
    expect(outcome).toMatchObject({ code: 'ENOSPC' });
    figures.realFaults++;
    expect(landed).toBeGreaterThan(1); // it failed mid-stream, not at the first write
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await contentsOf(store.root, 'new')).toEqual(earlier);

    // a copy through tmp/ fails the same way and leaves no trace
    await expect(store.copy('big', 'new', 'cur')).rejects.toMatchObject({ code: 'ENOSPC' });
    figures.realFaults++;
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual([]);
    expect(openFds().length).toBe(fds);

    await rm(ballast);
    await write(store.create('too-big'), body);
    expect(verifiesSelf(await readFile(join(store.root, 'new', 'too-big')))).toBe(true);
    await store.copy('big', 'new', 'cur');
    expect(await readFile(join(store.root, 'cur', 'big'))).toEqual(earlier.get('big'));
    expect(openFds().length).toBe(fds);
  });
});

describe.skipIf(!fewInodes.ok)(
  `a full directory (tmpfs with 16 inodes)${fewInodes.ok ? '' : ` (skipped: ${fewInodes.reason})`}`,
  () => {
    it('fails create and copy with ENOSPC when no inode is left, and creates again once one is freed', async () => {
      const store = new FileStore(join(base, 'inodes', 'store'), { durability: 'none' });
      await store.prepare();
      const fds = openFds().length;
      const committed: string[] = [];
      let failure: unknown = null;
      for (let i = 0; failure === null; i++) {
        const name = `f${String(i).padStart(2, '0')}`;
        await write(store.create(name), Buffer.from(name)).then(
          () => committed.push(name),
          (err) => (failure = err),
        );
      }
      figures.realFaults++;
      expect(failure).toMatchObject({ code: 'ENOSPC' });
      expect(committed.length).toBeGreaterThan(3);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(await namesIn(store, 'new')).toEqual(committed);
      for (const [name, data] of await contentsOf(store.root, 'new')) expect(data.toString()).toBe(name);

      await expect(store.copy('f00', 'new', 'cur')).rejects.toMatchObject({ code: 'ENOSPC' });
      figures.realFaults++;
      await expect(new FileStore(join(base, 'inodes', 'other')).prepare()).rejects.toMatchObject({ code: 'ENOSPC' });
      figures.realFaults++;
      // tmpfs charges every hard link an inode, so even a claim (link + unlink) fails, and changes nothing
      await expect(store.claim('f00')).rejects.toMatchObject({ code: 'ENOSPC' });
      figures.realFaults++;
      expect(await namesIn(store, 'new')).toEqual(committed);
      expect(await namesIn(store, 'cur')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(openFds().length).toBe(fds);

      // a caller-chosen name needs two inodes for a moment (the tmp file and its link in new/)
      await store.remove('f00', 'new');
      await store.remove('f01', 'new');
      await write(store.create('again'), Buffer.from('again'));
      expect(await namesIn(store, 'new')).toEqual([...committed.slice(2), 'again'].sort());
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(openFds().length).toBe(fds);
    });
  },
);

// ---- injected faults in the commit path ------------------------------------

interface CommitFault {
  fn: Fn;
  code: string;
  /** Calls of `fn` to let through before the fault (the directory fsync is the second fsync). */
  skip?: number;
  durability: 'full' | 'none';
  /** Caller-chosen name (commit by link + unlink), generated (rename), or overwrite (rename). */
  naming: 'named' | 'generated' | 'overwrite';
  step: string;
}

const commitFaults: CommitFault[] = [];
for (const code of ['ENOSPC', 'EIO']) {
  commitFaults.push(
    { fn: 'write', code, durability: 'none', naming: 'named', step: 'write' },
    { fn: 'writev', code, durability: 'none', naming: 'named', step: 'writev' },
    { fn: 'fsync', code, durability: 'full', naming: 'named', step: 'file fsync' },
    { fn: 'close', code, durability: 'none', naming: 'generated', step: 'close' },
    { fn: 'link', code, durability: 'full', naming: 'named', step: 'link into new/' },
    { fn: 'unlink', code, durability: 'full', naming: 'named', step: 'unlink of tmp after link' },
    { fn: 'rename', code, durability: 'full', naming: 'generated', step: 'rename into new/' },
    { fn: 'rename', code, durability: 'none', naming: 'overwrite', step: 'rename over an existing file' },
    { fn: 'fsync', code, skip: 1, durability: 'full', naming: 'named', step: 'directory fsync' },
  );
}

describe('a fault in any step of a write', () => {
  it.each(commitFaults)(
    '$code in $step ($naming, durability $durability): the writer errors, tmp/ and new/ as before, no fd leak',
    async (f) => {
      const store = await tempStore({ durability: f.durability });
      await write(store.create('kept'), Buffer.from('kept'));
      if (f.naming === 'overwrite') await write(store.create('target'), Buffer.from('old'));
      const before = await contentsOf(store.root, 'new');
      const fds = openFds().length;

      const writer =
        f.naming === 'generated' ? store.create() : store.create('target', { overwrite: f.naming === 'overwrite' });
      faults.arm(f.fn, f.code, f.skip);
      const chunks = f.fn === 'writev' ? ['one', 'two', 'three'] : ['body'];
      if (f.fn === 'writev') writer.cork();
      for (const chunk of chunks) writer.write(chunk);
      writer.end();
      const outcome = await finished(writer).then(
        () => 'finished',
        (err: unknown) => err,
      );
      faults.disarm();

      expect(outcome).toMatchObject({ code: f.code });
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(await contentsOf(store.root, 'new')).toEqual(before);
      expect(openFds().length).toBe(fds);
    },
  );
});

interface TransferFault {
  op: 'move' | 'claim' | 'copy';
  fn: Fn;
  code: string;
  step: string;
  /** How many calls in a row fail: a claim tries a link again after `EIO` (a stale handle on a network file system), so there the fault persists. */
  times?: number;
}

const transferFaults: TransferFault[] = [];
for (const code of ['ENOSPC', 'EIO']) {
  transferFaults.push(
    { op: 'move', fn: 'link', code, step: 'link' },
    { op: 'move', fn: 'unlink', code, step: 'unlink of the source' },
    { op: 'claim', fn: 'link', code, step: 'link', times: code === 'EIO' ? 4 : 1 },
    { op: 'claim', fn: 'unlink', code, step: 'unlink of the source' },
    { op: 'copy', fn: 'write', code, step: 'write' },
    { op: 'copy', fn: 'link', code, step: 'link' },
  );
}

describe('a fault in move, claim or copy', () => {
  it.each(transferFaults)('$op with $code in $step: rejects, the file stays in new/ only, no fd leak', async (f) => {
    const store = await tempStore({ durability: 'none' });
    await write(store.create('file'), Buffer.from('content'));
    const fds = openFds().length;
    faults.arm(f.fn, f.code, 0, f.times);
    const run = f.op === 'claim' ? store.claim('file') : store[f.op]('file', 'new', 'cur');
    await expect(run).rejects.toMatchObject({ code: f.code });
    faults.disarm();
    expect(await namesIn(store, 'new')).toEqual(['file']);
    expect(await namesIn(store, 'cur')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await readFile(join(store.root, 'new', 'file'), 'utf8')).toBe('content');
    expect(openFds().length).toBe(fds);
  });
});
