import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import pump from 'pump';
import { describe, expect, it, vi } from 'vitest';
import type { FileWriter } from '../lib/index.js';
import { namesIn, openFds, tempStore } from './helpers.js';

/** Resolves once the writer has closed, whichever way it ended. */
async function settled(writer: FileWriter): Promise<void> {
  await finished(writer).catch(() => {});
  expect(writer.closed).toBe(true);
}

describe('FileWriter', () => {
  it('is in tmp until finish and in new when finish fires', async () => {
    const store = await tempStore();
    const writer = store.create();
    const seenAtFinish: string[][] = [];
    writer.on('finish', () => void namesIn(store, 'new').then((names) => seenAtFinish.push(names)));
    writer.write('first part, ');
    await new Promise((resolve) => writer.once('drain', resolve).write('x'.repeat(32 * 1024)) && resolve(null));
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([writer.name]);
    expect(writer.path).toBe(join(store.root, 'tmp', writer.name));
    writer.end('last part');
    await finished(writer);
    expect(await namesIn(store, 'new')).toEqual([writer.name]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(writer.path).toBe(join(store.root, 'new', writer.name));
    expect(await readFile(writer.path, 'utf8')).toBe(`first part, ${'x'.repeat(32 * 1024)}last part`);
  });

  it('has committed when pipeline resolves', async () => {
    const store = await tempStore();
    const writer = store.create('piped');
    await pipeline(Readable.from([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')]), writer);
    expect(await readFile(join(store.root, 'new', 'piped'), 'utf8')).toBe('abc');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('has committed when pump calls back', async () => {
    const store = await tempStore();
    const writer = store.create('pumped');
    const err = await new Promise((resolve) => pump(Readable.from(['one', 'two']), writer, resolve));
    expect(err).toBeFalsy();
    expect(await readFile(join(store.root, 'new', 'pumped'), 'utf8')).toBe('onetwo');
  });

  it('commits an empty file', async () => {
    const store = await tempStore();
    const writer = store.create('empty');
    writer.end();
    await finished(writer);
    expect(await readFile(join(store.root, 'new', 'empty'), 'utf8')).toBe('');
  });

  it('generates unique names that sort by creation second', async () => {
    const store = await tempStore({ durability: 'none', hostname: 'a/b:c' });
    const writers = Array.from({ length: 200 }, () => store.create());
    for (const w of writers) w.end('x');
    await Promise.all(writers.map((w) => finished(w)));
    const names = writers.map((w) => w.name);
    expect(new Set(names).size).toBe(200);
    for (const name of names) {
      expect(name).toMatch(/^\d{10,}\.M\d+P\d+Q\d+R[0-9a-f]{8}\.a\\057b\\072c$/);
      expect(Number(name.split('.')[0])).toBeCloseTo(Date.now() / 1000, -2);
    }
    expect(await namesIn(store, 'new')).toEqual([...names].sort());
  });

  it('orders generated names by creation time, to the microsecond', async () => {
    const store = await tempStore({ durability: 'none' });
    const second = Math.floor(Date.now() / 1000);
    const names: string[] = [];
    const clock = vi.spyOn(performance, 'now');
    try {
      for (const micros of [5, 42, 999, 99_999, 100_000, 999_999, 1_000_003]) {
        clock.mockReturnValue((second * 1e6 + micros + 0.4) / 1000 - performance.timeOrigin);
        const writer = store.create();
        names.push(writer.name);
        writer.destroy();
      }
    } finally {
      clock.mockRestore();
    }
    for (const name of names) expect(name).toMatch(/^\d+\.M\d{6}P/);
    expect([...names].sort()).toEqual(names);
  });

  describe('on every error path, removes its tmp file and leaves new untouched', () => {
    it('when the source fails', async () => {
      const store = await tempStore();
      const before = openFds();
      const source = new PassThrough();
      const writer = store.create('fails');
      const done = pipeline(source, writer);
      source.write('partial data');
      await new Promise((resolve) => setTimeout(resolve, 20));
      source.destroy(Object.assign(new Error('client went away'), { code: 'ECONNRESET' }));
      await expect(done).rejects.toMatchObject({ code: 'ECONNRESET' });
      await settled(writer);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(openFds()).toEqual(before);
    });

    it('when pump sees the source fail', async () => {
      const store = await tempStore();
      const source = new PassThrough();
      const writer = store.create();
      const done = new Promise((resolve) => pump(source, writer, resolve));
      source.write('partial');
      source.destroy(new Error('boom'));
      expect(await done).toBeInstanceOf(Error);
      await settled(writer);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('when destroyed mid-write', async () => {
      const store = await tempStore();
      const before = openFds();
      const writer = store.create();
      for (let i = 0; i < 64; i++) writer.write(Buffer.alloc(64 * 1024, i));
      writer.destroy();
      await settled(writer);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(openFds()).toEqual(before);
    });

    it('when destroyed while ending', async () => {
      const store = await tempStore();
      const writer = store.create('ending');
      writer.end('data');
      writer.destroy();
      await settled(writer);
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('when destroyed before the file is open', async () => {
      const store = await tempStore();
      const writer = store.create();
      const failed = finished(writer);
      writer.destroy(new Error('changed my mind'));
      await expect(failed).rejects.toThrow('changed my mind');
      await settled(writer);
      expect(await namesIn(store, 'tmp')).toEqual([]);
    });

    it('when the commit collides with an existing name', async () => {
      const store = await tempStore();
      const first = store.create('taken');
      first.end('original');
      await finished(first);
      const before = openFds();
      const second = store.create('taken');
      second.end('intruder');
      await expect(finished(second)).rejects.toMatchObject({ code: 'EEXIST' });
      await new Promise((resolve) => setImmediate(resolve));
      expect(await namesIn(store, 'new')).toEqual(['taken']);
      expect(await readFile(join(store.root, 'new', 'taken'), 'utf8')).toBe('original');
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(openFds()).toEqual(before);
    });

    it('when the store does not exist', async () => {
      const store = await tempStore();
      const { FileStore } = await import('../lib/index.js');
      const missing = new FileStore(join(store.root, 'nowhere'));
      const writer = missing.create();
      writer.end('x');
      await expect(finished(writer)).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
    });
  });

  it('replaces an existing file only with overwrite', async () => {
    const store = await tempStore();
    for (const text of ['v1', 'v2']) {
      const writer = store.create('doc', { overwrite: true });
      writer.end(text);
      await finished(writer);
    }
    expect(await readFile(join(store.root, 'new', 'doc'), 'utf8')).toBe('v2');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('lets concurrent writers of one name race: one commits, the others get EEXIST', async () => {
    const store = await tempStore({ durability: 'none' });
    const writers = Array.from({ length: 8 }, (_, i) => {
      const w = store.create('contested');
      w.end(`writer ${i}`);
      return w;
    });
    const results = await Promise.allSettled(writers.map((w) => finished(w)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'EEXIST' });
    expect(await namesIn(store, 'new')).toEqual(['contested']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('with commit: false puts the file at tmp/<name>, never in new', async () => {
    const store = await tempStore();
    const writer = store.create('held', { commit: false });
    writer.end('held back');
    await finished(writer);
    expect(writer.path).toBe(join(store.root, 'tmp', 'held'));
    expect(await namesIn(store, 'tmp')).toEqual(['held']);
    expect(await namesIn(store, 'new')).toEqual([]);
    const again = store.create('held', { commit: false });
    again.end('second');
    await expect(finished(again)).rejects.toMatchObject({ code: 'EEXIST' });
    expect(await readFile(join(store.root, 'tmp', 'held'), 'utf8')).toBe('held back');
  });

  it('with commit: false and a generated name keeps the file in tmp after close', async () => {
    const store = await tempStore();
    const writer = store.create(undefined, { commit: false });
    writer.end('kept');
    await finished(writer);
    await settled(writer);
    expect(writer.path).toBe(join(store.root, 'tmp', writer.name));
    expect(await namesIn(store, 'tmp')).toEqual([writer.name]);
    expect(await readFile(writer.path, 'utf8')).toBe('kept');
  });

  it('applies fileMode (under the umask)', async () => {
    const store = await tempStore({ fileMode: 0o600 });
    const writer = store.create('private');
    writer.end('secret');
    await finished(writer);
    const { stat } = await import('node:fs/promises');
    expect((await stat(writer.path)).mode & 0o777).toBe(0o600);
  });
});
