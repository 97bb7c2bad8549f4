import type { ServerResponse } from 'node:http';

/** Codes of the errors the HTTP server raises itself (besides the library's and the file system's). */
export type HttpErrorCode =
  /** No or a wrong `Authorization: Bearer` token (401). */
  | 'ERR_UNAUTHORIZED'
  /** No route for this path (404). */
  | 'ERR_NOT_FOUND'
  /** The path exists, the method does not (405). */
  | 'ERR_METHOD_NOT_ALLOWED'
  /** The request body is larger than `maxBytes` (413). */
  | 'ERR_BODY_TOO_LARGE'
  /** A malformed request, e.g. a bad percent-encoding or Content-Length (400). */
  | 'ERR_BAD_REQUEST'
  /** `POST /files/NAME/claim` lost: the file is not (or no longer) in new/ (409). */
  | 'ERR_CLAIM_LOST'
  /** The `Host` header names neither an address of the server, `localhost`, nor an allowed host (403): DNS rebinding. */
  | 'ERR_HOST_NOT_ALLOWED'
  /** A browser request from another origin that is not allowed (403). */
  | 'ERR_CROSS_ORIGIN'
  /** A form with more file parts than the server takes at once (413). */
  | 'ERR_TOO_MANY_FILES'
  /** An HTTP/1.0 upload without `Content-Length`, whose end could not be told from a cut connection (411). */
  | 'ERR_LENGTH_REQUIRED'
  /** The client took longer than the headers or request timeout (408). */
  | 'ERR_REQUEST_TIMEOUT';

/** An error with the HTTP status it answers with. */
export class HttpError extends Error {
  /** The HTTP status of the answer. */
  readonly status: number;
  /** The `error.code` of the JSON answer. */
  readonly code: HttpErrorCode;

  constructor(status: number, code: HttpErrorCode, message: string) {
    super(message);
    this.name = 'HttpError';
    this.status = status;
    this.code = code;
  }
}

const STATUS_BY_CODE: Record<string, number> = {
  ERR_INVALID_NAME: 400,
  ERR_INVALID_AREA: 400,
  ERR_INVALID_OPTION: 400,
  ERR_CORRUPT_ARCHIVE: 400,
  ERR_UNSAFE_ENTRY: 422,
  ERR_FILE_CHANGED: 409,
  ENOENT: 404,
  EEXIST: 409,
  EFBIG: 413,
  ENOSPC: 507,
  EDQUOT: 507,
  EACCES: 403,
  EPERM: 403,
  EMFILE: 503,
  ENFILE: 503,
  // another process cleaned tmp/ under the upload: nothing was committed, a retry succeeds
  ERR_TMP_REMOVED: 503,
};

/**
 * The status, code and message an error is answered with, and the names
 * committed before it when it carries them (a failed `importTar`).
 */
export function describeError(
  err: unknown,
  root: string,
): { status: number; code: string; message: string; committed?: string[] } {
  const { code, message, committed } = err as { code?: unknown; message?: unknown; committed?: unknown };
  const text = typeof message === 'string' ? message.split(`${root}/`).join('') : String(err);
  const extra = Array.isArray(committed) ? { committed: committed as string[] } : {};
  if (err instanceof HttpError) return { status: err.status, code: err.code, message: text, ...extra };
  if (typeof code === 'string') return { status: STATUS_BY_CODE[code] ?? 500, code, message: text, ...extra };
  return { status: 500, code: 'ERR_INTERNAL', message: 'internal error' };
}

/** Sends `body` as JSON with `status`. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.end(writeJsonHead(res, status, body, headers));
}

/** Writes the head of a JSON answer and returns its body text, for the caller to send when it is ready. */
export function writeJsonHead(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): string {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  return text;
}
