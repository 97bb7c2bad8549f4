/**
 * Request bodies with a size limit, and what to do with the rest of a body
 * that was refused.
 *
 * The body is piped (with error forwarding) into a counting Transform rather
 * than handed to `pipeline` itself: `pipeline` destroys every stream on an
 * error, and destroying the request destroys the socket, so the client
 * would see a reset instead of the 413 or 507 it should read.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import { HttpError, writeJsonHead } from './http-error.js';
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
  if (ctx.expectsContinue) {
    res.writeContinue();
    sentContinue.add(res);
  }
  const limiter = new ByteLimit(maxBytes);
  req.on('error', (err) => limiter.destroy(err));
  req.on('close', () => {
    if (!req.complete)
      limiter.destroy(Object.assign(new Error('the client aborted the request'), { code: 'ECONNRESET' }));
  });
  req.pipe(limiter);
  return limiter;
}

const sentContinue = new WeakSet<ServerResponse>();

/** Was `100 Continue` sent on this response (so the client is sending its body)? */
export function continued(res: ServerResponse): boolean {
  return sentContinue.has(res);
}

/** How long a refused body is read before the connection is cut. */
const DISCARD_MS = 10_000;

/**
 * Sends a JSON answer to a request whose body may still be coming (a
 * `413`, a `401` or `400` before the body was read), so that the client
 * reads it instead of a reset.
 *
 * Closing a socket with unread data makes the kernel send RST, and a
 * client still writing its body then fails with EPIPE before it reads the
 * answer: Node's own client did so for 5-15 of 20 such requests with
 * `Connection: close`. So the answer is written whole but not ended: the
 * rest of the body is read and dropped (up to 16 MiB and 10 s), and only
 * then is the response ended and the connection closed (or kept alive).
 * A client that waits for `100 Continue` (`waiting`) sends no body: its
 * answer ends at once.
 */
export function answerEarly(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string>,
  waiting: boolean,
): void {
  const text = writeJsonHead(res, status, body, headers);
  if (waiting || req.complete || req.destroyed) {
    res.end(text);
    return;
  }
  res.write(text);
  let left = DISCARD_LIMIT;
  const finish = (): void => {
    clearTimeout(timer);
    if (!res.writableEnded) res.end();
  };
  const cut = (): void => {
    finish();
    req.socket.destroy();
  };
  const timer = setTimeout(cut, DISCARD_MS);
  timer.unref();
  req.on('data', (chunk: Buffer) => {
    left -= chunk.length;
    if (left < 0) cut();
  });
  req.on('end', finish);
  req.on('close', finish);
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
