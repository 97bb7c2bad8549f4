/** The `/files` endpoints: upload, list, read, remove and claim. */
import { pipeline } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { hasEscapedBytes, nameToBytes, type Area } from '../names.js';
import { openEntry } from '../safe-open.js';
import { requestBody } from './body.js';
import { formUpload, isFormBody } from './form-upload.js';
import { HttpError, sendJson } from './http-error.js';
import { writeOut } from '../write-out.js';
import { booleanParam, type RequestContext, type Route } from './router.js';

const LIST_BATCH = 256;

/** The routes under `/files`. */
export const filesRoutes: readonly Route[] = [
  {
    method: 'POST',
    path: '/files',
    handler: (ctx) => (isFormBody(ctx.req.headers['content-type']) ? formUpload(ctx) : upload(ctx, undefined)),
  },
  { method: 'PUT', path: '/files/:name', handler: (ctx) => upload(ctx, ctx.params.name) },
  { method: 'GET', path: '/files', handler: list },
  { method: 'GET', path: '/files/:area/:name', handler: (ctx) => read(ctx, true) },
  { method: 'HEAD', path: '/files/:area/:name', handler: (ctx) => read(ctx, false) },
  { method: 'DELETE', path: '/files/:area/:name', handler: remove },
  { method: 'POST', path: '/files/:name/claim', handler: claim },
];

/** The path of a file's endpoint: the name's bytes percent-encoded (an escaped byte as itself, `%E9`). */
export function fileLocation(area: Area, name: string): string {
  if (!hasEscapedBytes(name)) return `/files/${area}/${encodeURIComponent(name)}`;
  const bytes = nameToBytes(name);
  let url = `/files/${area}/`;
  for (const byte of bytes)
    url += UNRESERVED.test(String.fromCharCode(byte))
      ? String.fromCharCode(byte)
      : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  return url;
}

/** The characters a URL segment holds as they are (RFC 3986's unreserved ones). */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

async function upload(ctx: RequestContext, name: string | undefined): Promise<void> {
  const { store, res, query } = ctx;
  if (name !== undefined) store.path(name, 'new');
  // generated names never collide; a chosen one replaces a file only when asked to
  const overwrite = name !== undefined && booleanParam(query, 'overwrite');
  const body = requestBody(ctx);
  const writer = store.create(name, { overwrite });
  try {
    await pipeline(body, writer);
  } catch (err) {
    await closed(writer);
    throw err;
  }
  ctx.metrics.committed();
  sendJson(res, 201, { name: writer.name }, { location: fileLocation('new', writer.name) });
}

async function list({ store, req, res, query }: RequestContext): Promise<void> {
  const entries = store.list((query.get('area') ?? 'new') as Area);
  try {
    let next = await entries.next();
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' });
    if (req.method === 'HEAD') return void res.end();
    let chunk = '[';
    for (let count = 0; !next.done; next = await entries.next()) {
      chunk += `${count === 0 ? '' : ','}${JSON.stringify(next.value.name)}`;
      if (++count % LIST_BATCH === 0) {
        await writeOut(res, chunk);
        chunk = '';
      }
    }
    res.end(`${chunk}]\n`);
  } finally {
    await entries.return?.();
  }
}

async function read({ store, res, params }: RequestContext, withBody: boolean): Promise<void> {
  // a symlink, FIFO, device node or directory: 422 ERR_UNSAFE_ENTRY, nothing read
  const { handle, stats } = await openEntry(store.path(params.name as string, params.area as Area));
  try {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': stats.size,
      // a stored HTML file must not run as a page of this origin (where the page keeps its token)
      'x-content-type-options': 'nosniff',
      'content-security-policy': 'sandbox',
    });
    if (!withBody) return void res.end();
    await pipeline(handle.createReadStream({ autoClose: false }), res);
  } finally {
    await handle.close();
  }
}

async function remove({ store, res, params }: RequestContext): Promise<void> {
  await store.remove(params.name as string, params.area as Area);
  res.writeHead(204).end();
}

async function claim({ store, res, params, metrics }: RequestContext): Promise<void> {
  const name = params.name as string;
  const won = await store.claim(name);
  metrics.claimed(won);
  if (!won)
    throw new HttpError(
      409,
      'ERR_CLAIM_LOST',
      'the file is not in new/: another client claimed it, or it never was there',
    );
  sendJson(res, 200, { name }, { location: fileLocation('cur', name) });
}

function closed(stream: Writable): Promise<void> {
  return new Promise((resolve) => (stream.closed ? resolve() : stream.once('close', () => resolve())));
}
