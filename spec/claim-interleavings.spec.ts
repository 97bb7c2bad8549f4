// Guarantees 5, 6 and 8 for claim(), one interleaving at a time. The
// fs/promises calls the claim makes (link, lstat, unlink, rename) run one at
// a time in the order they are issued, and a script plays the other claimer
// (or the stale network file system) at chosen points between them, on real
// files: each race from issue 12 happens exactly, every run.
import {
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { basename, dirname, join } from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { FileStoreError, type FileStore, type LeaseEvent } from '../lib/index.js';
import { namesIn, tempDir, tempStore } from './helpers.js';

type Op = 'link' | 'lstat' | 'unlink' | 'rename';

/** One scripted step: when the `nth` call of `op` on `path` (its first argument) runs. */
interface Step {
  op: Op;
  path: string;
  nth?: number;
  /** Runs before the real call. */
  before?: () => void;
  /** Instead of the real call: fail with this code. */
  fail?: string;
  /** Instead of the real call: do this (what a stale lookup on the server would do). */
  instead?: () => void;
  /** Runs after the real call, whether it succeeded or failed. */
  after?: () => void;
}

const script = vi.hoisted(() => ({ steps: [] as Step[], calls: [] as string[], seen: new Map<string, number>() }));

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  let queue: Promise<unknown> = Promise.resolve();
  const scripted =
    <A extends unknown[], R>(op: Op, real: (...args: A) => Promise<R>) =>
    (...args: A): Promise<R> => {
      const run = async (): Promise<R> => {
        const path = String(args[0]);
        const key = `${op} ${path}`;
        const nth = (script.seen.get(key) ?? 0) + 1;
        script.seen.set(key, nth);
        script.calls.push(`${op} ${basename(dirname(path))}/${basename(path)}`);
        const at = script.steps.findIndex((s) => s.op === op && s.path === path && (s.nth ?? 1) === nth);
        const step = at < 0 ? undefined : script.steps.splice(at, 1)[0];
        step?.before?.();
        try {
          if (step?.fail !== undefined) throw errno(step.fail, op, path);
          if (step?.instead !== undefined) return step.instead() as R;
          return await real(...args);
        } finally {
          step?.after?.();
        }
      };
      const result = queue.then(run, run);
      queue = result.catch(() => {});
      return result;
    };
  const link = scripted('link', fs.link);
  const lstat = scripted('lstat', fs.lstat as (path: string) => ReturnType<typeof fs.lstat>);
  const unlink = scripted('unlink', fs.unlink);
  const rename = scripted('rename', fs.rename);
  return { ...fs, default: { ...fs, link, lstat, unlink, rename }, link, lstat, unlink, rename };
});

