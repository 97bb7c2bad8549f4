// POST /files with multipart/form-data (curl -F, HTML forms): each file part stored as itself,
// all or nothing, never the raw envelope.
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { CLI, bash, serveChild } from './cli-helpers.js';
import { docBlock } from './doc-blocks.js';
import { namesIn, tempDir } from './helpers.js';
import { curl, expectError, nodeRequest, start } from './server-helpers.js';

async function expectEmpty(store: FileStore): Promise<void> {
  expect(await namesIn(store, 'tmp')).toEqual([]);
  expect(await namesIn(store, 'new')).toEqual([]);
}

describe('multipart/form-data uploads', () => {
  it('curl -F stores each file part byte for byte under its filename: 201 {"names"}', async () => {
    const { store, base } = await start();
    const dir = await tempDir();
    const big = randomBytes(3 * 1024 * 1024);
    await writeFile(join(dir, 'x.txt'), 'hello world\n');
    await writeFile(join(dir, 'big.bin'), big);
    const { status, body } = await curl(
      ['-F', 'a=@x.txt', '-F', 'note=just a field', '-F', 'b=@big.bin', `${base}/files`],
      dir,
    );
    expect([status, JSON.parse(body)]).toEqual([201, { names: ['x.txt', 'big.bin'] }]);
    expect(await readFile(join(store.root, 'new', 'x.txt'), 'utf8')).toBe('hello world\n');
    expect((await readFile(join(store.root, 'new', 'big.bin'))).equals(big)).toBe(true);
    expect((await namesIn(store, 'new')).sort()).toEqual(['big.bin', 'x.txt']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('a filename that is not a valid store name gets a generated name; a path is cut to its last part; UTF-8 names kept', async () => {
    const { store, base } = await start();
    const form = new FormData();
    form.append('a', new Blob(['dot']), '.hidden');
    form.append('b', new Blob(['path']), '../../etc/passwd');
    form.append('c', new Blob(['utf8']), 'Größe €.txt');
    const response = await fetch(`${base}/files`, { method: 'POST', body: form });
    expect(response.status).toBe(201);
    const { names } = (await response.json()) as { names: string[] };
    expect(names).toHaveLength(3);
    expect(names[0]).toMatch(/^\d+\.M\d+P\d+/);
    expect(names[1]).toBe('passwd');
    expect(names[2]).toBe('Größe €.txt');
    expect(await readFile(join(store.root, 'new', names[0] as string), 'utf8')).toBe('dot');
    expect(await readFile(join(store.root, 'new', 'passwd'), 'utf8')).toBe('path');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('a form without a file part, a file part with no file chosen, another multipart type: 400, nothing stored', async () => {
    const { store, base } = await start();
    const fields = await curl(['-F', 'name=value', `${base}/files`]);
    expect([fields.status, JSON.parse(fields.body).error.code]).toEqual([400, 'ERR_BAD_REQUEST']);
    const none = new FormData();
    none.append('file', new Blob([]), '');
    await expectError(await fetch(`${base}/files`, { method: 'POST', body: none }), 400, 'ERR_BAD_REQUEST');
    await expectError(
      await fetch(`${base}/files`, {
        method: 'POST',
        headers: { 'content-type': 'multipart/mixed; boundary=x' },
        body: 'x',
      }),
      400,
      'ERR_BAD_REQUEST',
    );
    await expectEmpty(store);
  });

  it('a broken envelope (no boundary, truncated, garbage) is 400 and leaves nothing in new/ or tmp/', async () => {
    const { store, port } = await start();
    const cases = [
      { type: 'multipart/form-data', body: 'no boundary' },
      {
        type: 'multipart/form-data; boundary=XX',
        body: '--XX\r\nContent-Disposition: form-data; name="a"; filename="a.txt"\r\n\r\nstarted but never closed',
      },
      {
        type: 'multipart/form-data; boundary=XX',
        body:
          '--XX\r\nContent-Disposition: form-data; name="a"; filename="ok.txt"\r\n\r\nfirst\r\n' +
          '--XX\r\nContent-Disposition: form-data; name="b"; filename="b.txt"\r\n\r\nsecond, cut',
      },
      { type: 'multipart/form-data; boundary=XX', body: 'garbage without any boundary' },
    ];
    for (const { type, body } of cases) {
      const answer = await nodeRequest(port, {
        method: 'POST',
        path: '/files',
        headers: { 'content-type': type },
        body,
      });
      expect([body, answer.status, JSON.parse(answer.body).error.code]).toEqual([body, 400, 'ERR_BAD_REQUEST']);
    }
    await expectEmpty(store);
  });

  it('a second part over --max-bytes: 413, and the first part is not committed either', async () => {
    const { store, base } = await start({ maxBytes: 1024 * 1024 });
    const form = new FormData();
    form.append('a', new Blob(['small']), 'small.txt');
    form.append('b', new Blob([randomBytes(2 * 1024 * 1024)]), 'big.bin');
    await expectError(await fetch(`${base}/files`, { method: 'POST', body: form }), 413, 'ERR_BODY_TOO_LARGE');
    await vi.waitFor(async () => expectEmpty(store), { timeout: 10_000 });
  });

  it('an upload aborted in the second part leaves nothing in new/ or tmp/', async () => {
    const { store, port } = await start();
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    // both parts past 64 KiB, so each has its file in tmp/ (smaller ones at durability none wait in memory)
    socket.write(
      'POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=XX\r\nContent-Length: 10000000\r\n\r\n' +
        '--XX\r\nContent-Disposition: form-data; name="a"; filename="one.txt"\r\n\r\n',
    );
    socket.write(Buffer.alloc(100_000, 'a'));
    socket.write('\r\n--XX\r\nContent-Disposition: form-data; name="b"; filename="two.bin"\r\n\r\n');
    socket.write(Buffer.alloc(200_000, 'b'));
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(2), { timeout: 10_000 });
    expect(await namesIn(store, 'new')).toEqual([]);
    socket.destroy();
    await vi.waitFor(async () => expectEmpty(store), { timeout: 10_000 });
  });

  it('two parts with one name: 400 before anything is committed; a name already in new/: 409 with committed', async () => {
    const { store, base } = await start();
    const twice = new FormData();
    twice.append('a', new Blob(['one']), 'same.txt');
    twice.append('b', new Blob(['two']), 'same.txt');
    await expectError(await fetch(`${base}/files`, { method: 'POST', body: twice }), 400, 'ERR_BAD_REQUEST');
    await vi.waitFor(async () => expectEmpty(store), { timeout: 10_000 });
    await store.create('taken.txt').end('old');
    await vi.waitFor(async () => expect(await namesIn(store, 'new')).toEqual(['taken.txt']));
    const clash = new FormData();
    clash.append('a', new Blob(['fresh']), 'fresh.txt');
    clash.append('b', new Blob(['new']), 'taken.txt');
    await expectError(await fetch(`${base}/files`, { method: 'POST', body: clash }), 409, 'EEXIST', ['fresh.txt']);
    expect(await readFile(join(store.root, 'new', 'taken.txt'), 'utf8')).toBe('old');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('more files than a form may carry: 413 ERR_TOO_MANY_FILES, nothing stored', async () => {
    const { store, base } = await start();
    const form = new FormData();
    for (let i = 0; i < 101; i++) form.append('f', new Blob([`${i}`]), `f${i}`);
    await expectError(await fetch(`${base}/files`, { method: 'POST', body: form }), 413, 'ERR_TOO_MANY_FILES');
    await vi.waitFor(async () => expectEmpty(store), { timeout: 10_000 });
  });

  it('curl --data-binary (labelled urlencoded) is still a raw upload', async () => {
    const { store, base } = await start();
    const dir = await tempDir();
    await writeFile(join(dir, 'f'), 'a=b&c');
    const { status, body } = await curl(['--data-binary', '@f', `${base}/files`], dir);
    expect(status).toBe(201);
    expect(await readFile(join(store.root, 'new', JSON.parse(body).name), 'utf8')).toBe('a=b&c');
  });

  it('PUT /files/NAME keeps its raw-body meaning, whatever the content type', async () => {
    const { store, base } = await start();
    const response = await fetch(`${base}/files/raw`, {
      method: 'PUT',
      headers: { 'content-type': 'multipart/form-data; boundary=XX' },
      body: '--XX--',
    });
    expect(response.status).toBe(201);
    expect(await readFile(join(store.root, 'new', 'raw'), 'utf8')).toBe('--XX--');
  });
});

it('runs the form-upload example of docs/http.md against `serve`', async () => {
  const cwd = await tempDir();
  const pdf = randomBytes(30_000);
  await writeFile(join(cwd, 'report.pdf'), pdf);
  await writeFile(join(cwd, 'notes.txt'), 'notes\n');
  const server = await serveChild(process.execPath, [CLI, 'serve', 'data', '--port', '0', '--durability', 'none'], {
    cwd,
  });
  try {
    const block = docBlock('readme-http-form', 'sh').replaceAll('localhost:8080', `localhost:${server.port}`);
    const { code, stdout, stderr } = await bash(
      `set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; }\n${block}`,
      { cwd },
    );
    expect([code, stderr.toString()]).toEqual([0, '']);
    expect(JSON.parse(stdout.toString())).toEqual({ names: ['report.pdf', 'notes.txt'] });
    expect((await readFile(join(cwd, 'data', 'new', 'report.pdf'))).equals(pdf)).toBe(true);
  } finally {
    await server.stop();
  }
});
