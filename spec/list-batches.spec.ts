// list() reads the directory in batches (one asynchronous read, then the
// buffered rest of the batch synchronously): every entry exactly once across
// batch boundaries, and an early break closes the directory.
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openFds, tempStore } from './helpers.js';
import type { FileStore } from '../lib/index.js';

function fill(store: FileStore, count: number): string[] {
  const names = Array.from({ length: count }, (_, i) => `file-${i}`);
  for (const name of names) closeSync(openSync(join(store.root, 'new', name), 'wx'));
  return names;
}

async function listed(store: FileStore): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of store.list('new')) {
    expect(entry).toEqual({ name: entry.name, area: 'new', path: join(store.root, 'new', entry.name) });
    found.push(entry.name);
  }
  return found;
}

describe('list() across batches', () => {
  for (const count of [0, 1, 1024, 1025, 2049]) {
    it(`yields each of ${count} entries exactly once`, async () => {
      const store = await tempStore({ durability: 'none' });
      const names = fill(store, count);
      const found = await listed(store);
      expect(found.length).toBe(count);
      expect(found.sort()).toEqual(names.sort());
    });
  }

  it('skips dot-files wherever they fall in a batch', async () => {
    const store = await tempStore({ durability: 'none' });
    const names = fill(store, 1100);
    for (let i = 0; i < 40; i++) closeSync(openSync(join(store.root, 'new', `.hidden-${i}`), 'wx'));
    expect((await listed(store)).sort()).toEqual(names.sort());
  });

  it.runIf(process.platform === 'linux')(
    'closes the directory when the caller stops early (Linux: counts /proc/self/fd)',
    async () => {
      const store = await tempStore({ durability: 'none' });
      fill(store, 1100);
      const before = openFds().length;
      for (const stopAt of [1, 1024, 1050]) {
        let seen = 0;
        for await (const _ of store.list('new')) if (++seen === stopAt) break;
        expect(seen).toBe(stopAt);
      }
      expect(openFds().length).toBe(before);
    },
  );

  it('serves callers that share one listing and ask for the next entry at the same time', async () => {
    const store = await tempStore({ durability: 'none' });
    const names = fill(store, 2100);
    const listing = store.list('new');
    const found: string[] = [];
    const worker = async (): Promise<void> => {
      for (;;) {
        const { value, done } = await listing.next();
        if (done) return;
        found.push(value.name);
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    expect(found.sort()).toEqual(names.sort());
    expect(await listing.next()).toEqual({ value: undefined, done: true });
  });

  it('closes the directory when the caller stops between batches, and ends after return()', async () => {
    const store = await tempStore({ durability: 'none' });
    fill(store, 1030);
    const before = openFds().length;
    const listing = store.list('new');
    for (let i = 0; i < 1024; i++) expect((await listing.next()).done).toBe(false);
    await listing.return?.();
    expect(await listing.next()).toEqual({ value: undefined, done: true });
    expect(openFds().length).toBe(before);
  });

  it('rejects every waiting caller with ENOENT when the area is missing', async () => {
    const store = await tempStore({ durability: 'none' });
    const { rm } = await import('node:fs/promises');
    await rm(join(store.root, 'new'), { recursive: true });
    const listing = store.list('new');
    const results = await Promise.allSettled([listing.next(), listing.next()]);
    for (const r of results) expect(r).toMatchObject({ status: 'rejected', reason: { code: 'ENOENT' } });
    expect(await listing.next()).toEqual({ value: undefined, done: true });
  });
});
