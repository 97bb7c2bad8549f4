// The walk-through of gocept.filestore's doctest, step for step, in this API.
import { access, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { namesIn, tempDir } from './helpers.js';

async function paths(store: FileStore, area: 'tmp' | 'new' | 'cur'): Promise<string[]> {
  const found: string[] = [];
  for await (const entry of store.list(area)) found.push(entry.path);
  return found.sort();
}

it('walks through prepare, create, list, move, copy and remove', async () => {
  const dir = join(await tempDir(), 'store');
  const store = new FileStore(dir);

  // prepare creates the store and its three areas, and may be called again
  await store.prepare();
  for (const area of ['tmp', 'new', 'cur']) expect((await stat(join(dir, area))).isDirectory()).toBe(true);
  await store.prepare();

  // it recreates what was removed
  await rm(join(dir, 'new'), { recursive: true });
  await store.prepare();
  expect((await stat(join(dir, 'new'))).isDirectory()).toBe(true);
  await rm(dir, { recursive: true });
  await store.prepare();
  expect(await namesIn(store, 'cur')).toEqual([]);

  // create without commit leaves the file in tmp
  const writer = store.create('a-file', { commit: false });
  writer.end('Hello world.');
  await finished(writer);
  expect(writer.path).toBe(join(dir, 'tmp', 'a-file'));

  // list yields full paths
  expect(await paths(store, 'tmp')).toEqual([join(dir, 'tmp', 'a-file')]);
  expect(await paths(store, 'new')).toEqual([]);

  // move tmp -> new -> cur
  await store.move('a-file', 'tmp', 'new');
  expect(await paths(store, 'tmp')).toEqual([]);
  expect(await paths(store, 'new')).toEqual([join(dir, 'new', 'a-file')]);
  await store.move('a-file', 'new', 'cur');
  expect(await paths(store, 'new')).toEqual([]);
  expect(await paths(store, 'cur')).toEqual([join(dir, 'cur', 'a-file')]);

  // copy cur -> tmp keeps the original
  await store.copy('a-file', 'cur', 'tmp');
  expect(await paths(store, 'cur')).toEqual([join(dir, 'cur', 'a-file')]);
  expect(await paths(store, 'tmp')).toEqual([join(dir, 'tmp', 'a-file')]);
  expect(await readFile(join(dir, 'tmp', 'a-file'), 'utf8')).toBe('Hello world.');

  // remove deletes from one area only
  await store.remove('a-file', 'cur');
  expect(await paths(store, 'cur')).toEqual([]);
  await expect(access(join(dir, 'tmp', 'a-file'))).resolves.toBeUndefined();
  await expect(store.remove('a-file', 'cur')).rejects.toMatchObject({ code: 'ENOENT' });
});
