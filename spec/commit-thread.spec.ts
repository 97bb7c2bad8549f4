// The commit thread: commitBatch on real files and with faults put in through
// the fs object it is given (the way the thread is given node:fs), then writers
// going through the thread: one message per event-loop turn, the caps on
// buffering writers and bytes, a thread stalled for real (blocked in
// Atomics.wait, as in a hung system call) handing its commits to the thread
// pool, real ENOSPC through the thread, and the fallback where the permission
// model refuses threads.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, vi } from 'vitest';
import {
  BATCH_COMMITS,
  BATCHES_IN_FLIGHT,
  BUFFERED_BYTES_MAX,
  BUFFERED_WRITERS_MAX,
  type BatchRequest,
  type CommitFs,
  commitBatch,
  commitThread,
  RECORD_FIELDS,
  SMALL_FILE_MAX,
  STALL_MS,
} from '../lib/commit-thread.js';
import { FileStore, type FileWriter } from '../lib/index.js';
import { DIST, namesIn, openFds, tempDir, tempStore } from './helpers.js';
import { mountTmpfs, unmount } from './reliability.js';

const run = promisify(execFile);
const FLAGS = fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL;

interface Commit {
  tmp: string;
  target?: string;
  overwrite?: boolean;
  data: string;
}

/** A batch request as the main thread builds it, with a fresh control counter. */
function batchOf(commits: Commit[]): { request: BatchRequest; control: Int32Array<SharedArrayBuffer> } {
  const datas = commits.map((c) => Buffer.from(c.data));
  const records = new Int32Array(commits.length * RECORD_FIELDS);
  commits.forEach((c, i) => {
    records[i * RECORD_FIELDS] = (datas[i] as Buffer).length;
    records[i * RECORD_FIELDS + 1] = 0o644;
    records[i * RECORD_FIELDS + 2] = c.overwrite ? 1 : 0;
  });
  const data = Buffer.concat(datas);
  const request: BatchRequest = {
    id: 1,
    slot: 0,
    paths: commits.flatMap((c) => [c.tmp, c.target ?? '']).join('\0'),
    records,
    data: data.buffer.slice(data.byteOffset, data.byteOffset + data.length) as ArrayBuffer,
    flags: FLAGS,
  };
  return { request, control: new Int32Array(new SharedArrayBuffer(4)) };
}

/** node:fs with one call failing (after `skip` calls of it) with `code`. */
function faulty(fn: keyof CommitFs, code: string, skip = 0): CommitFs {
  let calls = 0;
  const fail = (): never => {
    throw Object.assign(new Error(`${code}: injected, ${fn}`), { code, syscall: fn.replace('Sync', '') });
  };
  return {
    openSync: (p, f, m) => (fn === 'openSync' && calls++ === skip ? fail() : fs.openSync(p, f, m)),
    writeSync: (d, b, o, l) => (fn === 'writeSync' && calls++ === skip ? fail() : fs.writeSync(d, b, o, l)),
    closeSync: (d) => {
      fs.closeSync(d);
      if (fn === 'closeSync' && calls++ === skip) fail();
    },
    renameSync: (a, b) => (fn === 'renameSync' && calls++ === skip ? fail() : fs.renameSync(a, b)),
    linkSync: (a, b) => (fn === 'linkSync' && calls++ === skip ? fail() : fs.linkSync(a, b)),
    unlinkSync: (p) => (fn === 'unlinkSync' && calls++ === skip ? fail() : fs.unlinkSync(p)),
    lstatSync: (p) => fs.lstatSync(p),
  };
}

async function dirs(): Promise<{ tmp: string; new: string }> {
  const root = await tempDir();
  await Promise.all(['tmp', 'new'].map((a) => fs.promises.mkdir(join(root, a))));
  return { tmp: join(root, 'tmp'), new: join(root, 'new') };
}

