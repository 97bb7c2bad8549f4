/**
 * The HTTP server of `maildir-filestore serve`, on `node:http` alone.
 *
 * Every request goes through the same steps: authorize (when a token is
 * set), match a route, run its handler, and turn whatever it throws into a
 * JSON error `{"error": {"code", "message"}}` with the status of its code.
 * A request body that was refused is read and dropped (up to a limit) so
 * the client sees the answer. New endpoints are new entries in the route
 * table of {@link createServer}.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { FileStore } from '../store.js';
import { discardBody } from './body.js';
import { filesRoutes } from './files-routes.js';
import { HttpError, describeError, sendJson } from './http-error.js';
import { checkOrigin, originPolicy, preflightHeaders } from './origin-guard.js';
import { Router, type Route } from './router.js';
import { requeueRoutes } from './requeue-routes.js';
import { tarRoutes } from './tar-routes.js';

/** Options of {@link createServer}. */
export interface ServerOptions {
  /**
   * The largest request body accepted, in bytes; larger ones are answered
   * `413` and leave nothing in the store.
   * @default 1073741824 (1 GiB)
   */
  maxBytes?: number;
  /**
   * When set, every request must carry `Authorization: Bearer <token>`
   * (compared in constant time), else it is answered `401`.
   * @default undefined (no authorization)
   */
  token?: string;
  /**
   * Host names (of `Host` headers) served besides IP addresses and
   * `localhost`, e.g. the name of a reverse proxy; `['*']` accepts any
   * and gives up the protection against DNS rebinding.
   * @default [] (IP addresses and localhost only)
   */
  allowedHosts?: readonly string[];
  /**
   * Origins (`https://app.example`) whose pages may send cross-origin
   * requests; they get CORS headers and preflight answers. `['*']` allows
   * every origin. Other browser requests from other origins are `403`.
   * @default [] (same origin only)
   */
  allowedOrigins?: readonly string[];
  /**
   * Milliseconds a client has to send the request headers; then `408`.
   * @default 20000
   */
  headersTimeout?: number;
  /**
   * Milliseconds a client has to send the whole request, body included; `0` for no limit.
   * @default 3600000 (1 hour)
   */
  requestTimeout?: number;
  /**
   * Milliseconds a connection may stay silent in the middle of a request before it is cut.
   * @default 60000
   */
  idleTimeout?: number;
  /**
   * Milliseconds an idle keep-alive connection is kept open.
   * @default 5000
   */
  keepAliveTimeout?: number;
  /**
   * Called with each error answered with a 5xx status (a full disk, a failed
   * fsync, a bug), for logging. Client errors (4xx) are not reported.
   * @default undefined
   */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;

/**
 * An `http.Server` (not yet listening) that serves `store`:
 * `POST /files`, `PUT /files/NAME`, `GET /files?area=AREA`,
 * `GET|HEAD|DELETE /files/AREA/NAME`, `POST /files/NAME/claim`,
 * `GET /export/AREA.tar` and `POST /import?area=AREA`.
 * Call `listen()` on it; it binds wherever you say, so pass `127.0.0.1`
 * unless you mean to expose the store.
 */
export function createServer(store: FileStore, options: ServerOptions = {}): Server {
  const {
    maxBytes = DEFAULT_MAX_BYTES,
    token,
    headersTimeout = 20_000,
    requestTimeout = 3_600_000,
    idleTimeout = 60_000,
    keepAliveTimeout = 5_000,
    onError,
  } = options;
  const policy = originPolicy(options.allowedHosts, options.allowedOrigins);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
  if (token !== undefined) assertToken(token);
  const expected = token === undefined ? null : hash(`Bearer ${token}`);
  const routes: Route[] = [...filesRoutes, ...tarRoutes, ...requeueRoutes];
  const router = new Router(routes);

  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    dispatch(req, res, expectsContinue).catch((err: unknown) => fail(req, res, err));
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): Promise<void> => {
    const cors = checkOrigin(req, policy);
    for (const [key, value] of Object.entries(cors)) if (value !== undefined) res.setHeader(key, value);
    if (req.method === 'OPTIONS' && cors['access-control-allow-origin'] !== undefined) {
      res.writeHead(204, preflightHeaders(req)).end();
      return;
    }
    if (expected !== null && !authorized(req, expected)) {
      throw new HttpError(401, 'ERR_UNAUTHORIZED', 'missing or wrong Authorization: Bearer token');
    }
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
    const { route, params } = router.match(req.method ?? 'GET', path);
    await route.handler({ store, req, res, params, query, maxBytes, expectsContinue });
  };

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const { status, code, message, committed } = describeError(err, store.root);
    if (status >= 500) onError?.(err, req);
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="maildir-filestore"';
    const allow = (err as { allow?: unknown }).allow;
    if (typeof allow === 'string') headers.allow = allow;
    sendJson(
      res,
      status,
      { error: committed === undefined ? { code, message } : { code, message, committed } },
      headers,
    );
    discardBody(req);
  };

  const server = createHttpServer(
    {
      headersTimeout,
      requestTimeout,
      keepAliveTimeout,
      connectionsCheckingInterval: Math.max(10, Math.min(1_000, Math.floor(headersTimeout / 4))),
    },
    (req, res) => handle(req, res, false),
  );
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => handle(req, res, true));
  server.setTimeout(idleTimeout);
  return server;
}

/**
 * Throws unless the token is printable ASCII without spaces: a token with
 * surrounding whitespace or other bytes could never match what a client
 * sends in a header, and the server would refuse everyone silently.
 */
export function assertToken(token: unknown): asserts token is string {
  if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token))
    throw new TypeError('the token must be a non-empty string of printable ASCII characters, without spaces');
}

function hash(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function authorized(req: IncomingMessage, expected: Buffer): boolean {
  const given = (req.headers.authorization ?? '').replace(/^bearer +/i, 'Bearer ');
  return timingSafeEqual(hash(given), expected);
}
