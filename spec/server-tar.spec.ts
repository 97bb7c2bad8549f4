// GET /export/AREA.tar and POST /import over real HTTP: fetch, curl, raw sockets, GNU tar.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type { Header } from 'tar-stream';
import { describe, expect, it, vi } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { bash } from './cli-helpers.js';
import { namesIn, openFds, tempDir } from './helpers.js';
import { archive, gnuTar } from './tar-helpers.js';
import { curl, expectError, start } from './server-helpers.js';

const run = promisify(execFile);
async function fill(store: FileStore, files: Map<string, Buffer>, area: 'new' | 'cur' = 'new'): Promise<void> {
  await Promise.all([...files].map(([name, data]) => writeFile(join(store.root, area, name), data)));
}

const FILES = new Map<string, Buffer>([
  ['report.pdf', randomBytes(400_000)],
  ['empty', Buffer.alloc(0)],
  [`${'n'.repeat(200)}.long`, Buffer.from('long')],
  ['café 日本', Buffer.from('unicode')],
]);

describe('GET /export/AREA.tar', () => {
  it('streams an archive GNU tar lists and extracts byte for byte (fetch), and curl | tar -t lists it', async () => {
    const { store, base, port } = await start();
    await fill(store, FILES);
    const response = await fetch(`${base}/export/new.tar`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/x-tar');
    expect(response.headers.get('content-disposition')).toBe('attachment; filename="new.tar"');
    const out = await tempDir();
    await gnuTar(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), ['-x', '-C', out]);
    expect((await readdir(out)).sort()).toEqual([...FILES.keys()].sort());
    for (const [name, data] of FILES) expect((await readFile(join(out, name))).equals(data)).toBe(true);

    const listed = await bash(`set -o pipefail; curl -sS --fail localhost:${port}/export/new.tar | tar -t`);
    expect([listed.code, listed.stderr]).toEqual([0, '']);
    expect(listed.stdout.toString().trimEnd().split('\n').sort()).toEqual([...FILES.keys()].sort());
    expect(
      await gnuTar(
        Readable.fromWeb((await fetch(`${base}/export/cur.tar`)).body as import('node:stream/web').ReadableStream),
        ['-t'],
      ),
    ).toBe('');
  });

  it('a bad area is 400 and a missing store 404, as JSON before any archive byte', async () => {
    const { store, base } = await start();
    await expectError(await fetch(`${base}/export/old.tar`), 400, 'ERR_INVALID_AREA');
    await expectError(await fetch(`${base}/export/..%2Fnew.tar`), 400, 'ERR_INVALID_AREA');
    await expectError(await fetch(`${base}/export/new.zip`), 404, 'ERR_NOT_FOUND');
    await rm(store.root, { recursive: true });
    await expectError(await fetch(`${base}/export/new.tar`), 404, 'ENOENT');
  });

  it('a client that disconnects mid-export: the export stops, its files are closed, the server goes on', async () => {
    const { store, base, port, errors } = await start();
    const big = randomBytes(1024 * 1024);
    await Promise.all(Array.from({ length: 24 }, (_, i) => writeFile(join(store.root, 'new', `f${i}`), big)));
    const before = openFds().length;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('GET /export/new.tar HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    let received = 0;
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    // the server has sent some of the archive and waits for this slow reader
    await vi.waitFor(() => expect(received).toBeGreaterThan(64 * 1024), { timeout: 10_000 });
    socket.pause();
    expect(openFds().length).toBeGreaterThan(before);
    socket.destroy();
    await vi.waitFor(() => expect(openFds().length).toBeLessThanOrEqual(before), { timeout: 10_000 });
    expect(errors).toEqual([]);
    const again = await fetch(`${base}/export/new.tar`);
    expect(
      (await gnuTar(Readable.fromWeb(again.body as import('node:stream/web').ReadableStream), ['-t']))
        .trimEnd()
        .split('\n'),
    ).toHaveLength(24);
  });
});

/** A directory of files and a GNU tar archive of it (`tar -cf - -C dir .`). */
async function gnuArchive(files: Map<string, Buffer>): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'src'));
  await Promise.all([...files].map(([name, data]) => writeFile(join(dir, 'src', name), data)));
  await run('tar', ['-cf', join(dir, 'in.tar'), '-C', join(dir, 'src'), '.']);
  return join(dir, 'in.tar');
}

