// What a caller or another process can get wrong, and the answer each gets:
// a tmp file cleaned away under a live writer (ERR_TMP_REMOVED), a store
// root the file system refuses to create (prepare terminates), and a
// misspelt option key (ERR_INVALID_OPTION).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { createServer } from '../lib/server/index.js';
import { CLI, cli, completion } from './cli-helpers.js';
import { namesIn, tempDir, tempStore } from './helpers.js';

describe('a tmp file removed under a live writer', () => {
  it.each(['full', 'file'] as const)(
    'by clean --older-than 0 in another process: the writer fails with ERR_TMP_REMOVED (durability %s)',
    async (durability) => {
      const store = await tempStore({ durability });
      const writer = store.create('upload');
      await new Promise<void>((resolve, reject) =>
        writer.write('first half', (err) => (err ? reject(err) : resolve())),
      );
      await new Promise((resolve) => setTimeout(resolve, 20));
      const cleaned = await cli(['clean', store.root, '--older-than', '0s']);
      expect(cleaned.code).toBe(0);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      writer.end('second half');
      await expect(finished(writer)).rejects.toMatchObject({ code: 'ERR_TMP_REMOVED', cause: { code: 'ENOENT' } });
      expect(await namesIn(store, 'new')).toEqual([]);
    },
  );

  it('under an HTTP upload: 503 ERR_TMP_REMOVED with Retry-After (a retry succeeds), nothing committed', async () => {
    const store = await tempStore({ durability: 'file' });
    const server = createServer(store, { onError: () => {} });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const { port } = server.address() as AddressInfo;
      const answer = new Promise<{ status: number; retryAfter: unknown; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/files/upload' }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString();
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'], body }));
        });
        req.on('error', reject);
        req.write('first half');
        // the second half once clean (another process) has removed the tmp file
        void (async () => {
          while ((await namesIn(store, 'tmp')).length === 0) await new Promise((r) => setTimeout(r, 10));
          await new Promise((r) => setTimeout(r, 20));
          expect((await cli(['clean', store.root, '--older-than', '0s'])).code).toBe(0);
          req.end('second half');
        })().catch(reject);
      });
      const { status, retryAfter, body } = await answer;
      expect(status).toBe(503);
      expect(retryAfter).toBe('1');
      expect(JSON.parse(body)).toMatchObject({ error: { code: 'ERR_TMP_REMOVED' } });
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      const retried = await fetch(`http://127.0.0.1:${port}/files/upload`, { method: 'PUT', body: 'whole' });
      expect(retried.status).toBe(201);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a removed store is still ENOENT', async () => {
    const store = await tempStore({ durability: 'file' });
    const writer = store.create('upload');
    await new Promise<void>((resolve, reject) => writer.write('x', (err) => (err ? reject(err) : resolve())));
    const { rm } = await import('node:fs/promises');
    await rm(store.root, { recursive: true });
    writer.end();
    await expect(finished(writer)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe.runIf(existsSync('/proc/self'))('a root the file system refuses to create (/proc)', () => {
  it('prepare() rejects with ENOENT at once instead of looping', async () => {
    const started = Date.now();
    await expect(new FileStore('/proc/filestore-x').prepare()).rejects.toMatchObject({
      code: 'ENOENT',
      syscall: 'mkdir',
      path: '/proc/filestore-x',
    });
    await expect(new FileStore('/proc/filestore-x/deeper').prepare()).rejects.toMatchObject({ code: 'ENOENT' });
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('serve /proc/x exits 1 with the error', async () => {
    const child = spawn(process.execPath, [CLI, 'serve', '/proc/filestore-x', '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 20_000,
      killSignal: 'SIGKILL',
    });
    const result = await completion(child);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('ENOENT');
  });

  it('prepare() of a path under a regular file fails with ENOTDIR', async () => {
    const dir = await tempDir();
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, 'file'), '');
    await expect(new FileStore(join(dir, 'file', 'store')).prepare()).rejects.toMatchObject({ code: 'ENOTDIR' });
  });
});

describe('an unknown option key', () => {
  const invalid = { code: 'ERR_INVALID_OPTION' };

  it('new FileStore(dir, { durabilty }) throws, naming the option meant', async () => {
    const dir = await tempDir();
    expect(() => new FileStore(dir, { durabilty: 'none' } as never)).toThrow(
      expect.objectContaining({ ...invalid, message: expect.stringContaining('durability') }),
    );
    expect(() => new FileStore(dir, null as never)).toThrow(expect.objectContaining(invalid));
  });

  it('every options object of the store refuses it before touching a file', async () => {
    const store = await tempStore();
    await import('node:fs/promises').then(({ writeFile }) => writeFile(join(store.root, 'new', 'a'), 'a'));
    const typo = { overwrit: true } as never;
    expect(() => store.create('b', typo)).toThrow(expect.objectContaining(invalid));
    await expect(store.move('a', 'new', 'cur', typo)).rejects.toMatchObject(invalid);
    await expect(store.copy('a', 'new', 'cur', typo)).rejects.toMatchObject(invalid);
    expect(() => store.exportTar('new', { name: ['a'] } as never)).toThrow(expect.objectContaining(invalid));
    await expect(store.importTar(Readable.from([]), typo)).rejects.toMatchObject(invalid);
    expect(() => store.consume({ folow: true } as never)).toThrow(expect.objectContaining(invalid));
    await expect(store.requeue({ olderthan: 1000 } as never)).rejects.toMatchObject(invalid);
    await expect(store.clean({ olderThen: 0 } as never)).rejects.toMatchObject(invalid);
    expect(await namesIn(store, 'new')).toEqual(['a']);
    expect(await namesIn(store, 'cur')).toEqual([]);
  });

  it('createServer(store, { maxByte }) throws, naming the option meant', async () => {
    const store = await tempStore();
    expect(() => createServer(store, { maxByte: 1 } as never)).toThrow(
      expect.objectContaining({ ...invalid, message: expect.stringContaining('maxBytes') }),
    );
  });

  it('the known keys still pass', async () => {
    const store = await tempStore({ durability: 'none', hostname: 'h', fileMode: 0o644 });
    const writer = store.create('b', { commit: true, overwrite: false });
    writer.end('b');
    await finished(writer);
    await store.copy('b', 'new', 'cur', { overwrite: false });
    expect(await store.clean({ olderThan: 1000 })).toEqual([]);
  });
});
