// The HTTP server over real HTTP: fetch, curl and raw sockets against createServer() and `serve`.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FileStore } from '../lib/index.js';
import { CLI, bash, completion, raw, readmeBlock, serveChild } from './cli-helpers.js';
import { curl, expectError, start } from './server-helpers.js';
import { namesIn, tempDir } from './helpers.js';

async function expectEmpty(store: FileStore): Promise<void> {
  expect(await namesIn(store, 'tmp')).toEqual([]);
  expect(await namesIn(store, 'new')).toEqual([]);
}

describe('uploads', () => {
  it('POST /files streams the body into a new file with a generated name: 201, Location, nothing left in tmp/', async () => {
    const { store, base } = await start();
    const data = randomBytes(2 * 1024 * 1024);
    const response = await fetch(`${base}/files`, { method: 'POST', body: data });
    expect(response.status).toBe(201);
    const { name } = (await response.json()) as { name: string };
    expect(name).toMatch(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]{8}\./);
    expect(response.headers.get('location')).toBe(`/files/new/${encodeURIComponent(name)}`);
    expect(await namesIn(store, 'new')).toEqual([name]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect((await readFile(join(store.root, 'new', name))).equals(data)).toBe(true);
  });

  it('PUT /files/NAME with curl -T stores under that name, and answers 409 EEXIST the second time', async () => {
    const { store, base } = await start();
    const dir = await tempDir();
    await writeFile(join(dir, 'one'), 'first version');
    await writeFile(join(dir, 'two'), randomBytes(100_000));
    const first = await curl(['-T', 'one', `${base}/files/report%201.txt`], dir);
    expect([first.status, JSON.parse(first.body)]).toEqual([201, { name: 'report 1.txt' }]);
    const second = await curl(['-T', 'two', `${base}/files/report%201.txt`], dir);
    expect(second.status).toBe(409);
    expect(JSON.parse(second.body).error.code).toBe('EEXIST');
    expect(await namesIn(store, 'new')).toEqual(['report 1.txt']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await readFile(join(store.root, 'new', 'report 1.txt'), 'utf8')).toBe('first version');
  });

  it('PUT /files/NAME?overwrite=true replaces the file (a retried upload succeeds); a bad flag is 400', async () => {
    const { store, base } = await start();
    expect((await fetch(`${base}/files/report`, { method: 'PUT', body: 'first' })).status).toBe(201);
    expect((await fetch(`${base}/files/report?overwrite=false`, { method: 'PUT', body: 'second' })).status).toBe(409);
    const replaced = await fetch(`${base}/files/report?overwrite=true`, { method: 'PUT', body: 'third' });
    expect([replaced.status, await replaced.json()]).toEqual([201, { name: 'report' }]);
    expect(await readFile(join(store.root, 'new', 'report'), 'utf8')).toBe('third');
    await expectError(
      await fetch(`${base}/files/report?overwrite=maybe`, { method: 'PUT', body: 'fourth' }),
      400,
      'ERR_BAD_REQUEST',
    );
    expect(await readFile(join(store.root, 'new', 'report'), 'utf8')).toBe('third');
    expect(await namesIn(store, 'new')).toEqual(['report']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('takes a chunked body of unknown length from a pipe (curl -T -)', async () => {
    const { store, base } = await start();
    const data = randomBytes(500_000);
    const src = join(await tempDir(), 'src');
    await writeFile(src, data);
    const { stdout, code } = await bash(`cat ${JSON.stringify(src)} | curl -sS -f -T - ${base}/files/piped`);
    expect(code).toBe(0);
    expect(JSON.parse(stdout.toString())).toEqual({ name: 'piped' });
    expect((await readFile(join(store.root, 'new', 'piped'))).equals(data)).toBe(true);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('rejects bad names with 400 before reading the body', async () => {
    const { store, base } = await start();
    for (const path of ['.hidden', 'a%2Fb', '%2E%2E%2Fescape', 'bad%zzname', '']) {
      const response = await fetch(`${base}/files/${path}`, { method: 'PUT', body: 'x' });
      await expectError(response, 400, path === 'bad%zzname' ? 'ERR_BAD_REQUEST' : 'ERR_INVALID_NAME');
    }
    // fetch would resolve these dot segments itself; curl --path-as-is sends them as written
    for (const path of ['..', '%2E%2E', '%2e.']) {
      const { status, body } = await curl(['--path-as-is', '-X', 'PUT', '--data-binary', 'x', `${base}/files/${path}`]);
      expect([status, JSON.parse(body).error.code]).toEqual([400, 'ERR_INVALID_NAME']);
    }
    const traversal = await curl(['--path-as-is', `${base}/files/new/../../../etc/passwd`]);
    expect(traversal.status).toBe(404);
    expect(JSON.parse(traversal.body).error.code).toBe('ERR_NOT_FOUND');
    await expectEmpty(store);
  });
});

describe('aborted, oversize and failed uploads leave nothing behind', () => {
  it('a client that sends half the body and disconnects', async () => {
    const { store, port, base } = await start();
    const socket = connect(port, '127.0.0.1');
    socket.write(`PUT /files/half HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 200000\r\n\r\n`);
    socket.write(randomBytes(100_000));
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(1), { timeout: 10_000 });
    socket.destroy();
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toEqual([]), { timeout: 10_000 });
    expect(await namesIn(store, 'new')).toEqual([]);
    expect((await fetch(`${base}/files/half`, { method: 'PUT', body: 'whole' })).status).toBe(201);
  });

  it('a curl upload killed mid-body', async () => {
    const { store, base } = await start();
    const child = spawn('curl', ['-sS', '-T', '-', `${base}/files/killed`], { stdio: ['pipe', 'ignore', 'ignore'] });
    const done = completion(child);
    child.stdin.on('error', () => {});
    child.stdin.write(randomBytes(256 * 1024));
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(1), { timeout: 10_000 });
    child.kill('SIGKILL');
    await done;
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toEqual([]), { timeout: 10_000 });
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('a Content-Length over --max-bytes: 413 up front, without 100 Continue (curl -T)', async () => {
    const { store, base } = await start({ maxBytes: 50_000 });
    const dir = await tempDir();
    await writeFile(join(dir, 'big'), randomBytes(50_001));
    const result = await completion(spawn('curl', ['-sS', '-v', '-T', 'big', `${base}/files/big`], { cwd: dir }));
    expect(result.stderr).toContain('Expect: 100-continue');
    expect(result.stderr).not.toContain('HTTP/1.1 100 Continue');
    expect(result.stderr).toContain('HTTP/1.1 413');
    expect(JSON.parse(result.stdout.toString()).error.code).toBe('ERR_BODY_TOO_LARGE');
    await expectEmpty(store);
  });

  it('a Content-Length over the limit without Expect: 413, the body is drained so the client reads the answer', async () => {
    const { store, port } = await start({ maxBytes: 1000 });
    const body = Buffer.alloc(300_000, 'a');
    const answer = raw(
      port,
      Buffer.concat([
        Buffer.from(`PUT /files/big HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${body.length}\r\n\r\n`),
        body,
      ]),
    );
    expect(await answer).toMatch(/^HTTP\/1\.1 413 .*\r\n[\s\S]*"ERR_BODY_TOO_LARGE"/);
    await expectEmpty(store);
  });

  it('a chunked body that grows past the limit: 413 while streaming, the partial tmp/ file removed', async () => {
    const { store, base } = await start({ maxBytes: 100_000 });
    let sent = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (sent >= 400_000) return controller.close();
        sent += 16_384;
        controller.enqueue(randomBytes(16_384));
      },
    });
    const response = await fetch(`${base}/files/growing`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
    await expectError(response, 413, 'ERR_BODY_TOO_LARGE');
    await expectEmpty(store);
    const fine = await fetch(`${base}/files/small`, { method: 'PUT', body: randomBytes(100_000) });
    expect(fine.status).toBe(201);
  });

  it('a client that is too slow with its headers: 408 and the connection closed', async () => {
    const { store, port } = await start({ headersTimeout: 300 });
    const answer = await raw(port, 'PUT /files/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    await expectEmpty(store);
  });
});

// A real full disk: a 256 kB tmpfs mounted in a user+mount namespace that only the child sees.
const canUnshare = spawnSync('unshare', ['-rm', 'true']).status === 0;
describe('a full disk', () => {
  if (!canUnshare) {
    it.skip('answers 507 and leaves nothing behind (skipped: `unshare -rm` is not permitted here, so no private tmpfs can be mounted)', () => {});
    return;
  }
  it('answers 507 ENOSPC and leaves nothing in tmp/ or new/', async () => {
    const dir = join(await tempDir(), 'small');
    const script =
      'mkdir -p "$1" && mount -t tmpfs -o size=256k tmpfs "$1" && exec "$2" "$3" serve "$1" --port 0 --durability none';
    const server = await serveChild('unshare', ['-rm', 'sh', '-c', script, 'sh', dir, process.execPath, CLI]);
    try {
      const base = server.url.slice(0, -1);
      const response = await fetch(`${base}/files/huge`, { method: 'PUT', body: randomBytes(1024 * 1024) });
      await expectError(response, 507, 'ENOSPC');
      for (const area of ['tmp', 'new']) expect(await (await fetch(`${base}/files?area=${area}`)).json()).toEqual([]);
      expect((await fetch(`${base}/files/small`, { method: 'PUT', body: 'fits' })).status).toBe(201);
    } finally {
      const { code, stderr } = await server.stop();
      expect(code).toBe(0);
      expect(stderr).toMatch(/^maildir-filestore: ENOSPC: /m);
    }
  });
});

describe('token', () => {
  it('requires Authorization: Bearer TOKEN on every request, else 401', async () => {
    const { store, base } = await start({ token: 'right-token' });
    const missing = await fetch(`${base}/files`, { method: 'POST', body: 'x' });
    await expectError(missing, 401, 'ERR_UNAUTHORIZED');
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer /);
    await expectError(
      await fetch(`${base}/files?area=new`, { headers: { authorization: 'Bearer wrong-token' } }),
      401,
      'ERR_UNAUTHORIZED',
    );
    await expectError(
      await fetch(`${base}/nowhere`, { headers: { authorization: 'Bearer right-token-and-more' } }),
      401,
      'ERR_UNAUTHORIZED',
    );

    const dir = await tempDir();
    await writeFile(join(dir, 'f'), randomBytes(10_000));
    const wrong = await curl(['-H', 'Authorization: Bearer nope', '-T', 'f', `${base}/files/f`], dir);
    expect(wrong.status).toBe(401);
    await expectEmpty(store);

    const right = await curl(['-H', 'Authorization: Bearer right-token', '-T', 'f', `${base}/files/f`], dir);
    expect(right.status).toBe(201);
    const lower = await fetch(`${base}/files?area=new`, { headers: { authorization: 'bearer right-token' } });
    expect(await lower.json()).toEqual(['f']);
  });
});

describe('reading, listing, removing, claiming', () => {
  it('GET /files?area= streams a JSON array of every name; default new; bad area 400', async () => {
    const { store, base } = await start();
    const names = Array.from({ length: 2000 }, (_, i) => `n${i}\n"quoted"`);
    for (let i = 0; i < names.length; i += 500)
      await Promise.all(names.slice(i, i + 500).map((name) => writeFile(join(store.root, 'new', name), '')));
    await writeFile(join(store.root, 'cur', 'claimed'), '');
    const all = await fetch(`${base}/files`);
    expect(all.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(all.headers.get('content-length')).toBeNull();
    expect(((await all.json()) as string[]).sort()).toEqual(names.sort());
    expect(await (await fetch(`${base}/files?area=cur`)).json()).toEqual(['claimed']);
    expect(await (await fetch(`${base}/files?area=tmp`)).json()).toEqual([]);
    await expectError(await fetch(`${base}/files?area=old`), 400, 'ERR_INVALID_AREA');
  });

  it('GET /files/AREA/NAME streams the file with Content-Length; HEAD has no body; missing 404, bad area 400', async () => {
    const { store, base } = await start();
    const data = randomBytes(300_000);
    await writeFile(join(store.root, 'new', 'a b'), data);
    const response = await fetch(`${base}/files/new/a%20b`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-length')).toBe(String(data.length));
    expect(Buffer.from(await response.arrayBuffer()).equals(data)).toBe(true);
    const head = await fetch(`${base}/files/new/a%20b`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length'), (await head.arrayBuffer()).byteLength]).toEqual([
      200,
      String(data.length),
      0,
    ]);
    await expectError(await fetch(`${base}/files/cur/a%20b`), 404, 'ENOENT');
    await expectError(await fetch(`${base}/files/old/a%20b`), 400, 'ERR_INVALID_AREA');
    const dots = await curl(['--path-as-is', `${base}/files/new/..`]);
    expect([dots.status, JSON.parse(dots.body).error.code]).toEqual([400, 'ERR_INVALID_NAME']);
  });

  it('DELETE /files/AREA/NAME: 204, then 404', async () => {
    const { store, base } = await start();
    await writeFile(join(store.root, 'cur', 'done'), '');
    expect((await fetch(`${base}/files/cur/done`, { method: 'DELETE' })).status).toBe(204);
    expect(await namesIn(store, 'cur')).toEqual([]);
    await expectError(await fetch(`${base}/files/cur/done`, { method: 'DELETE' }), 404, 'ENOENT');
  });

  it('POST /files/NAME/claim: exactly one of many concurrent claims wins (200), the others get 409', async () => {
    const { store, base } = await start();
    await writeFile(join(store.root, 'new', 'job'), 'work');
    const responses = await Promise.all(
      Array.from({ length: 8 }, () => fetch(`${base}/files/job/claim`, { method: 'POST' })),
    );
    const statuses = responses.map((r) => r.status).sort();
    expect(statuses).toEqual([200, 409, 409, 409, 409, 409, 409, 409]);
    const won = responses.find((r) => r.status === 200) as Response;
    expect(await won.json()).toEqual({ name: 'job' });
    expect(won.headers.get('location')).toBe('/files/cur/job');
    for (const lost of responses.filter((r) => r.status === 409))
      expect(((await lost.json()) as { error: { code: string } }).error.code).toBe('ERR_CLAIM_LOST');
    expect(await namesIn(store, 'cur')).toEqual(['job']);
  });

  it('answers 404 for an unknown path and 405 with Allow for a wrong method', async () => {
    const { base } = await start();
    await expectError(await fetch(`${base}/nowhere`), 404, 'ERR_NOT_FOUND');
    await expectError(await fetch(`${base}/files/new/x/y/z`), 404, 'ERR_NOT_FOUND');
    const wrong = await fetch(`${base}/files/new/x`, { method: 'PUT', body: 'x' });
    await expectError(wrong, 405, 'ERR_METHOD_NOT_ALLOWED');
    expect(wrong.headers.get('allow')).toBe('GET, HEAD, DELETE');
  });
});

it('runs the README HTTP example against `serve`', async () => {
  const cwd = await tempDir();
  await writeFile(join(cwd, 'report.pdf'), randomBytes(20_000));
  const server = await serveChild(process.execPath, [CLI, 'serve', 'data', '--port', '0', '--durability', 'none'], {
    cwd,
  });
  try {
    const block = (await readmeBlock('readme-http')).replaceAll('localhost:8080', `localhost:${server.port}`);
    // every curl fails the script on an HTTP error
    const script = `set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; }\n${block}`;
    const { code, stdout, stderr } = await bash(script, { cwd });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const [put, post, list, claim, exported, end] = stdout.toString().split('\n');
    expect(JSON.parse(put as string)).toEqual({ name: 'report.pdf' });
    const generated = JSON.parse(post as string).name as string;
    expect((JSON.parse(list as string) as string[]).sort()).toEqual(['report.pdf', generated].sort());
    expect(JSON.parse(claim as string)).toEqual({ name: 'report.pdf' });
    expect([exported, end]).toEqual([generated, '']);
    expect(await readFile(join(cwd, 'copy.pdf'))).toEqual(await readFile(join(cwd, 'report.pdf')));
    const store = new FileStore(join(cwd, 'data'));
    expect([await namesIn(store, 'tmp'), await namesIn(store, 'new'), await namesIn(store, 'cur')]).toEqual([
      [],
      [generated],
      [],
    ]);
  } finally {
    await server.stop();
  }
});
