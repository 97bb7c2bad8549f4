// DNS rebinding and cross-site requests over real HTTP (curl and Node's client): a web page must not
// be able to drive or read a token-less server on localhost through a visitor's browser.
import { describe, expect, it } from 'vitest';
import { CLI, completion, serveChild } from './cli-helpers.js';
import { namesIn, tempDir } from './helpers.js';
import { curl, nodeRequest, start } from './server-helpers.js';
import { spawn } from 'node:child_process';

describe('Host: DNS rebinding', () => {
  it('a Host that names another site is 403 ERR_HOST_NOT_ALLOWED on every route, the store untouched', async () => {
    const { store, port, base } = await start();
    await store.create('secret').end('data');
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const [method, path] of [
      ['GET', '/export/new.tar'],
      ['GET', '/files?area=new'],
      ['GET', '/files/new/secret'],
      ['POST', '/files/secret/claim'],
      ['POST', '/files'],
    ] as const) {
      const body = method === 'POST' ? 'x' : undefined;
      const answer = await nodeRequest(port, { method, path, headers: { host: `rebind.example:${port}` }, body });
      expect([method, path, answer.status, JSON.parse(answer.body).error.code]).toEqual([
        method,
        path,
        403,
        'ERR_HOST_NOT_ALLOWED',
      ]);
    }
    const viaCurl = await curl(['-H', `Host: rebind.example:${port}`, `${base}/export/new.tar`]);
    expect([viaCurl.status, JSON.parse(viaCurl.body).error.code]).toEqual([403, 'ERR_HOST_NOT_ALLOWED']);
    expect(await namesIn(store, 'new')).toEqual(['secret']);
    expect(await namesIn(store, 'cur')).toEqual([]);
  });

  it('IP literals, localhost and configured names are served; names are compared without port and case', async () => {
    const { port } = await start({ allowedHosts: ['files.example.org'] });
    for (const host of [
      `127.0.0.1:${port}`,
      '127.0.0.1',
      `localhost:${port}`,
      `[::1]:${port}`,
      `10.1.2.3:${port}`,
      `FILES.example.org:${port}`,
      'files.example.org',
    ]) {
      const answer = await nodeRequest(port, { path: '/files', headers: { host } });
      expect([host, answer.status]).toEqual([host, 200]);
    }
    for (const host of ['example.org', 'files.example.org.evil', 'localhost.evil.example', 'a_b', '127.0.0.1@evil']) {
      const answer = await nodeRequest(port, { path: '/files', headers: { host } });
      expect([host, answer.status]).toEqual([host, 403]);
    }
  });

  it("allowedHosts ['*'] accepts any Host", async () => {
    const { port } = await start({ allowedHosts: ['*'] });
    expect((await nodeRequest(port, { path: '/files', headers: { host: 'rebind.example' } })).status).toBe(200);
  });
});

