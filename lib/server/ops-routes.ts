/**
 * The routes for operators and people: `GET /healthz` (a probe, no token
 * needed), `GET /metrics` (Prometheus), `GET /stats` (the counts as JSON,
 * for the page) and `GET /` (the page itself, no token needed: it holds no
 * data, and asks for the token to fetch any).
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, stat, statfs, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AREAS } from '../names.js';
import { sendJson } from './http-error.js';
import { pageHeaders, pageHtml } from './page.js';
import type { RequestContext, Route } from './router.js';

/** Below this many free bytes the store counts as full. */
const MIN_FREE_BYTES = 64 * 1024;

/** The routes `/`, `/healthz`, `/metrics` and `/stats`. */
export const opsRoutes: readonly Route[] = [
  { method: 'GET', path: '/', public: true, handler: page },
  { method: 'GET', path: '/healthz', public: true, handler: health },
  { method: 'GET', path: '/metrics', handler: metrics },
  { method: 'GET', path: '/stats', handler: statsJson },
];

async function page({ res }: RequestContext): Promise<void> {
  const html = pageHtml();
  res.writeHead(200, { ...pageHeaders(), 'content-length': Buffer.byteLength(html) });
  res.end(html);
}

async function metrics({ res, metrics: serverMetrics }: RequestContext): Promise<void> {
  const text = await serverMetrics.text();
  res.writeHead(200, { 'content-type': serverMetrics.contentType, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function statsJson({ res, stats }: RequestContext): Promise<void> {
  sendJson(res, 200, await stats.get(), { 'cache-control': 'no-store' });
}

/** One failed health check. */
interface Problem {
  readonly check: string;
  readonly code: string;
  readonly message: string;
}

/**
 * `200 {"status": "ok"}` while the store can take files: each area is a
 * directory, a file can be created in `tmp/` (not read-only, not denied),
 * and the file system has space and inodes left. Else `503` with the
 * problems found.
 */
async function health({ store, res }: RequestContext): Promise<void> {
  const problems: Problem[] = [];
  for (const area of AREAS) {
    try {
      if (!(await stat(join(store.root, area))).isDirectory())
        problems.push({ check: `area ${area}`, code: 'ENOTDIR', message: `${area}/ is not a directory` });
    } catch (err) {
      problems.push({ check: `area ${area}`, code: codeOf(err), message: `${area}/ cannot be used` });
    }
  }
  try {
    // a dot-file: listings, claims and exports skip it
    const probe = join(store.root, 'tmp', `.healthz-${process.pid}-${randomBytes(4).toString('hex')}`);
    const handle = await open(probe, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY, 0o600);
    await handle.close();
    await unlink(probe);
  } catch (err) {
    problems.push({ check: 'write', code: codeOf(err), message: 'a file cannot be created in tmp/' });
  }
  try {
    const fs = await statfs(store.root);
    if (fs.bavail * fs.bsize < MIN_FREE_BYTES)
      problems.push({ check: 'space', code: 'ENOSPC', message: 'the file system is full' });
    if (fs.files > 0 && fs.ffree === 0)
      problems.push({ check: 'inodes', code: 'ENOSPC', message: 'the file system has no inodes left' });
  } catch (err) {
    problems.push({ check: 'space', code: codeOf(err), message: 'the file system cannot be queried' });
  }
  const ok = problems.length === 0;
  sendJson(res, ok ? 200 : 503, ok ? { status: 'ok' } : { status: 'unavailable', problems }, {
    'cache-control': 'no-store',
  });
}

function codeOf(err: unknown): string {
  const { code } = err as { code?: unknown };
  return typeof code === 'string' ? code : 'ERR_INTERNAL';
}
