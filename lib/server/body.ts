/**
 * Request bodies with a size limit, and what to do with the rest of a body
 * that was refused.
 *
 * The body is piped (with error forwarding) into a counting Transform rather
 * than handed to `pipeline` itself: `pipeline` destroys every stream on an
 * error, and destroying the request destroys the socket, so the client
 * would see a reset instead of the 413 or 507 it should read.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { HttpError } from './http-error.js';
import type { RequestContext } from './router.js';

/** How much of a refused body is read and thrown away (so the client sees the response) before the connection is cut. */
const DISCARD_LIMIT = 16 * 1024 * 1024;

/**
 * The request body as a Readable that errors with a 413 {@link HttpError}
 * past `ctx.maxBytes` (checked against `Content-Length` before anything is
 * read, and counted as the body streams) and with `ECONNRESET` when the
 * client goes away before the body is complete. Sends `100 Continue` when
 * the client asked for it, so call this only once the request is accepted.
 */
export function requestBody(ctx: RequestContext): Transform {
  const { req, res, maxBytes } = ctx;
  const length = req.headers['content-length'];
  if (length !== undefined && Number(length) > maxBytes) {
    throw new HttpError(
      413,
      'ERR_BODY_TOO_LARGE',
      `the body of ${length} bytes is larger than the limit of ${maxBytes} bytes`,
    );
  }
  if (ctx.expectsContinue) res.writeContinue();
  const limiter = new ByteLimit(maxBytes);
  req.on('error', (err) => limiter.destroy(err));
  req.on('close', () => {
    if (!req.complete)
      limiter.destroy(Object.assign(new Error('the client aborted the request'), { code: 'ECONNRESET' }));
  });
  req.pipe(limiter);
  return limiter;
}

/**
 * Reads and drops what is left of a refused request body, so the client
 * gets to read the response instead of a connection reset; past 16 MiB the
 * connection is cut.
 */
export function discardBody(req: IncomingMessage): void {
  if (req.complete || req.destroyed) return;
  let left = DISCARD_LIMIT;
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) req.socket.destroy();
  });
  req.on('error', () => {});
  req.resume();
}

class ByteLimit extends Transform {
  readonly #max: number;
  #seen = 0;

  constructor(max: number) {
    super();
    this.#max = max;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#max) {
      cb(new HttpError(413, 'ERR_BODY_TOO_LARGE', `the body is larger than the limit of ${this.#max} bytes`));
    } else {
      cb(null, chunk);
    }
  }
}
