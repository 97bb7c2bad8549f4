// Guarantee 6 on the read paths: an entry someone planted in an area (a
// symlink out of the store, a FIFO, a device node, a directory) is refused
// by copy, the CLI's cat and GET/HEAD /files/AREA/NAME with ERR_UNSAFE_ENTRY
// before a byte is read; nothing blocks, streams forever or fills the disk.
import { execFileSync, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdir, open, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { CLI, completion, serveChild, type ServeChild } from './cli-helpers.js';
import { namesIn, tempDir, tempStore } from './helpers.js';
import { IS_ROOT } from './reliability.js';

type Kind = 'symlink' | 'fifo' | 'directory' | 'device';
const KINDS: Kind[] = IS_ROOT ? ['symlink', 'fifo', 'directory', 'device'] : ['symlink', 'fifo', 'directory'];
const SECRET = 'secret outside the store';
const fifos: string[] = [];
const servers: ServeChild[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.stop()));
  // should anything still wait in open() on a FIFO (the bug), a writer lets it go
  for (const fifo of fifos.splice(0)) {
    const handle = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).catch(() => null);
    await handle?.close();
  }
});

/** Plants an entry of `kind` as `new/x`, next to a regular file `new/ok`. */
async function plant(store: FileStore, kind: Kind): Promise<void> {
  const path = join(store.root, 'new', 'x');
  await writeFile(join(store.root, 'new', 'ok'), 'fine');
  if (kind === 'symlink') {
    const secret = join(await tempDir(), 'secret');
    await writeFile(secret, SECRET);
    await symlink(secret, path);
  } else if (kind === 'fifo') {
    execFileSync('mkfifo', [path]);
    fifos.push(path);
  } else if (kind === 'directory') {
    await mkdir(path);
  } else {
    execFileSync('mknod', [path, 'c', '1', '5']); // /dev/zero's numbers: reads never end
  }
}

/** Rejects when `promise` takes longer than `ms`: a hang is a failure, not a stuck suite. */
function within<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref()),
  ]);
}

describe.each(KINDS)('a planted %s', (kind) => {
  it('copy refuses it with ERR_UNSAFE_ENTRY and writes nothing', async () => {
    const store = await tempStore();
    await plant(store, kind);
    await expect(within(store.copy('x', 'new', 'cur'), 5000)).rejects.toMatchObject({ code: 'ERR_UNSAFE_ENTRY' });
    expect(await namesIn(store, 'cur')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    await store.copy('ok', 'new', 'cur');
    expect(await namesIn(store, 'cur')).toEqual(['ok']);
  });

  it('cat refuses it with ERR_UNSAFE_ENTRY, exit 1, nothing on stdout', async () => {
    const store = await tempStore();
    await plant(store, kind);
    const child = spawn(process.execPath, [CLI, 'cat', store.root, 'new', 'x'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 10_000,
      killSignal: 'SIGKILL',
    });
    const result = await completion(child);
    expect(result.signal).toBeNull();
    expect(result.code).toBe(1);
    expect(result.stdout.length).toBe(0);
    expect(result.stderr).toContain('ERR_UNSAFE_ENTRY');
  });

  it('GET and HEAD /files/new/x answer 422 ERR_UNSAFE_ENTRY, and the server keeps serving', async () => {
    const store = await tempStore();
    await plant(store, kind);
    const server = await serveChild(process.execPath, [CLI, 'serve', store.root, '--port', '0']);
    servers.push(server);
    // more requests than the thread pool has threads: one blocked open() each would stop the server
    for (let i = 0; i < 6; i++) {
      const response = await within(fetch(`${server.url}files/new/x`), 5000);
      expect(response.status).toBe(422);
      expect(await response.json()).toMatchObject({ error: { code: 'ERR_UNSAFE_ENTRY' } });
    }
    const head = await within(fetch(`${server.url}files/new/x`, { method: 'HEAD' }), 5000);
    expect(head.status).toBe(422);
    const upload = await within(fetch(`${server.url}files`, { method: 'POST', body: 'after' }), 5000);
    expect(upload.status).toBe(201);
    const ok = await within(fetch(`${server.url}files/new/ok`), 5000);
    expect(await ok.text()).toBe('fine');
  });
});
