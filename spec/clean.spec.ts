import { access, mkdir, rm, utimes, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { SMALL_FILE_MAX } from '../lib/commit-thread.js';
import { FileStore } from '../lib/index.js';
import { namesIn, tempStore } from './helpers.js';

const HOUR = 60 * 60 * 1000;

/** Writes `area/name` and sets its access and modification time to `ageMs` ago. */
async function fileAged(store: FileStore, area: 'tmp' | 'new' | 'cur', name: string, ageMs: number): Promise<void> {
  const path = join(store.root, area, name);
  await writeFile(path, name);
  await age(path, ageMs);
}

async function age(path: string, ageMs: number): Promise<void> {
  const when = new Date(Date.now() - ageMs);
  await utimes(path, when, when);
}

describe('clean()', () => {
  it('removes the tmp/ files older than 36 hours and returns their names', async () => {
    const store = await tempStore();
    await fileAged(store, 'tmp', 'abandoned-1', 37 * HOUR);
    await fileAged(store, 'tmp', 'abandoned-2', 72 * HOUR);
    await fileAged(store, 'tmp', 'recent', 35 * HOUR);
    await fileAged(store, 'tmp', 'fresh', 0);

    expect((await store.clean()).sort()).toEqual(['abandoned-1', 'abandoned-2']);
    expect(await namesIn(store, 'tmp')).toEqual(['fresh', 'recent']);
    expect(await store.clean()).toEqual([]);
  });

  it('uses olderThan, in milliseconds', async () => {
    const store = await tempStore();
    await fileAged(store, 'tmp', 'ten-minutes', 10 * 60 * 1000);
    await fileAged(store, 'tmp', 'one-second', 1000);

    expect(await store.clean({ olderThan: HOUR })).toEqual([]);
    expect(await store.clean({ olderThan: 5 * 60 * 1000 })).toEqual(['ten-minutes']);
    expect(await namesIn(store, 'tmp')).toEqual(['one-second']);
  });

  it('never touches new/ or cur/', async () => {
    const store = await tempStore();
    await fileAged(store, 'new', 'committed', 100 * HOUR);
    await fileAged(store, 'cur', 'claimed', 100 * HOUR);

    expect(await store.clean({ olderThan: 0 })).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual(['committed']);
    expect(await namesIn(store, 'cur')).toEqual(['claimed']);
  });

  it('leaves dot-files and directories in tmp/ alone', async () => {
    const store = await tempStore();
    await fileAged(store, 'tmp', '.keep', 100 * HOUR);
    await mkdir(join(store.root, 'tmp', 'a-directory'));
    await age(join(store.root, 'tmp', 'a-directory'), 100 * HOUR);

    expect(await store.clean({ olderThan: 0 })).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual(['.keep', 'a-directory']);
  });

  it("never removes the file of a live writer of this process, however old, nor of another store object's", async () => {
    const store = await tempStore({ durability: 'none' });
    const writer = store.create('slow-upload');
    // past SMALL_FILE_MAX, so the writer has its file in tmp/ (smaller files at durability none wait in memory)
    const partOne = Buffer.alloc(SMALL_FILE_MAX + 1, 'a');
    await new Promise<void>((resolve, reject) => writer.write(partOne, (err) => (err ? reject(err) : resolve())));
    await age(writer.path, 100 * HOUR);
    const other = new FileStore(store.root);

    expect(await store.clean({ olderThan: 0 })).toEqual([]);
    expect(await other.clean({ olderThan: 0 })).toEqual([]);
    await expect(access(writer.path)).resolves.toBeUndefined();

    writer.end(', part two');
    await finished(writer);
    expect(await namesIn(store, 'new')).toEqual(['slow-upload']);
  });

  it("removes a writer's file once the writer is closed", async () => {
    const store = await tempStore({ durability: 'none' });
    // A generated name with commit: false stays in tmp/ at the path it was written to.
    const writer = store.create(undefined, { commit: false });
    writer.end('kept in tmp');
    await finished(writer);
    if (!writer.closed) await once(writer, 'close');
    await age(writer.path, 100 * HOUR);

    expect(await store.clean({ olderThan: 0 })).toEqual([writer.name]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('rejects with ENOENT when the store is missing', async () => {
    const store = await tempStore();
    await rm(store.root, { recursive: true });

    await expect(store.clean()).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it.each([
    ['options null', null],
    ['olderThan negative', { olderThan: -1 }],
    ['olderThan NaN', { olderThan: Number.NaN }],
    ['olderThan infinite', { olderThan: Number.POSITIVE_INFINITY }],
    ['olderThan a string', { olderThan: '1000' }],
  ])('rejects with ERR_INVALID_OPTION for %s, removing nothing', async (_, options) => {
    const store = await tempStore();
    await fileAged(store, 'tmp', 'abandoned', 100 * HOUR);

    await expect(store.clean(options as never)).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    expect(await namesIn(store, 'tmp')).toEqual(['abandoned']);
  });
});
