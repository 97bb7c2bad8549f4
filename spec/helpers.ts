import { readdirSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { FileStore, type FileStoreOptions } from '../lib/index.js';

const made: string[] = [];

afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A fresh temporary directory, removed after the test. */
export async function tempDir(prefix = 'filestore-spec-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** A prepared store in a fresh temporary directory. */
export async function tempStore(options?: FileStoreOptions): Promise<FileStore> {
  const store = new FileStore(join(await tempDir(), 'store'), options);
  await store.prepare();
  return store;
}

/** The sorted names in one area, read straight from the directory. */
export async function namesIn(store: FileStore, area: 'tmp' | 'new' | 'cur'): Promise<string[]> {
  return (await readdir(join(store.root, area))).sort();
}

/** The compiled library, for child processes (built by `npm test` before vitest runs). */
export const DIST = new URL('../dist/index.js', import.meta.url).href;

/** Writes a file straight into an area's directory, bypassing the store (a file some other process left there). */
export async function put(
  store: { readonly root: string },
  name: string,
  data: string | Buffer,
  area: 'tmp' | 'new' | 'cur' = 'new',
): Promise<void> {
  await writeFile(join(store.root, area, name), data);
}

/** The descriptors this process holds open (Linux: /proc/self/fd), to prove none leaked. */
export function openFds(): string[] {
  return readdirSync('/proc/self/fd');
}