describe('cross-site requests', () => {
  it('simple cross-origin requests (text/plain upload, claim, import) are 403 ERR_CROSS_ORIGIN and change nothing', async () => {
    const { store, port } = await start();
    await store.create('job').end('work');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const host = `127.0.0.1:${port}`;
    const evil = { host, origin: 'http://evil.example', 'content-type': 'text/plain' };
    for (const [method, path] of [
      ['POST', '/files'],
      ['POST', '/files/job/claim'],
      ['POST', '/import?area=cur'],
      ['PUT', '/files/planted'],
      ['DELETE', '/files/new/job'],
    ] as const) {
      const answer = await nodeRequest(port, {
        method,
        path,
        headers: evil,
        body: method === 'DELETE' ? undefined : 'x',
      });
      expect([path, answer.status, JSON.parse(answer.body).error.code]).toEqual([path, 403, 'ERR_CROSS_ORIGIN']);
    }
    // a page on another port of localhost is same-site, not same-origin: refused too
    const sameSite = await nodeRequest(port, {
      method: 'POST',
      path: '/files/job/claim',
      headers: { host, 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors' },
    });
    expect(sameSite.status).toBe(403);
    const nullOrigin = await nodeRequest(port, { method: 'POST', path: '/files', headers: { host, origin: 'null' } });
    expect(nullOrigin.status).toBe(403);
    const readBack = await nodeRequest(port, {
      path: '/files?area=new',
      headers: { host, origin: 'http://evil.example' },
    });
    expect(readBack.status).toBe(403);
    expect(await namesIn(store, 'new')).toEqual(['job']);
    expect(await namesIn(store, 'cur')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('same-origin browser requests, clients without Origin, and followed links are served', async () => {
    const { store, port } = await start();
    const host = `127.0.0.1:${port}`;
    const own = await nodeRequest(port, {
      method: 'POST',
      path: '/files',
      headers: { host, origin: `http://${host}`, 'sec-fetch-site': 'same-origin' },
      body: 'mine',
    });
    expect(own.status).toBe(201);
    const { name } = JSON.parse(own.body) as { name: string };
    const link = await nodeRequest(port, {
      path: `/files/new/${name}`,
      headers: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    });
    expect([link.status, link.body]).toEqual([200, 'mine']);
    const typed = await nodeRequest(port, { path: '/files', headers: { host, 'sec-fetch-site': 'none' } });
    expect(typed.status).toBe(200);
    const linkPost = await nodeRequest(port, {
      method: 'POST',
      path: `/files/${name}/claim`,
      headers: { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate' },
    });
    expect(linkPost.status).toBe(403);
    expect(await namesIn(store, 'new')).toEqual([name]);
  });

  it('an allowed origin gets CORS headers and preflight answers; others do not', async () => {
    const { port } = await start({ allowedOrigins: ['https://app.example'] });
    const host = `127.0.0.1:${port}`;
    const preflight = await nodeRequest(port, {
      method: 'OPTIONS',
      path: '/files/x',
      headers: {
        host,
        origin: 'https://app.example',
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'authorization',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('https://app.example');
    expect(preflight.headers['access-control-allow-methods']).toContain('PUT');
    const put = await nodeRequest(port, {
      method: 'PUT',
      path: '/files/x',
      headers: { host, origin: 'https://app.example' },
      body: 'from the app',
    });
    expect(put.status).toBe(201);
    expect(put.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await nodeRequest(port, {
      method: 'OPTIONS',
      path: '/files/y',
      headers: { host, origin: 'https://other.example', 'access-control-request-method': 'PUT' },
    });
    expect(other.status).toBe(403);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('refuses malformed allowedHosts and allowedOrigins', async () => {
    await expect(start({ allowedHosts: ['a b'] })).rejects.toThrow(TypeError);
    await expect(start({ allowedOrigins: ['app.example'] })).rejects.toThrow(TypeError);
    await expect(start({ allowedOrigins: ['https://app.example/path'] })).rejects.toThrow(TypeError);
  });
});

describe('serve', () => {
  it('warns loudly when it binds a non-loopback address without a token, not with one or on loopback', async () => {
    const dir = await tempDir();
    for (const [args, warned] of [
      [['--host', '0.0.0.0'], true],
      [['--host', '0.0.0.0', '--token', 'sesame'], false],
      [['--host', '127.0.0.1'], false],
    ] as const) {
      const server = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', ...args]);
      const { stderr } = await server.stop();
      expect([args, /WARNING: .*no --token/.test(String(stderr))]).toEqual([args, warned]);
    }
  });

  it('refuses a token with surrounding whitespace or non-ASCII bytes at start (exit 2), from --token and FILESTORE_TOKEN', async () => {
    const dir = await tempDir();
    for (const [args, env] of [
      [['--token', ' sesame'], {}],
      [['--token', 'sesame\n'], {}],
      [['--token', 'sésame'], {}],
      [['--token', ''], {}],
      [[], { FILESTORE_TOKEN: 'sesame ' }],
    ] as const) {
      const result = await completion(
        spawn(process.execPath, [CLI, 'serve', dir, '--port', '0', ...args], {
          env: { ...process.env, ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      expect([args, env, result.code]).toEqual([args, env, 2]);
      expect(result.stderr.toString()).toMatch(/token/);
    }
  });

  it('createServer refuses such a token too', async () => {
    await expect(start({ token: 'sesame ' })).rejects.toThrow(TypeError);
    await expect(start({ token: 'ключ' })).rejects.toThrow(TypeError);
  });
});
