/** The tar endpoints: `GET /export/AREA.tar` streams an area, `POST /import?area=AREA` takes an archive. */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStoreError } from '../errors.js';
import type { Area } from '../names.js';
import { requestBody } from './body.js';
import { sendJson } from './http-error.js';
import { booleanParam, type RequestContext, type Route } from './router.js';

/** The routes `/export/AREA.tar` and `/import`. */
export const tarRoutes: readonly Route[] = [
  { method: 'GET', path: '/export/:area.tar', handler: exportArea },
  { method: 'POST', path: '/import', handler: importArchive },
];

/**
 * Streams the area as a tar archive. The status line waits for the
 * archive's first bytes, so a bad area (400) or a missing store (404) is
 * still a JSON answer; a failure after that cuts the connection, and the
 * client sees a truncated archive, never a short one that looks complete.
 */
async function exportArea({ store, req, res, params }: RequestContext): Promise<void> {
  const area = params.area as Area;
  const tar = store.exportTar(area);
  try {
    await firstBytes(tar);
  } catch (err) {
    tar.destroy();
    throw err;
  }
  res.writeHead(200, {
    'content-type': 'application/x-tar',
    'content-disposition': `attachment; filename="${area}.tar"`,
  });
  if (req.method === 'HEAD') {
    tar.destroy();
    return void res.end();
  }
  // a client that goes away rejects this, and pipeline destroys the export, closing its files
  await pipeline(tar, res);
}

/**
 * Commits each file of the tar body to `area` (`new` or `cur`):
 * `200 {"names": [...]}`. Every error answer of this endpoint carries
 * `committed`, the names committed before the failure (they stay), `[]`
 * when it failed before the first commit.
 */
async function importArchive(ctx: RequestContext): Promise<void> {
  const { store, res, query } = ctx;
  try {
    const area = query.get('area') ?? 'new';
    if (area !== 'new' && area !== 'cur') {
      throw new FileStoreError('ERR_INVALID_AREA', `the import area must be new or cur, not ${JSON.stringify(area)}`);
    }
    const overwrite = booleanParam(query, 'overwrite');
    const names = await store.importTar(requestBody(ctx), { area, overwrite });
    ctx.metrics.committed(names.length);
    sendJson(res, 200, { names });
  } catch (err) {
    const { committed } = err as { committed?: unknown };
    if (Array.isArray(committed)) ctx.metrics.committed(committed.length);
    throw Array.isArray(committed) ? err : Object.assign(err as Error, { committed: [] });
  }
}

/** Resolves once the stream has data (or has ended), rejects when it fails first. */
function firstBytes(stream: Readable): Promise<void> {
  return new Promise((resolve, reject) => {
    const settle = (err?: Error): void => {
      stream.off('readable', settle);
      stream.off('error', settle);
      if (err) reject(err);
      else resolve();
    };
    stream.on('readable', settle);
    stream.on('error', settle);
  });
}