function errno(code: string, syscall: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: scripted, ${syscall} '${path}'`), { code, syscall, path });
}

beforeEach(() => {
  script.steps = [];
  script.calls = [];
  script.seen.clear();
});

/** A store with one regular file `x` in new/, and the paths of the race. */
async function race(data = 'the file') {
  const store = await tempStore({ durability: 'none' });
  const source = join(store.root, 'new', 'x');
  const target = join(store.root, 'cur', 'x');
  const archive = join(store.root, 'archive');
  mkdirSync(archive);
  writeFileSync(source, data);
  return { store, source, target, archived: join(archive, 'x') };
}

async function areas(store: FileStore): Promise<{ new: string[]; cur: string[] }> {
  return { new: await namesIn(store, 'new'), cur: await namesIn(store, 'cur') };
}

describe('claim() lost races are false, never a rejection', () => {
  it('EEXIST, then the winner unlinks the source and its consumer removes the target: false', async () => {
    const { store, source, target } = await race();
    linkSync(source, target); // the winner, between its link and its unlink
    script.steps.push({
      op: 'lstat',
      path: source,
      after: () => {
        unlinkSync(source);
        unlinkSync(target);
      },
    });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: [], cur: [] });
  });

  it('EEXIST, then the target goes away and the file is still in new/: tries again and wins', async () => {
    const { store, source, target } = await race();
    linkSync(source, target); // a claimer whose unlink failed: it undoes its link
    script.steps.push({ op: 'link', path: source, after: () => unlinkSync(target) });
    await expect(store.claim('x')).resolves.toBe(true);
    expect(await areas(store)).toEqual({ new: [], cur: ['x'] });
  });

  it('EEXIST with the same file under both names (a claimer between link and unlink): false, both left alone', async () => {
    const { store, source, target } = await race();
    linkSync(source, target);
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: ['x'], cur: ['x'] });
  });

  it('EEXIST with a different file in cur/: a real collision, rejects with EEXIST and leaves both', async () => {
    const { store, target } = await race();
    writeFileSync(target, 'claimed earlier');
    await expect(store.claim('x')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await areas(store)).toEqual({ new: ['x'], cur: ['x'] });
  });

  it('EEXIST with a different file in cur/, and the source claimed meanwhile: false', async () => {
    const { store, source, target } = await race();
    writeFileSync(target, 'claimed earlier');
    script.steps.push({ op: 'lstat', path: target, after: () => unlinkSync(source) });
    await expect(store.claim('x')).resolves.toBe(false);
  });

  it('link through a stale lookup succeeds for a file another host claimed and moved away: false, own link removed', async () => {
    const { store, source, target, archived } = await race();
    linkSync(source, target); // the winner claims ...
    unlinkSync(source);
    renameSync(target, archived); // ... and archives it; this claimer's lookup of new/x is stale
    script.steps.push({ op: 'link', path: source, instead: () => linkSync(archived, target) });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: [], cur: [] });
    expect(readFileSync(archived, 'utf8')).toBe('the file');
  });

  it('... and never removes a file that took the target name before the undo', async () => {
    const { store, source, target, archived } = await race();
    linkSync(source, target);
    unlinkSync(source);
    renameSync(target, archived);
    script.steps.push({ op: 'link', path: source, instead: () => linkSync(archived, target) });
    script.steps.push({
      op: 'unlink',
      path: source,
      after: () => {
        unlinkSync(target);
        writeFileSync(target, "another claimer's file");
      },
    });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(readFileSync(target, 'utf8')).toBe("another claimer's file");
    expect(readFileSync(archived, 'utf8')).toBe('the file');
  });

  it('link reports ENOENT while a cached lstat still shows the source: false, the file stays claimable', async () => {
    const { store, source } = await race();
    script.steps.push({ op: 'link', path: source, fail: 'ENOENT' });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: ['x'], cur: [] });
    await expect(store.claim('x')).resolves.toBe(true);
  });

  it.each(['ESTALE', 'EIO'])('%s from link after the source went away: false', async (code) => {
    const { store, source, archived } = await race();
    script.steps.push({ op: 'link', path: source, before: () => renameSync(source, archived), fail: code });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: [], cur: [] });
  });

  it('EIO from link with the source still there: tries again and wins; an EIO that persists rejects', async () => {
    const { store, source } = await race();
    script.steps.push({ op: 'link', path: source, fail: 'EIO' });
    await expect(store.claim('x')).resolves.toBe(true);
    writeFileSync(source, 'again');
    for (let nth = 2; nth < 12; nth++) script.steps.push({ op: 'link', path: source, nth, fail: 'EIO' });
    await expect(store.claim('x')).rejects.toMatchObject({ code: 'EIO' });
    expect(await namesIn(store, 'new')).toEqual(['x']);
  });

  it.each(['ENOENT', 'ESTALE'])(
    '%s from the unlink of the source after a good link (someone else took it): false, own link removed',
    async (code) => {
      const { store, source, archived } = await race();
      script.steps.push({
        op: 'unlink',
        path: source,
        before: () => renameSync(source, archived),
        fail: code,
      });
      await expect(store.claim('x')).resolves.toBe(false);
      expect(await areas(store)).toEqual({ new: [], cur: [] });
      expect(readFileSync(archived, 'utf8')).toBe('the file');
    },
  );

  it('EACCES from the unlink of the source: the link is undone and the error rejects, the file stays in new/', async () => {
    const { store, source } = await race();
    script.steps.push({ op: 'unlink', path: source, fail: 'EACCES' });
    await expect(store.claim('x')).rejects.toMatchObject({ code: 'EACCES' });
    expect(await areas(store)).toEqual({ new: ['x'], cur: [] });
  });

  it('rejects with ENOENT when new/ itself is gone', async () => {
    const store = await tempStore();
    const { rm } = await import('node:fs/promises');
    await rm(join(store.root, 'new'), { recursive: true });
    await expect(store.claim('x')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('claim() without hard links (link fails EPERM): rename fallback', () => {
  it('claims by rename', async () => {
    const { store, source } = await race();
    script.steps.push({ op: 'link', path: source, fail: 'EPERM' });
    await expect(store.claim('x')).resolves.toBe(true);
    expect(await areas(store)).toEqual({ new: [], cur: ['x'] });
  });

  it('the winner renamed it before the check: false, not EEXIST', async () => {
    const { store, source, target } = await race();
    script.steps.push({ op: 'link', path: source, before: () => linkSync(source, target), fail: 'EPERM' });
    script.steps.push({ op: 'lstat', path: source, after: () => unlinkSync(source) });
    await expect(store.claim('x')).resolves.toBe(false);
    expect(await areas(store)).toEqual({ new: [], cur: ['x'] });
  });

  it('the winner renamed it before the link: false', async () => {
    const { store, source, target } = await race();
    script.steps.push({ op: 'link', path: source, before: () => renameSync(source, target), fail: 'EPERM' });
    await expect(store.claim('x')).resolves.toBe(false);
  });
});

/** Plants an entry of `kind` at `path`; false when this machine cannot make one (mknod needs root). */
function plant(kind: string, path: string, outside: string): boolean {
  if (kind === 'symlink') symlinkSync(outside, path);
  else if (kind === 'directory') mkdirSync(path);
  else if (kind === 'FIFO') return spawnSync('mkfifo', [path]).status === 0;
  else return spawnSync('mknod', [path, 'c', '1', '3']).status === 0;
  return true;
}

const KINDS = ['symlink', 'FIFO', 'device node', 'directory'];

describe('guarantee 6: an entry of new/ that is not a regular file is never claimed', () => {
  it.each(KINDS)('a %s: ERR_UNSAFE_ENTRY, it stays in new/, nothing in cur/', async (kind) => {
    const store = await tempStore();
    const outside = join(await tempDir(), 'secret');
    writeFileSync(outside, 'outside the store');
    if (!plant(kind, join(store.root, 'new', 'x'), outside)) return;
    const err = await store.claim('x').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FileStoreError);
    expect(err).toMatchObject({ code: 'ERR_UNSAFE_ENTRY', path: join(store.root, 'new', 'x') });
    expect(await areas(store)).toEqual({ new: ['x'], cur: [] });
    expect(statSync(outside).nlink).toBe(1);
  });

  it.each(KINDS)('a %s, on a file system without hard links: ERR_UNSAFE_ENTRY, nothing moved', async (kind) => {
    const store = await tempStore();
    const outside = join(await tempDir(), 'secret');
    writeFileSync(outside, 'outside the store');
    const source = join(store.root, 'new', 'x');
    if (!plant(kind, source, outside)) return;
    script.steps.push({ op: 'link', path: source, fail: 'EPERM' });
    await expect(store.claim('x')).rejects.toMatchObject({ code: 'ERR_UNSAFE_ENTRY' });
    expect(await areas(store)).toEqual({ new: ['x'], cur: [] });
  });

  it('consume() skips them, reports each once through onEvent, and hands over every regular file', async () => {
    const store = await tempStore();
    const outside = join(await tempDir(), 'secret');
    writeFileSync(outside, 'outside the store');
    const planted = KINDS.filter((kind, i) => plant(kind, join(store.root, 'new', `p${i}`), outside));
    for (const name of ['a', 'b', 'c']) writeFileSync(join(store.root, 'new', name), name);
    const events: LeaseEvent[] = [];
    const got: string[] = [];
    for await (const entry of store.consume({ onEvent: (event) => events.push(event) })) got.push(entry.name);
    expect(got).toEqual(['a', 'b', 'c']);
    expect(events.map((e) => e.type)).toEqual(planted.map(() => 'unsafe'));
    for (const event of events) expect(event).toMatchObject({ error: { code: 'ERR_UNSAFE_ENTRY' } });
    expect((await areas(store)).cur).toEqual(['a', 'b', 'c']);
    expect((await areas(store)).new).toHaveLength(planted.length);
  });

  it('a following consumer reports an unsafe entry once, however many passes it makes', async () => {
    const store = await tempStore();
    symlinkSync('/etc/passwd', join(store.root, 'new', 'link'));
    const events: LeaseEvent[] = [];
    const stop = new AbortController();
    const got: string[] = [];
    const loop = (async () => {
      for await (const entry of store.consume({
        follow: true,
        pollInterval: 20,
        signal: stop.signal,
        onEvent: (e) => events.push(e),
      }))
        got.push(entry.name);
    })();
    await new Promise((resolve) => setTimeout(resolve, 200));
    writeFileSync(join(store.root, 'new', 'a'), 'a');
    await vi.waitFor(() => expect(got).toEqual(['a']));
    stop.abort();
    await loop;
    expect(events.map((e) => `${e.type} ${e.name}`)).toEqual(['unsafe link']);
  });
});
