// The writer's commit steps (fsync, close, place, directory fsync) for each
// durability, and a failed place leaving nothing behind.
import { readFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { namesIn, tempStore } from './helpers.js';

describe('commit path', () => {
  for (const durability of ['full', 'file', 'none'] as const) {
    it(`commits into new/ with durability ${durability}, and 'finish' comes after`, async () => {
      const store = await tempStore({ durability });
      const writer = store.create('a');
      await pipeline(Readable.from([Buffer.from('one, '), Buffer.from('two')]), writer);
      expect(writer.path).toBe(store.path('a', 'new'));
      expect(await readFile(store.path('a', 'new'), 'utf8')).toBe('one, two');
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });
  }

  it('fails with EEXIST when the name is taken, keeps the old file and removes its tmp file', async () => {
    const store = await tempStore({ durability: 'none' });
    await pipeline(Readable.from(['first']), store.create('a'));
    await expect(pipeline(Readable.from(['second']), store.create('a'))).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(store.path('a', 'new'), 'utf8')).toBe('first');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('replaces with overwrite: true', async () => {
    const store = await tempStore({ durability: 'none' });
    await pipeline(Readable.from(['first']), store.create('a'));
    await pipeline(Readable.from(['second']), store.create('a', { overwrite: true }));
    expect(await readFile(store.path('a', 'new'), 'utf8')).toBe('second');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('keeps the file in tmp/ under its name with commit: false', async () => {
    const store = await tempStore({ durability: 'full' });
    await pipeline(Readable.from(['kept']), store.create('b', { commit: false }));
    expect(await namesIn(store, 'tmp')).toEqual(['b']);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('commits 300 generated names at once, each exactly once', async () => {
    const store = await tempStore({ durability: 'none' });
    const names = await Promise.all(
      Array.from({ length: 300 }, async (_, i) => {
        const writer = store.create();
        await pipeline(Readable.from([`${i}`]), writer);
        return writer.name;
      }),
    );
    expect(new Set(names).size).toBe(300);
    expect(await namesIn(store, 'new')).toEqual([...names].sort());
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });
});
