// The server for operators, over real HTTP: /metrics (read back with a Prometheus text-format parser),
// /healthz (a missing area, a full and a read-only file system), the access log and the start and
// shutdown lines of `serve`, HEAD wherever GET works, JSON 408, 411 for HTTP/1.0 uploads without a
// length, early answers that reach Node's client, EACCES as 403, and control characters escaped in logs.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, chown, mkdir, readdir, rmdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import parsePrometheus from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { CLI, raw, serveChild } from './cli-helpers.js';
import { namesIn, tempDir } from './helpers.js';
import { curl, expectError, start } from './server-helpers.js';

const canUnshare = spawnSync('unshare', ['-rm', 'true']).status === 0;

type Families = ReturnType<typeof parsePrometheus>;

let lastText = '';

async function scrape(base: string, headers: Record<string, string> = {}): Promise<Families> {
  const response = await fetch(`${base}/metrics`, { headers });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  lastText = await response.text();
  return parsePrometheus(lastText);
}

function sample(families: Families, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.find((f) => f.name === name);
  const found = family?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  return found?.value === undefined ? undefined : Number(found.value);
}

describe('GET /metrics', () => {
  it('files and bytes per area, commits, claims won and lost, errors by code, request durations', async () => {
    const { base } = await start({ statsInterval: 0 });
    expect((await fetch(`${base}/files/a`, { method: 'PUT', body: '0123456789' })).status).toBe(201);
    expect((await fetch(`${base}/files/b`, { method: 'PUT', body: 'x'.repeat(20) })).status).toBe(201);
    const form = new FormData();
    form.append('f', new Blob(['form']), 'c');
    expect((await fetch(`${base}/files`, { method: 'POST', body: form })).status).toBe(201);
    expect((await fetch(`${base}/files/a/claim`, { method: 'POST' })).status).toBe(200);
    expect((await fetch(`${base}/files/a/claim`, { method: 'POST' })).status).toBe(409);
    expect((await fetch(`${base}/files/new/missing`)).status).toBe(404);
    const families = await scrape(base);
    expect(families.find((f) => f.name === 'maildir_filestore_files')?.type).toBe('GAUGE');
    expect(['tmp', 'new', 'cur'].map((area) => sample(families, 'maildir_filestore_files', { area }))).toEqual([
      0, 2, 1,
    ]);
    expect(['tmp', 'new', 'cur'].map((area) => sample(families, 'maildir_filestore_bytes', { area }))).toEqual([
      0, 24, 10,
    ]);
    expect(sample(families, 'maildir_filestore_commits_total')).toBe(3);
    expect(sample(families, 'maildir_filestore_claims_total')).toBe(1);
    expect(sample(families, 'maildir_filestore_claims_lost_total')).toBe(1);
    expect(sample(families, 'maildir_filestore_errors_total', { code: 'ERR_CLAIM_LOST', status: '409' })).toBe(1);
    expect(sample(families, 'maildir_filestore_errors_total', { code: 'ENOENT', status: '404' })).toBe(1);
    const durations = families.find((f) => f.name === 'maildir_filestore_http_request_duration_seconds');
    expect(durations?.type).toBe('HISTOGRAM');
    // the parser keeps a histogram's buckets but not its labels: the per-route count is read from the text
    expect(durations?.metrics[0]?.buckets?.['+Inf']).toBeDefined();
    expect(lastText).toMatch(
      /^maildir_filestore_http_request_duration_seconds_count\{method="PUT",route="\/files\/:name",status="201"\} 2$/m,
    );
    expect(sample(families, 'process_open_fds')).toBeGreaterThan(0);
    expect(sample(families, 'process_max_fds')).toBeGreaterThan(0);
  });

  it('counts from a cache: a file added behind its back shows only once the interval has passed', async () => {
    const { store, base } = await start({ statsInterval: 400 });
    expect(sample(await scrape(base), 'maildir_filestore_files', { area: 'new' })).toBe(0);
    await writeFile(join(store.root, 'new', 'behind'), 'x');
    expect(sample(await scrape(base), 'maildir_filestore_files', { area: 'new' })).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(sample(await scrape(base), 'maildir_filestore_files', { area: 'new' })).toBe(1);
  });

  it('needs the token, as /stats does; /healthz and the page do not', async () => {
    const { base } = await start({ token: 'sesame' });
    await expectError(await fetch(`${base}/metrics`), 401, 'ERR_UNAUTHORIZED');
    await expectError(await fetch(`${base}/stats`), 401, 'ERR_UNAUTHORIZED');
    await scrape(base, { authorization: 'Bearer sesame' });
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/`)).status).toBe(200);
  });
});

describe('GET /healthz', () => {
  it('200 while the store is usable, 503 naming the problem when an area is missing', async () => {
    const { store, base } = await start();
    const ok = await fetch(`${base}/healthz`);
    expect([ok.status, await ok.json()]).toEqual([200, { status: 'ok' }]);
    await rmdir(join(store.root, 'new'));
    const missing = await fetch(`${base}/healthz`);
    expect(missing.status).toBe(503);
    expect(await missing.json()).toEqual({
      status: 'unavailable',
      problems: [{ check: 'area new', code: 'ENOENT', message: expect.any(String) }],
    });
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  // a tmpfs mounted in a user+mount namespace that only the child sees
  describe.runIf(canUnshare)('on a real file system that is full or read-only', () => {
    it('503 ENOSPC when full, 503 EROFS when read-only', async () => {
      for (const [setup, check, code] of [
        ['dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null || true', 'space', 'ENOSPC'],
        ['mount -o remount,ro "$1"', 'write', 'EROFS'],
      ] as const) {
        const dir = join(await tempDir(), 'small');
        const script = `mkdir -p "$1" && mount -t tmpfs -o size=256k tmpfs "$1" && mkdir "$1/tmp" "$1/new" "$1/cur" && ${setup} && exec "$2" "$3" serve "$1" --port 0 --durability none`;
        const server = await serveChild('unshare', ['-rm', 'sh', '-c', script, 'sh', dir, process.execPath, CLI]);
        try {
          const response = await fetch(`${server.url}healthz`);
          expect(response.status).toBe(503);
          const { problems } = (await response.json()) as { problems: Array<{ check: string; code: string }> };
          expect(problems).toContainEqual(expect.objectContaining({ check, code }));
        } finally {
          await server.stop();
        }
      }
    });
  });
});

describe('the access log, the start and the shutdown lines', () => {
  it('one text line per request (time, client, method, path, status, bytes, duration), a start and a stop line', async () => {
    const dir = await tempDir();
    const server = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', '--durability', 'none']);
    const base = server.url.slice(0, -1);
    expect((await fetch(`${base}/files/report%201.txt`, { method: 'PUT', body: 'twelve bytes' })).status).toBe(201);
    expect((await fetch(`${base}/files/new/nothing`)).status).toBe(404);
    const { code, stderr } = await server.stop();
    expect(code).toBe(0);
    const lines = String(stderr).trimEnd().split('\n');
    expect(lines[0]).toMatch(/^maildir-filestore: serving .* on http:\/\/127\.0\.0\.1:\d+\/$/);
    const log = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z 127\.0\.0\.1 (\S+) (\S+) (\d{3}) in=(\d+) out=(\d+) [\d.]+ms$/;
    const put = log.exec(lines[1] ?? '');
    expect(put?.slice(1, 4)).toEqual(['PUT', '/files/report%201.txt', '201']);
    expect(Number(put?.[4])).toBeGreaterThan(12);
    expect(log.exec(lines[2] ?? '')?.slice(1, 4)).toEqual(['GET', '/files/new/nothing', '404']);
    expect(lines.at(-1)).toMatch(/^maildir-filestore: stopped after [\d.]+ s and 2 requests$/);
    expect(lines).toHaveLength(4);
  });

  it('--log json writes every line as a JSON object; --quiet drops the access lines only', async () => {
    const dir = await tempDir();
    // the start line is JSON, so serveChild (which waits for the text line) cannot be used: read it here
    const child = spawn(process.execPath, [CLI, 'serve', dir, '--port', '0', '--log', 'json'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let seen = '';
    const url = await new Promise<string>((resolve) => {
      child.stderr.on('data', (chunk: Buffer) => {
        seen += chunk.toString();
        const first = seen.split('\n')[0] ?? '';
        if (seen.includes('\n')) resolve((JSON.parse(first) as { url: string }).url);
      });
    });
    expect((await fetch(`${url}files?area=new`)).status).toBe(200);
    const exited = new Promise((resolve) => child.once('close', resolve));
    await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill('SIGTERM');
    await exited;
    const lines = seen
      .trimEnd()
      .split('\n')
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((line) => line.event)).toEqual(['start', 'request', 'stop']);
    expect(lines[0]).toMatchObject({ url, root: expect.any(String), pid: child.pid });
    expect(lines[1]).toMatchObject({ method: 'GET', path: '/files?area=new', status: 200, remote: '127.0.0.1' });
    expect(lines[2]).toMatchObject({ requests: 1 });

    const quiet = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', '--quiet']);
    expect((await fetch(`${quiet.url}files`)).status).toBe(200);
    const { stderr } = await quiet.stop();
    expect(String(stderr)).not.toMatch(/ GET \/files /);
    expect(String(stderr).trimEnd().split('\n')).toHaveLength(2);
  });

  it('escapes ESC, BEL and CR of a name in the error line of a 5xx answer', async () => {
    const dir = await tempDir();
    const name = 'x\x1b]0;owned\x07\rFAKE LINE';
    // a directory under that name in new/: an overwrite renames onto it and fails with EISDIR (a 500, logged)
    await mkdir(join(dir, 'new', name), { recursive: true });
    const server = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', '--durability', 'none']);
    const response = await fetch(`${server.url}files/${encodeURIComponent(name)}?overwrite=true`, {
      method: 'PUT',
      body: 'x',
    });
    expect(response.status).toBe(500);
    const { stderr } = await server.stop();
    const text = String(stderr);
    expect(text).toMatch(/^maildir-filestore: EISDIR: .*x\\u001b\]0;owned\\u0007\\rFAKE LINE/m);
    expect(text).not.toMatch(/[\x07\x1b\r]/);
  });
});

describe('HEAD wherever GET works', () => {
  it('/files, /export/new.tar, /files/AREA/NAME, /, /stats, /metrics, /healthz: the GET status and headers, no body', async () => {
    const { store, base } = await start();
    await store.create('one').end('1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const path of [
      '/files',
      '/files?area=cur',
      '/export/new.tar',
      '/files/new/one',
      '/',
      '/stats',
      '/metrics',
      '/healthz',
    ]) {
      const get = await fetch(`${base}${path}`);
      await get.arrayBuffer();
      const head = await curl(['-I', `${base}${path}`]);
      expect([path, head.status]).toEqual([path, get.status]);
      expect(head.body.toLowerCase()).toContain(`content-type: ${get.headers.get('content-type')}`.toLowerCase());
    }
    const badArea = await curl(['-I', `${base}/export/old.tar`]);
    expect(badArea.status).toBe(400);
  });
});

describe('framing', () => {
  it('a slow client gets a JSON 408', async () => {
    const { port } = await start({ headersTimeout: 300 });
    const answer = await raw(port, 'PUT /files/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toMatch(/content-type: application\/json; charset=utf-8/i);
    expect(JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))).toEqual({
      error: { code: 'ERR_REQUEST_TIMEOUT', message: expect.any(String) },
    });
  });

  it('an HTTP/1.0 upload without Content-Length: 411, nothing stored; with one: 201', async () => {
    const { store, port } = await start();
    const refused = await raw(port, 'PUT /files/old HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\nbody until close');
    expect(refused).toMatch(/^HTTP\/1\.1 411 /);
    expect(JSON.parse(refused.slice(refused.indexOf('\r\n\r\n') + 4)).error.code).toBe('ERR_LENGTH_REQUIRED');
    const post = await raw(port, 'POST /files HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\nbody until close');
    expect(post).toMatch(/^HTTP\/1\.1 411 /);
    expect(await namesIn(store, 'new')).toEqual([]);
    const fine = await raw(port, 'PUT /files/old HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: 4\r\n\r\nbody');
    expect(fine).toMatch(/^HTTP\/1\.1 201 /);
    expect(await namesIn(store, 'new')).toEqual(['old']);
  });

  it("early answers (413, 401, 400) reach Node's client with Connection: close while it is still sending", async () => {
    const { port } = await start({ maxBytes: 1024 * 1024, token: 'sesame' });
    const body = Buffer.alloc(4 * 1024 * 1024, 'b');
    const cases = [
      ['/files/big', 'Bearer sesame', 413],
      ['/files/big', 'Bearer wrong', 401],
      ['/files/.bad', 'Bearer sesame', 400],
    ] as const;
    for (const [path, authorization, status] of cases) {
      const firsts = await Promise.all(
        Array.from(
          { length: 20 },
          () =>
            new Promise<number | string>((resolve) => {
              let first: number | string | null = null;
              const note = (value: number | string): void => {
                first ??= value;
                resolve(first);
              };
              const req = request(
                {
                  host: '127.0.0.1',
                  port,
                  method: 'PUT',
                  path,
                  headers: { connection: 'close', authorization, 'content-length': body.length },
                },
                (res) => {
                  note(res.statusCode ?? 0);
                  res.resume();
                },
              );
              req.on('error', (err: NodeJS.ErrnoException) => note(err.code ?? 'error'));
              // in slices, as a client streaming a file does: it is still writing when the answer comes
              void (async () => {
                for (let at = 0; at < body.length && !req.destroyed; at += 64 * 1024) {
                  if (!req.write(body.subarray(at, at + 64 * 1024))) await new Promise((d) => req.once('drain', d));
                  await new Promise((d) => setTimeout(d, 1));
                }
                req.end();
              })();
            }),
        ),
      );
      expect([path, authorization, firsts]).toEqual([path, authorization, Array(20).fill(status)]);
    }
  });
});

describe('EACCES', () => {
  // files owned by a uid outside a user namespace: its root gets real EACCES on them
  it.runIf(canUnshare)('is answered 403 (a file it may not read, an area it may not write), not 500', async () => {
    const dir = await tempDir();
    for (const area of ['tmp', 'new', 'cur']) await mkdir(join(dir, area));
    await writeFile(join(dir, 'new', 'secret'), 'hidden');
    await chown(join(dir, 'new', 'secret'), 12345, 12345);
    await chmod(join(dir, 'new', 'secret'), 0o600);
    await chown(join(dir, 'new'), 12345, 12345);
    await chmod(join(dir, 'new'), 0o755);
    const server = await serveChild('unshare', [
      '-r',
      process.execPath,
      CLI,
      'serve',
      dir,
      '--port',
      '0',
      '--durability',
      'none',
    ]);
    try {
      await expectError(await fetch(`${server.url}files/new/secret`), 403, 'EACCES');
      await expectError(
        await fetch(`${server.url}files/upload`, { method: 'PUT', body: randomBytes(100) }),
        403,
        'EACCES',
      );
    } finally {
      const { stderr } = await server.stop();
      expect(String(stderr)).not.toMatch(/EACCES/);
    }
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
  });
});