/** Resolves once the thread has nothing in flight and nothing queued. */
async function threadIdle(): Promise<void> {
  while (commitThread.stats.inFlight > 0 || commitThread.stats.queued > 0) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function endAll(writers: FileWriter[], body: (i: number) => string | Buffer): Promise<unknown> {
  for (const [i, w] of writers.entries()) w.end(body(i));
  return Promise.all(writers.map((w) => finished(w)));
}

describe('commitBatch', () => {
  it('commits each file in order: link into place, rename with overwrite, none for a file that stays put', async () => {
    const d = await dirs();
    await writeFile(join(d.new, 'old'), 'old');
    const fds = openFds().length;
    const { request, control } = batchOf([
      { tmp: join(d.tmp, 't1'), target: join(d.new, 'a'), data: 'one' },
      { tmp: join(d.tmp, 't2'), target: join(d.new, 'old'), overwrite: true, data: 'two' },
      { tmp: join(d.tmp, 'kept'), data: 'three' },
      { tmp: join(d.tmp, 't4'), target: join(d.new, 'empty'), data: '' },
    ]);
    expect(commitBatch(fs, request, control)).toEqual({ id: 1, started: 4, failures: [] });
    expect(control[0]).toBe(4);
    expect(await readFile(join(d.new, 'a'), 'utf8')).toBe('one');
    expect(await readFile(join(d.new, 'old'), 'utf8')).toBe('two');
    expect(await readFile(join(d.new, 'empty'), 'utf8')).toBe('');
    expect(await readFile(join(d.tmp, 'kept'), 'utf8')).toBe('three');
    expect(fs.readdirSync(d.tmp)).toEqual(['kept']);
    expect(openFds().length).toBe(fds);
  });

  it('fails one commit with its code, syscall and path, leaves nothing of it, and goes on with the next', async () => {
    const d = await dirs();
    await writeFile(join(d.new, 'taken'), 'original');
    const { request, control } = batchOf([
      { tmp: join(d.tmp, 't1'), target: join(d.new, 'taken'), data: 'intruder' },
      { tmp: join(d.tmp, 'missing', 't2'), target: join(d.new, 'b'), data: 'x' },
      { tmp: join(d.tmp, 't3'), target: join(d.new, 'c'), data: 'three' },
    ]);
    const reply = commitBatch(fs, request, control);
    expect(reply.started).toBe(3);
    expect(reply.failures).toEqual([
      [
        0,
        expect.objectContaining({
          code: 'EEXIST',
          syscall: 'link',
          path: join(d.tmp, 't1'),
          dest: join(d.new, 'taken'),
        }),
      ],
      [1, expect.objectContaining({ code: 'ENOENT', syscall: 'open', path: join(d.tmp, 'missing', 't2') })],
    ]);
    expect(await readFile(join(d.new, 'taken'), 'utf8')).toBe('original');
    expect(fs.readdirSync(d.new).sort()).toEqual(['c', 'taken']);
    expect(fs.readdirSync(d.tmp)).toEqual([]);
  });

  it.each([
    ['writeSync', 'ENOSPC', 'named'],
    ['closeSync', 'EIO', 'named'],
    ['linkSync', 'ENOSPC', 'named'],
    ['unlinkSync', 'EIO', 'named'],
    ['renameSync', 'ENOSPC', 'overwrite'],
    ['openSync', 'EMFILE', 'named'],
  ] as const)(
    '%s failing with %s (%s): the error comes back, tmp/ and new/ as before, no fd left open',
    async (fn, code, naming) => {
      const d = await dirs();
      await writeFile(join(d.new, 'target'), 'old');
      const fds = openFds().length;
      const { request, control } = batchOf([
        { tmp: join(d.tmp, 't1'), target: join(d.new, 'target'), overwrite: naming === 'overwrite', data: 'new' },
      ]);
      if (naming === 'named') fs.unlinkSync(join(d.new, 'target'));
      const reply = commitBatch(faulty(fn, code), request, control);
      expect(reply.failures).toEqual([[0, expect.objectContaining({ code, syscall: fn.replace('Sync', '') })]]);
      expect(fs.readdirSync(d.tmp)).toEqual([]);
      expect(fs.readdirSync(d.new)).toEqual(naming === 'named' ? [] : ['target']);
      if (naming === 'overwrite') expect(await readFile(join(d.new, 'target'), 'utf8')).toBe('old');
      expect(openFds().length).toBe(fds);
    },
  );

  it('without hard links (EPERM from link) renames, and refuses to replace with EEXIST', async () => {
    const d = await dirs();
    await writeFile(join(d.new, 'taken'), 'original');
    const noLinks = { ...faulty('linkSync', 'EPERM'), linkSync: faulty('linkSync', 'EPERM').linkSync };
    const { request, control } = batchOf([
      { tmp: join(d.tmp, 't1'), target: join(d.new, 'free'), data: 'one' },
      { tmp: join(d.tmp, 't2'), target: join(d.new, 'taken'), data: 'two' },
    ]);
    const reply = commitBatch(noLinks, request, control);
    expect(reply.failures).toEqual([[1, expect.objectContaining({ code: 'EEXIST', syscall: 'link', errno: -17 })]]);
    expect(await readFile(join(d.new, 'free'), 'utf8')).toBe('one');
    expect(await readFile(join(d.new, 'taken'), 'utf8')).toBe('original');
    expect(fs.readdirSync(d.tmp)).toEqual([]);
  });

  it('stops before a commit it cannot claim: the main thread took the rest back', async () => {
    const d = await dirs();
    const { request, control } = batchOf([
      { tmp: join(d.tmp, 't1'), target: join(d.new, 'a'), data: 'one' },
      { tmp: join(d.tmp, 't2'), target: join(d.new, 'b'), data: 'two' },
    ]);
    control[0] = -1;
    expect(commitBatch(fs, request, control)).toEqual({ id: 1, started: 0, failures: [] });
    expect(fs.readdirSync(d.new)).toEqual([]);
    expect(fs.readdirSync(d.tmp)).toEqual([]);
  });
});

describe('writers on the commit thread', () => {
  it('commit the writers ended in one event-loop turn as one message, at most 32 a message', async () => {
    const store = await tempStore({ durability: 'none' });
    await endAll([store.create()], () => 'warm-up');
    await threadIdle();
    const before = commitThread.stats;
    const writers = Array.from({ length: 20 }, () => store.create());
    await endAll(writers, (i) => `file ${i}`);
    expect(commitThread.stats.batches - before.batches).toBe(1);
    expect(commitThread.stats.commits - before.commits).toBe(20);

    const many = Array.from({ length: 3 * BATCH_COMMITS + 5 }, (_, i) => store.create(`n${i}`));
    const seen: number[] = [];
    const sample = setInterval(() => seen.push(commitThread.stats.inFlight), 0);
    await endAll(many, (i) => `named ${i}`);
    clearInterval(sample);
    expect(commitThread.stats.batches - before.batches).toBe(1 + 4);
    expect(Math.max(...seen)).toBeLessThanOrEqual(BATCHES_IN_FLIGHT);
    expect(await namesIn(store, 'new')).toHaveLength(20 + many.length + 1);
    for (const [i, w] of many.entries()) expect(await readFile(w.path, 'utf8')).toBe(`named ${i}`);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('have no file in tmp/ before the commit, and destroy() before it leaves nothing', async () => {
    const store = await tempStore({ durability: 'none' });
    const writer = store.create('later');
    await new Promise<void>((resolve, reject) => writer.write('some', (err) => (err ? reject(err) : resolve())));
    expect(writer.path).toBe(join(store.root, 'tmp', writer.path.split('/').pop() as string));
    expect(await namesIn(store, 'tmp')).toEqual([]);
    writer.destroy();
    await finished(writer).catch(() => {});
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(commitThread.stats.bufferingWriters).toBe(0);
    expect(commitThread.stats.bufferedBytes).toBe(0);
  });

  it('take the thread pool past SMALL_FILE_MAX: the file is in tmp/ while it is written', async () => {
    const store = await tempStore({ durability: 'none' });
    const writer = store.create('large');
    const part = Buffer.alloc(SMALL_FILE_MAX, 'a');
    await new Promise<void>((resolve, reject) => writer.write(part, (err) => (err ? reject(err) : resolve())));
    expect(await namesIn(store, 'tmp')).toEqual([]);
    await new Promise<void>((resolve, reject) => writer.write('b', (err) => (err ? reject(err) : resolve())));
    expect(await namesIn(store, 'tmp')).toHaveLength(1);
    writer.end('c');
    await finished(writer);
    expect(await readFile(writer.path, 'utf8')).toBe(`${part}bc`);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it(`buffer in at most ${BUFFERED_WRITERS_MAX} writers at once: the rest open their file at once`, async () => {
    const store = await tempStore({ durability: 'none' });
    const count = BUFFERED_WRITERS_MAX + 76;
    const writers = Array.from({ length: count }, () => store.create());
    await Promise.all(
      writers.map(
        (w) => new Promise<void>((resolve, reject) => w.write('x', (err) => (err ? reject(err) : resolve()))),
      ),
    );
    expect(commitThread.stats.bufferingWriters).toBe(BUFFERED_WRITERS_MAX);
    expect(await namesIn(store, 'tmp')).toHaveLength(76);
    await endAll(writers, () => 'y');
    expect(await namesIn(store, 'new')).toHaveLength(count);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(commitThread.stats.bufferingWriters).toBe(0);
  });

  it(`hold at most ${BUFFERED_BYTES_MAX / 2 ** 20} MiB in all: a write past it sends the writer to its file`, async () => {
    const store = await tempStore({ durability: 'none' });
    const size = 60 * 1024;
    const count = 200;
    const writers = Array.from({ length: count }, () => store.create());
    const chunk = Buffer.alloc(size, 'z');
    await Promise.all(
      writers.map(
        (w) => new Promise<void>((resolve, reject) => w.write(chunk, (err) => (err ? reject(err) : resolve()))),
      ),
    );
    const held = Math.floor(BUFFERED_BYTES_MAX / size);
    expect(commitThread.stats.bufferedBytes).toBe(held * size);
    expect(await namesIn(store, 'tmp')).toHaveLength(count - held);
    await endAll(writers, () => '');
    expect(await namesIn(store, 'new')).toHaveLength(count);
    expect(commitThread.stats.bufferedBytes).toBe(0);
  });

  it(`hand their commits to the thread pool when the thread is stuck for ${STALL_MS} ms, and come back once it answers`, async () => {
    const store = await tempStore({ durability: 'none' });
    await endAll([store.create()], () => 'warm-up');
    await threadIdle();
    const before = commitThread.stats;
    const release = commitThread.stall();
    try {
      const stuck = Array.from({ length: 40 }, (_, i) => store.create(`s${i}`));
      const started = performance.now();
      await endAll(stuck, (i) => `stuck ${i}`);
      const waited = performance.now() - started;
      expect(waited).toBeGreaterThanOrEqual(STALL_MS - 50);
      expect(waited).toBeLessThan(STALL_MS + 10_000);
      expect(commitThread.stats.rerouted - before.rerouted).toBe(40);
      expect(commitThread.stats.stalled).toBe(true);
      for (const [i, w] of stuck.entries()) expect(await readFile(w.path, 'utf8')).toBe(`stuck ${i}`);
      // while stuck, a new writer goes straight to its file
      const meanwhile = store.create('meanwhile');
      await new Promise<void>((resolve, reject) => meanwhile.write('m', (err) => (err ? reject(err) : resolve())));
      expect(await namesIn(store, 'tmp')).toHaveLength(1);
      await endAll([meanwhile], () => '');
    } finally {
      release();
    }
    await threadIdle();
    expect(commitThread.stats.stalled).toBe(false);
    const after = commitThread.stats.commits;
    await endAll([store.create('back')], () => 'on the thread again');
    expect(commitThread.stats.commits).toBe(after + 1);
    expect(await namesIn(store, 'new')).toHaveLength(1 + 40 + 2);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('commit through the thread pool what the thread had not started when it ends, and start a new thread after', async () => {
    const store = await tempStore({ durability: 'none' });
    await endAll([store.create()], () => 'warm-up');
    await threadIdle();
    const before = commitThread.stats;
    commitThread.stall();
    const writers = Array.from({ length: 5 }, (_, i) => store.create(`e${i}`));
    const done = endAll(writers, (i) => `ended ${i}`);
    await vi.waitFor(() => expect(commitThread.stats.inFlight).toBe(1));
    await commitThread.stop();
    await done;
    expect(commitThread.stats.rerouted - before.rerouted).toBe(5);
    for (const [i, w] of writers.entries()) expect(await readFile(w.path, 'utf8')).toBe(`ended ${i}`);
    await endAll([store.create('after')], () => 'on a new thread');
    expect(commitThread.stats.commits - before.commits).toBe(5 + 1);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('commit all or nothing when destroyed while the thread has the commit, leaving nothing in tmp/', async () => {
    const store = await tempStore({ durability: 'none' });
    await endAll([store.create()], () => 'warm-up');
    await threadIdle();
    const release = commitThread.stall();
    const writer = store.create('destroyed');
    writer.end('data');
    await new Promise((resolve) => setTimeout(resolve, 20));
    writer.destroy();
    release();
    await finished(writer).catch(() => {});
    await threadIdle();
    expect(writer.closed).toBe(true);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    const committed = await namesIn(store, 'new');
    expect(committed.filter((n) => n === 'destroyed').length).toBeLessThanOrEqual(1);
  });
});

const base = await mkdtemp(join(tmpdir(), 'filestore-commit-thread-'));
const small = await mountTmpfs(join(base, 'small'), 'size=256k,mode=0755');

afterAll(async () => {
  unmount(small);
  await rm(base, { recursive: true, force: true });
});

describe.skipIf(!small.ok)(`a full disk (256 KiB tmpfs)${small.ok ? '' : ` (skipped: ${small.reason})`}`, () => {
  it('fails the commits that do not fit with ENOSPC through the thread, leaving no tmp file', async () => {
    const store = new FileStore(join(base, 'small', 'store'), { durability: 'none' });
    await store.prepare();
    const before = commitThread.stats.commits;
    const writers = Array.from({ length: 16 }, (_, i) => store.create(`f${String(i).padStart(2, '0')}`));
    for (const [i, w] of writers.entries()) w.end(Buffer.alloc(32 * 1024, i));
    const outcomes = await Promise.all(
      writers.map((w) =>
        finished(w).then(
          () => 'ok',
          (err) => err,
        ),
      ),
    );
    expect(commitThread.stats.commits - before).toBe(16);
    const failed = outcomes.filter((o) => o !== 'ok');
    expect(failed.length).toBeGreaterThan(0);
    for (const err of failed) expect(err).toMatchObject({ code: 'ENOSPC', syscall: 'write' });
    expect(await namesIn(store, 'tmp')).toEqual([]);
    const committed = await namesIn(store, 'new');
    expect(committed).toHaveLength(16 - failed.length);
    for (const name of committed) expect((await readFile(join(store.root, 'new', name))).length).toBe(32 * 1024);
  });
});

describe('where the process may not start threads', () => {
  it("commits every small file through the thread pool (Node's permission model without --allow-worker)", async () => {
    const store = await tempStore({ durability: 'none' });
    const script = `
      import { FileStore } from ${JSON.stringify(DIST)};
      import { Worker } from 'node:worker_threads';
      import { readdirSync } from 'node:fs';
      import { finished } from 'node:stream/promises';
      let refused = '';
      try { new Worker('', { eval: true }).terminate(); } catch (err) { refused = err.code; }
      const store = new FileStore(${JSON.stringify(store.root)}, { durability: 'none' });
      const writers = Array.from({ length: 100 }, () => store.create());
      await Promise.all(writers.map((w) => new Promise((resolve) => w.write('x', resolve))));
      const inTmp = readdirSync(${JSON.stringify(join(store.root, 'tmp'))}).length;
      for (const w of writers) w.end();
      await Promise.all(writers.map((w) => finished(w)));
      console.log(JSON.stringify({ refused, inTmp, inNew: readdirSync(${JSON.stringify(join(store.root, 'new'))}).length }));
    `;
    const { stdout } = await run(process.execPath, [
      '--experimental-permission',
      '--allow-fs-read=*',
      '--allow-fs-write=*',
      '--no-warnings',
      '--input-type=module',
      '-e',
      script,
    ]);
    expect(JSON.parse(stdout)).toEqual({ refused: 'ERR_ACCESS_DENIED', inTmp: 100, inNew: 100 });
  });

  it('does not keep the process alive: a script that commits and returns exits by itself', async () => {
    const store = await tempStore({ durability: 'none' });
    const script = `
      import { FileStore } from ${JSON.stringify(DIST)};
      import { finished } from 'node:stream/promises';
      const store = new FileStore(${JSON.stringify(store.root)}, { durability: 'none' });
      const writers = Array.from({ length: 100 }, () => store.create());
      for (const w of writers) w.end('x');
      await Promise.all(writers.map((w) => finished(w)));
      console.log('done');
    `;
    // the thread ends after 10 s without work; were it to hold the process, the child would outlive the 8 s timeout
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 8000 });
    expect(stdout.trim()).toBe('done');
    expect(await namesIn(store, 'new')).toHaveLength(100);
  });
});
