// Shared by the HTTP specs: a real server on a free port of 127.0.0.1 (closed
// after each test), the JSON error shape, and curl as a client.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { createServer, type ServerOptions } from '../lib/server/index.js';
import { completion } from './cli-helpers.js';
import { tempStore } from './helpers.js';

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

/** A store and a server on it, listening on a free port of 127.0.0.1; `errors` collects what onError reports. */
export async function start(
  options: ServerOptions = {},
): Promise<{ store: FileStore; base: string; port: number; errors: unknown[] }> {
  const store = await tempStore({ durability: 'none' });
  const errors: unknown[] = [];
  const server = createServer(store, { onError: (err) => errors.push(err), ...options });
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return { store, base: `http://127.0.0.1:${port}`, port, errors };
}

/** Checks a JSON error answer: its status, content type and `{"error": {"code", "message"[, "committed"]}}`. */
export async function expectError(
  response: Response,
  status: number,
  code: string,
  committed?: string[],
): Promise<void> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
  const error =
    committed === undefined ? { code, message: expect.any(String) } : { code, message: expect.any(String), committed };
  expect(await response.json()).toEqual({ error });
}

/** Runs curl; resolves to its stdout, the HTTP status it printed last and its exit code. */
export async function curl(
  args: string[],
  cwd?: string,
): Promise<{ status: number; body: string; code: number | null }> {
  const result = await completion(
    spawn('curl', ['-sS', '-o', '-', '-w', '\n%{http_code}', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }),
  );
  const text = result.stdout.toString();
  const cut = text.lastIndexOf('\n');
  return { status: Number(text.slice(cut + 1)), body: text.slice(0, cut), code: result.code };
}

/** One request with Node's own HTTP client (which, unlike fetch, sends any Host or Origin it is given). */
export function nodeRequest(
  port: number,
  options: { method?: string; path?: string; headers?: Record<string, string | number>; body?: string | Buffer } = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: options.method ?? 'GET', path: options.path ?? '/', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}
