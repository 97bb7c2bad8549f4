// On file systems without hard links, link() fails with EPERM: moves and
// claims fall back to rename, still without replacing anything.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { namesIn, tempStore } from './helpers.js';

const refused = vi.hoisted(() => ({ links: 0 }));

function eperm(from: string, to: string): NodeJS.ErrnoException {
  refused.links++;
  return Object.assign(new Error(`EPERM: operation not permitted, link '${from}' -> '${to}'`), {
    code: 'EPERM',
    syscall: 'link',
    path: from,
    dest: to,
  });
}

// The commit path calls the callback API, move and claim the promise API: refuse both.
vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>();
  const link = (from: string, to: string, cb: (err: NodeJS.ErrnoException) => void): void =>
    void process.nextTick(cb, eperm(from, to));
  return { ...fs, link, default: { ...fs, link } };
});

vi.mock('node:fs/promises', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs/promises')>();
  const link = async (from: string, to: string): Promise<void> => {
    throw eperm(from, to);
  };
  return { ...fs, link, default: { ...fs, link } };
});

afterEach(() => {
  expect(refused.links).toBeGreaterThan(0);
  refused.links = 0;
});

describe('without hard links', () => {
  it('commits caller-named files and refuses to replace them', async () => {
    const store = await tempStore();
    const first = store.create('doc');
    first.end('one');
    await finished(first);
    const second = store.create('doc');
    second.end('two');
    await expect(finished(second)).rejects.toMatchObject({ code: 'EEXIST', syscall: 'link' });
    expect(await readFile(join(store.root, 'new', 'doc'), 'utf8')).toBe('one');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('moves, and refuses to replace on move', async () => {
    const store = await tempStore();
    for (const area of ['tmp', 'new'] as const) {
      const w = store.create('doc', { commit: area === 'new' });
      w.end(area);
      await finished(w);
    }
    await store.move('doc', 'tmp', 'cur');
    await expect(store.move('doc', 'new', 'cur')).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('tmp');
  });

  it('claims exactly once', async () => {
    const store = await tempStore();
    const w = store.create('job');
    w.end('x');
    await finished(w);
    const results = await Promise.all(Array.from({ length: 8 }, () => store.claim('job')));
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await namesIn(store, 'cur')).toEqual(['job']);
    expect(await namesIn(store, 'new')).toEqual([]);
  });
});
