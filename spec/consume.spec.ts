import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it, vi } from 'vitest';
import { FileStore, type Entry } from '../lib/index.js';
import { docBlock } from './doc-blocks.js';
import { DIST, namesIn, tempDir, tempStore } from './helpers.js';

// fs.watch, replaced by a watcher that never reports anything while `suppress` is set.
const watchControl = vi.hoisted(() => ({ suppress: false, watched: [] as string[], closed: 0 }));

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const { EventEmitter } = await import('node:events');
  const watch = ((...args: Parameters<typeof fs.watch>) => {
    if (!watchControl.suppress) return fs.watch(...args);
    watchControl.watched.push(String(args[0]));
    return Object.assign(new EventEmitter(), {
      close: () => {
        watchControl.closed += 1;
      },
    });
  }) as typeof fs.watch;
  return { ...fs, default: { ...fs, watch }, watch };
});

async function commit(store: FileStore, name?: string, data = 'x'): Promise<string> {
  const writer = store.create(name);
  writer.end(data);
  await finished(writer);
  return writer.name;
}

async function collect(entries: AsyncIterable<Entry>): Promise<Entry[]> {
  const found: Entry[] = [];
  for await (const entry of entries) found.push(entry);
  return found;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs an ES module script in a child process that imports the library from `DIST`. */
function child(script: string, env: Record<string, string>, onLine?: (line: string) => void, cwd?: string) {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', script], {
    cwd,
    env: { ...process.env, DIST, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let partial = '';
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    const lines = (partial + chunk).split('\n');
    partial = lines.pop() as string;
    for (const line of lines) onLine?.(line);
  });
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const result = new Promise<ChildResult>((resolve) => {
    proc.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { proc, result };
}

/** The child's result, or a failure when it has not exited on its own after `ms`. */
async function exitsWithin(run: ReturnType<typeof child>, ms: number): Promise<ChildResult> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      run.proc.kill('SIGKILL');
      reject(new Error(`child did not exit within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([run.result, hang]);
  } finally {
    clearTimeout(timer);
  }
}

const CONSUMER = `
const { FileStore } = await import(process.env.DIST);
const store = new FileStore(process.env.STORE, { durability: 'none' });
const ac = new AbortController();
process.once('SIGTERM', () => ac.abort());
const follow = process.env.FOLLOW === '1';
for await (const entry of store.consume({ follow, signal: ac.signal, pollInterval: 50 })) {
  console.log(entry.name);
}
`;

const PRODUCER = `
const { FileStore } = await import(process.env.DIST);
const { finished } = await import('node:stream/promises');
const store = new FileStore(process.env.STORE, { durability: 'none' });
const names = [];
for (let i = 0; i < Number(process.env.COUNT); i++) {
  const writer = store.create();
  writer.end('file ' + i);
  await finished(writer);
  names.push(writer.name);
  if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
}
console.log(JSON.stringify(names));
`;

describe('consume()', () => {
  it('drains new/ in name order, yielding claimed entries in cur/', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['1764230003.c', '1764230001.a', '1764230002.b']) await commit(store, name);

    const entries = await collect(store.consume());

    expect(entries).toEqual(
      ['1764230001.a', '1764230002.b', '1764230003.c'].map((name) => ({
        name,
        area: 'cur',
        path: join(store.root, 'cur', name),
      })),
    );
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual(['1764230001.a', '1764230002.b', '1764230003.c']);
  });

  it('ends at once on an empty store without follow', async () => {
    const store = await tempStore();
    expect(await collect(store.consume())).toEqual([]);
  });

  it('yields every file exactly once across several batches', async () => {
    const store = await tempStore({ durability: 'none' });
    const names: string[] = [];
    for (let i = 0; i < 2100; i++) names.push(await commit(store));

    const yielded = (await collect(store.consume())).map((entry) => entry.name);

    expect(yielded.slice().sort()).toEqual(names.slice().sort());
    expect(new Set(yielded).size).toBe(names.length);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('claims nothing after break: the rest stays in new/', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await commit(store, name);

    for await (const entry of store.consume()) {
      expect(entry.name).toBe('a');
      break;
    }

    expect(await namesIn(store, 'cur')).toEqual(['a']);
    expect(await namesIn(store, 'new')).toEqual(['b', 'c']);
  });

  it('yields nothing with an already aborted signal, with or without follow', async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'waiting');
    const signal = AbortSignal.abort();

    expect(await collect(store.consume({ signal }))).toEqual([]);
    expect(await collect(store.consume({ follow: true, signal }))).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual(['waiting']);
  });

  it('ends quietly when aborted between entries', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b', 'c']) await commit(store, name);
    const ac = new AbortController();

    const names: string[] = [];
    for await (const entry of store.consume({ follow: true, signal: ac.signal })) {
      names.push(entry.name);
      ac.abort();
    }

    expect(names).toEqual(['a']);
    expect(await namesIn(store, 'new')).toEqual(['b', 'c']);
  });

  it('skips a waiting name that cur/ holds too (a different file) and reports it, instead of rejecting', async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'twice', 'new one');
    await writeFile(join(store.root, 'cur', 'twice'), 'old one');
    const events: unknown[] = [];

    await expect(collect(store.consume({ onEvent: (event) => events.push(event) }))).resolves.toEqual([]);
    expect(events).toEqual([{ type: 'collision', name: 'twice' }]);
    expect(await namesIn(store, 'new')).toEqual(['twice']);
  });

  it('rejects with ENOENT when the store is missing', async () => {
    const store = await tempStore();
    const { rm } = await import('node:fs/promises');
    await rm(store.root, { recursive: true });

    await expect(collect(store.consume())).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(collect(store.consume({ follow: true }))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['options null', null],
    ['follow not a boolean', { follow: 'yes' }],
    ['signal not an AbortSignal', { signal: {} }],
    ['pollInterval zero', { pollInterval: 0 }],
    ['pollInterval negative', { pollInterval: -5 }],
    ['pollInterval NaN', { pollInterval: Number.NaN }],
    ['pollInterval infinite', { pollInterval: Number.POSITIVE_INFINITY }],
    ['pollInterval a string', { pollInterval: '100' }],
  ])('throws ERR_INVALID_OPTION synchronously for %s', async (_, options) => {
    const store = await tempStore();
    await commit(store, 'untouched');

    expect(thrown(() => store.consume(options as never))).toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(await namesIn(store, 'new')).toEqual(['untouched']);
  });
});

describe('consume({ follow: true })', () => {
  it('delivers through rescans when fs.watch reports nothing', { timeout: 15_000 }, async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'first');
    watchControl.suppress = true;
    watchControl.watched = [];
    watchControl.closed = 0;
    const ac = new AbortController();
    try {
      const entries = store.consume({ follow: true, signal: ac.signal, pollInterval: 20 });
      // Once `first` is yielded, the first pass has read new/ to its end.
      expect((await entries.next()).value).toMatchObject({ name: 'first' });
      const later = await commit(store);
      expect((await entries.next()).value).toMatchObject({ name: later, area: 'cur' });
      ac.abort();
      expect(await entries.next()).toEqual({ done: true, value: undefined });
    } finally {
      watchControl.suppress = false;
    }
    expect(watchControl.watched).toEqual([join(store.root, 'new')]);
    expect(watchControl.closed).toBe(1);
  });

  it('receives a file committed later by another process, through fs.watch', { timeout: 20_000 }, async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'first');
    const ac = new AbortController();
    // No rescan during the test: only the watch event can deliver the later file.
    const entries = store.consume({ follow: true, signal: ac.signal, pollInterval: 2 ** 31 - 1 });
    expect((await entries.next()).value).toMatchObject({ name: 'first' });

    const produced = await child(PRODUCER, { STORE: store.root, COUNT: '1' }).result;
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    const [later] = JSON.parse(produced.stdout) as string[];

    expect((await entries.next()).value).toMatchObject({ name: later, area: 'cur' });
    ac.abort();
    expect((await entries.next()).done).toBe(true);
  });

  it('shares a store between consumer processes while a producer commits: each file once', {
    timeout: 45_000,
  }, async () => {
    const store = await tempStore({ durability: 'none' });
    const count = 400;
    let yieldedCount = 0;
    let allYielded: () => void = () => {};
    const done = new Promise<void>((resolve) => (allYielded = resolve));
    const consumers = Array.from({ length: 3 }, () =>
      child(CONSUMER, { STORE: store.root, FOLLOW: '1' }, () => {
        yieldedCount += 1;
        if (yieldedCount === count) allYielded();
      }),
    );

    const produced = await child(PRODUCER, { STORE: store.root, COUNT: String(count) }).result;
    expect(produced).toMatchObject({ code: 0, stderr: '' });
    await done;
    for (const consumer of consumers) consumer.proc.kill('SIGTERM');
    const results = await Promise.all(consumers.map((consumer) => exitsWithin(consumer, 15_000)));

    const yielded = results.flatMap((result) => result.stdout.split('\n').filter(Boolean));
    for (const result of results) expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(yielded.slice().sort()).toEqual((JSON.parse(produced.stdout) as string[]).sort());
    expect(new Set(yielded).size).toBe(count);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toHaveLength(count);
  });

  it('drains one store from several processes at once: each file once', { timeout: 45_000 }, async () => {
    const store = await tempStore({ durability: 'none' });
    const names: string[] = [];
    for (let i = 0; i < 600; i++) names.push(await commit(store));

    const consumers = Array.from({ length: 3 }, () => child(CONSUMER, { STORE: store.root, FOLLOW: '0' }));
    const results = await Promise.all(consumers.map((consumer) => exitsWithin(consumer, 30_000)));

    const yielded = results.flatMap((result) => result.stdout.split('\n').filter(Boolean));
    for (const result of results) expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(yielded.slice().sort()).toEqual(names.sort());
    expect(await namesIn(store, 'new')).toEqual([]);
  });
});

describe('consume() ends cleanly: the process exits on its own', () => {
  const LEAVER = `
const { FileStore } = await import(process.env.DIST);
const store = new FileStore(process.env.STORE, { durability: 'none' });
const ac = new AbortController();
const how = process.env.HOW;
let seen = 0;
if (how === 'abandoned-after-abort') {
  const entries = store.consume({ follow: true, signal: ac.signal, pollInterval: 600_000 });
  if (!(await entries.next()).done) seen += 1;
  ac.abort(); // and never calls next() or return() again
} else {
  if (how === 'abort-idle') setTimeout(() => ac.abort(), 100);
  for await (const entry of store.consume({ follow: true, signal: ac.signal, pollInterval: 600_000 })) {
    seen += 1;
    if (how === 'break') break;
    if (how === 'abort-after-entry') ac.abort();
  }
}
console.log('seen', seen);
`;

  it.each([
    ['aborted while waiting for files', 'abort-idle', 0, 0],
    ['left with break', 'break', 3, 1],
    ['aborted after an entry', 'abort-after-entry', 3, 1],
    ['aborted after an entry, the iterator abandoned', 'abandoned-after-abort', 3, 1],
  ])('when %s', { timeout: 30_000 }, async (_, how, files, seen) => {
    const store = await tempStore({ durability: 'none' });
    for (let i = 0; i < files; i++) await commit(store);

    const result = await exitsWithin(child(LEAVER, { STORE: store.root, HOW: how }), 20_000);

    expect(result).toMatchObject({ code: 0, signal: null, stderr: '', stdout: `seen ${seen}\n` });
    expect(await namesIn(store, 'cur')).toHaveLength(seen);
    expect(await namesIn(store, 'new')).toHaveLength(files - seen);
  });
});

it('runs the README consume example', { timeout: 30_000 }, async () => {
  const script = docBlock('readme-consume', 'js').replace("from 'maildir-filestore'", `from ${JSON.stringify(DIST)}`);
  const cwd = await tempDir();
  const store = new FileStore(join(cwd, 'queue'), { durability: 'none' });
  await store.prepare();
  const first = await commit(store);

  let later: Promise<string> | undefined;
  const lines: string[] = [];
  const run = child(
    script,
    {},
    (line) => {
      lines.push(line);
      if (line === `got ${first}`) later = commit(store);
      else run.proc.kill('SIGTERM');
    },
    cwd,
  );
  const result = await exitsWithin(run, 20_000);

  expect(result).toMatchObject({ code: 0, signal: null, stderr: '' });
  expect(lines).toEqual([`got ${first}`, `got ${await later}`]);
  expect(await namesIn(store, 'new')).toEqual([]);
  expect(await namesIn(store, 'cur')).toEqual([]);
});