/** Runs curl; resolves to its stdout and the HTTP status it printed last. */
describe('POST /import', () => {
  it('commits every file of a GNU tar archive uploaded with curl --data-binary: 200 {"names"}; area=cur; EEXIST 409 unless overwrite', async () => {
    const { store, base } = await start();
    const file = await gnuArchive(FILES);
    const first = await curl(['--data-binary', `@${file}`, `${base}/import`]);
    expect(first.status).toBe(200);
    expect((JSON.parse(first.body) as { names: string[] }).names.sort()).toEqual([...FILES.keys()].sort());
    expect(await namesIn(store, 'new')).toEqual([...FILES.keys()].sort());
    for (const [name, data] of FILES) expect((await readFile(join(store.root, 'new', name))).equals(data)).toBe(true);

    const toCur = await curl(['--data-binary', `@${file}`, `${base}/import?area=cur`]);
    expect(toCur.status).toBe(200);
    expect(await namesIn(store, 'cur')).toEqual([...FILES.keys()].sort());

    const clash = await curl(['--data-binary', `@${file}`, `${base}/import?area=new`]);
    expect(clash.status).toBe(409);
    expect(JSON.parse(clash.body)).toEqual({ error: { code: 'EEXIST', message: expect.any(String), committed: [] } });
    const forced = await curl(['--data-binary', `@${file}`, `${base}/import?area=new&overwrite=true`]);
    expect(forced.status).toBe(200);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('refuses a hostile entry with 422 ERR_UNSAFE_ENTRY, naming what was committed; nothing outside the store, tmp/ empty', async () => {
    const { store, base } = await start();
    const parent = dirname(store.root);
    const hostiles = [
      [{ name: '../escaped' }, 'x'],
      [{ name: 'link', type: 'symlink', linkname: '../../outside' }],
      [{ name: 'hard', type: 'link', linkname: '/etc/passwd' }],
    ] as Array<[Partial<Header> & { name: string }, string?]>;
    for (const [i, hostile] of hostiles.entries()) {
      const body = await archive([[{ name: `ok-${i}` }, 'fine'], hostile, [{ name: 'after' }, 'never']]);
      const response = await fetch(`${base}/import`, { method: 'POST', body });
      await expectError(response, 422, 'ERR_UNSAFE_ENTRY', [`ok-${i}`]);
      expect(await readdir(parent)).toEqual(['store']);
      expect((await readdir(store.root)).sort()).toEqual(['cur', 'new', 'tmp']);
      expect(await namesIn(store, 'tmp')).toEqual([]);
    }
    expect(await namesIn(store, 'new')).toEqual(['ok-0', 'ok-1', 'ok-2']);
  });

  it('a truncated archive: 400 ERR_CORRUPT_ARCHIVE with the names committed before the cut; an empty body too', async () => {
    const { store, base } = await start();
    const whole = await archive([
      [{ name: 'whole' }, randomBytes(3000)],
      [{ name: 'cut' }, randomBytes(100_000)],
    ]);
    const response = await fetch(`${base}/import`, { method: 'POST', body: whole.subarray(0, 60_000) });
    await expectError(response, 400, 'ERR_CORRUPT_ARCHIVE', ['whole']);
    await expectError(await fetch(`${base}/import`, { method: 'POST', body: '' }), 400, 'ERR_CORRUPT_ARCHIVE', []);
    expect(await namesIn(store, 'new')).toEqual(['whole']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('an upload aborted mid-file: the files before it stay committed, the partial one leaves nothing in tmp/', async () => {
    const { store, port, base, errors } = await start();
    const body = await archive([
      [{ name: 'done' }, 'committed first'],
      [{ name: 'partial' }, randomBytes(2 * 1024 * 1024)],
    ]);
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(`POST /import HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`);
    socket.write(body.subarray(0, 512 * 1024));
    await vi.waitFor(
      async () => expect([await namesIn(store, 'new'), (await namesIn(store, 'tmp')).length]).toEqual([['done'], 1]),
      { timeout: 10_000 },
    );
    socket.destroy();
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toEqual([]), { timeout: 10_000 });
    expect(await namesIn(store, 'new')).toEqual(['done']);
    expect(errors).toEqual([]);
    const next = await fetch(`${base}/import`, { method: 'POST', body: await archive([[{ name: 'next' }, 'n']]) });
    expect(await next.json()).toEqual({ names: ['next'] });
  });

  it('a body over --max-bytes: 413, and nothing of the file in progress is left', async () => {
    const { store, base } = await start({ maxBytes: 20_000 });
    const body = await archive([
      [{ name: 'small' }, 'fits'],
      [{ name: 'large' }, randomBytes(50_000)],
    ]);
    await expectError(await fetch(`${base}/import`, { method: 'POST', body }), 413, 'ERR_BODY_TOO_LARGE', []);
    // chunked, no Content-Length: the rest is sent once `small` is committed, and pushes the body over the limit
    let sent = false;
    const stream = new ReadableStream({
      async pull(controller) {
        if (!sent) {
          sent = true;
          return controller.enqueue(body.subarray(0, 10_000));
        }
        await vi.waitFor(async () => expect(await namesIn(store, 'new')).toEqual(['small']), { timeout: 10_000 });
        controller.enqueue(body.subarray(10_000));
        controller.close();
      },
    });
    const chunked = await fetch(`${base}/import`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    await expectError(chunked, 413, 'ERR_BODY_TOO_LARGE', ['small']);
    expect(await namesIn(store, 'new')).toEqual(['small']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('a bad area or overwrite value is 400 before the body is read', async () => {
    const { store, base } = await start();
    const body = await archive([[{ name: 'a' }, 'a']]);
    await expectError(await fetch(`${base}/import?area=tmp`, { method: 'POST', body }), 400, 'ERR_INVALID_AREA', []);
    await expectError(await fetch(`${base}/import?area=old`, { method: 'POST', body }), 400, 'ERR_INVALID_AREA', []);
    await expectError(
      await fetch(`${base}/import?overwrite=maybe`, { method: 'POST', body }),
      400,
      'ERR_BAD_REQUEST',
      [],
    );
    await expectError(await fetch(`${base}/import`), 405, 'ERR_METHOD_NOT_ALLOWED');
    expect([await namesIn(store, 'tmp'), await namesIn(store, 'new'), await namesIn(store, 'cur')]).toEqual([
      [],
      [],
      [],
    ]);
  });
});

it('both endpoints require the token when one is set', async () => {
  const { store, base } = await start({ token: 't0ken' });
  await fill(store, new Map([['x', Buffer.from('x')]]));
  const body = await archive([[{ name: 'y' }, 'y']]);
  await expectError(await fetch(`${base}/export/new.tar`), 401, 'ERR_UNAUTHORIZED');
  await expectError(
    await fetch(`${base}/import`, { method: 'POST', body, headers: { authorization: 'Bearer wrong' } }),
    401,
    'ERR_UNAUTHORIZED',
  );
  expect(await namesIn(store, 'new')).toEqual(['x']);
  const auth = { authorization: 'Bearer t0ken' };
  const exported = await fetch(`${base}/export/new.tar`, { headers: auth });
  expect(await gnuTar(Readable.fromWeb(exported.body as import('node:stream/web').ReadableStream), ['-t'])).toBe('x\n');
  expect(await (await fetch(`${base}/import`, { method: 'POST', body, headers: auth })).json()).toEqual({
    names: ['y'],
  });
});
