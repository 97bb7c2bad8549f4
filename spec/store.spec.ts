import { link, mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FileStore, type Area, type Entry } from '../lib/index.js';
import { namesIn, tempDir, tempStore } from './helpers.js';

async function put(store: FileStore, name: string, text: string, area: Area = 'new'): Promise<void> {
  const w = store.create(name, { commit: area === 'new' });
  w.end(text);
  await finished(w);
  if (area === 'cur') await store.move(name, 'tmp', 'cur');
}

async function collect(iterator: AsyncIterable<Entry>): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const entry of iterator) out.push(entry);
  return out;
}

describe('FileStore', () => {
  it('resolves root to an absolute path', () => {
    expect(new FileStore('relative/dir').root).toBe(join(process.cwd(), 'relative/dir'));
  });

  describe('prepare', () => {
    it('refuses an area that is a symlink or a file', async () => {
      const base = await tempDir();
      const root = join(base, 'store');
      await mkdir(join(root, 'tmp'), { recursive: true });
      await mkdir(join(base, 'elsewhere'));
      await symlink(join(base, 'elsewhere'), join(root, 'new'));
      await expect(new FileStore(root).prepare()).rejects.toMatchObject({
        code: 'ERR_UNSAFE_AREA',
        path: join(root, 'new'),
      });
      await rm(join(root, 'new'));
      await writeFile(join(root, 'new'), 'not a dir');
      await expect(new FileStore(root).prepare()).rejects.toMatchObject({ code: 'ERR_UNSAFE_AREA' });
    });

    it('races safely with itself', async () => {
      const root = join(await tempDir(), 'a', 'b', 'store');
      await Promise.all(Array.from({ length: 20 }, () => new FileStore(root).prepare()));
      expect(await namesIn(new FileStore(root), 'new')).toEqual([]);
    });
  });

  describe('list', () => {
    it('yields entries with name, area and absolute path, skipping dot-files', async () => {
      const store = await tempStore({ durability: 'none' });
      await put(store, 'one', '1');
      await put(store, 'two', '2');
      await writeFile(join(store.root, 'new', '.hidden'), 'x');
      const entries = await collect(store.list('new'));
      expect(entries.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
        { name: 'one', area: 'new', path: join(store.root, 'new', 'one') },
        { name: 'two', area: 'new', path: join(store.root, 'new', 'two') },
      ]);
    });

    it('yields every entry of a directory larger than its read buffer, and can stop early', async () => {
      const store = await tempStore();
      const names = Array.from({ length: 2500 }, (_, i) => `f${i}`);
      await Promise.all(names.map((n) => writeFile(join(store.root, 'cur', n), '')));
      expect((await collect(store.list('cur'))).map((e) => e.name).sort()).toEqual([...names].sort());
      let seen = 0;
      for await (const _ of store.list('cur')) if (++seen === 10) break;
      expect(seen).toBe(10);
    });

    it('rejects with ENOENT when the store is missing', async () => {
      const store = new FileStore(join(await tempDir(), 'missing'));
      await expect(collect(store.list('new'))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });

  describe('move', () => {
    it('moves between areas and keeps the content', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'content', 'tmp');
      await store.move('doc', 'tmp', 'cur');
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('content');
    });

    it('fails with ENOENT for a missing file', async () => {
      const store = await tempStore();
      await expect(store.move('nope', 'new', 'cur')).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('never replaces an existing file without overwrite', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'in cur', 'cur');
      await put(store, 'doc', 'in new again');
      await expect(store.move('doc', 'new', 'cur')).rejects.toMatchObject({ code: 'EEXIST' });
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('in cur');
      expect(await readFile(join(store.root, 'new', 'doc'), 'utf8')).toBe('in new again');
      await store.move('doc', 'new', 'cur', { overwrite: true });
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('in new again');
      expect(await namesIn(store, 'new')).toEqual([]);
    });

    it('of one file by many callers at once: exactly one succeeds', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'x');
      const results = await Promise.allSettled(Array.from({ length: 10 }, () => store.move('doc', 'new', 'cur')));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
      for (const r of results) if (r.status === 'rejected') expect(['ENOENT', 'EEXIST']).toContain(r.reason.code);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'cur')).toEqual(['doc']);
    });
  });

  describe('claim', () => {
    it('moves new -> cur and reports who won', async () => {
      const store = await tempStore();
      await put(store, 'job', 'work');
      expect(await store.claim('job')).toBe(true);
      expect(await store.claim('job')).toBe(false);
      expect(await store.claim('never-was')).toBe(false);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await readFile(join(store.root, 'cur', 'job'), 'utf8')).toBe('work');
    });

    it('by many callers at once: exactly one wins', async () => {
      const store = await tempStore();
      await put(store, 'job', 'work');
      const results = await Promise.all(Array.from({ length: 16 }, () => store.claim('job')));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    it('leaves a file it finds under both names alone: a move from cur/ to new/ looks so between its link and its unlink', async () => {
      const store = await tempStore();
      await put(store, 'job', 'work', 'cur');
      await link(join(store.root, 'cur', 'job'), join(store.root, 'new', 'job')); // the move's link
      expect(await store.claim('job')).toBe(false); // claimed already, as far as this caller can tell
      await unlink(join(store.root, 'cur', 'job')); // the move's unlink
      expect(await readFile(join(store.root, 'new', 'job'), 'utf8')).toBe('work');
      expect(await store.claim('job')).toBe(true);
    });

    it('refuses to replace a different file of the same name in cur', async () => {
      const store = await tempStore();
      await put(store, 'job', 'first', 'cur');
      await put(store, 'job', 'second');
      await expect(store.claim('job')).rejects.toMatchObject({ code: 'EEXIST' });
      expect(await readFile(join(store.root, 'cur', 'job'), 'utf8')).toBe('first');
      expect(await namesIn(store, 'new')).toEqual(['job']);
    });

    it('rejects with ENOENT when the store is missing rather than reporting a lost race', async () => {
      const store = new FileStore(join(await tempDir(), 'missing'));
      await expect(store.claim('job')).rejects.toMatchObject({ code: 'ENOENT' });
    });

    it('rejects when cur is missing rather than reporting a lost race', async () => {
      const store = await tempStore();
      await put(store, 'job', 'work');
      await rm(join(store.root, 'cur'), { recursive: true });
      await expect(store.claim('job')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await namesIn(store, 'new')).toEqual(['job']);
    });
  });

  describe('copy', () => {
    it('copies to another area and keeps the source', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'payload');
      await store.copy('doc', 'new', 'cur');
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('payload');
      expect(await readFile(join(store.root, 'new', 'doc'), 'utf8')).toBe('payload');
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('fails with ENOENT for a missing source and leaves tmp empty', async () => {
      const store = await tempStore();
      await expect(store.copy('nope', 'new', 'cur')).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(await namesIn(store, 'cur')).toEqual([]);
    });

    it('fails with EEXIST instead of replacing, unless overwrite', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'old version', 'cur');
      await put(store, 'doc', 'new version');
      await expect(store.copy('doc', 'new', 'cur')).rejects.toMatchObject({ code: 'EEXIST' });
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('old version');
      expect(await namesIn(store, 'tmp')).toEqual([]);
      await store.copy('doc', 'new', 'cur', { overwrite: true });
      expect(await readFile(join(store.root, 'cur', 'doc'), 'utf8')).toBe('new version');
    });

    it('copies a large file completely', async () => {
      const store = await tempStore({ durability: 'none' });
      const data = Buffer.alloc(3 * 1024 * 1024 + 7, 0x5a);
      const w = store.create('big');
      w.end(data);
      await finished(w);
      await store.copy('big', 'new', 'tmp');
      expect((await readFile(join(store.root, 'tmp', 'big'))).equals(data)).toBe(true);
    });
  });

  describe('remove', () => {
    it('removes from one area and fails with ENOENT when missing', async () => {
      const store = await tempStore();
      await put(store, 'doc', 'x');
      await store.remove('doc', 'new');
      expect(await namesIn(store, 'new')).toEqual([]);
      await expect(store.remove('doc', 'new')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'unlink' });
    });
  });
});
