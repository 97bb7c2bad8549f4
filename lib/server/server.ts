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
import {
  STATUS_CODES,
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import type { FileStore } from '../store.js';
import type { RequestLogEntry } from './access-log.js';
import { AreaStats } from './area-stats.js';
import { answerEarly, continued } from './body.js';
import { capConnections, defaultMaxConnections } from './connection-cap.js';
import { filesRoutes } from './files-routes.js';
import { HttpError, describeError } from './http-error.js';
import { ServerMetrics } from './metrics.js';
import { opsRoutes } from './ops-routes.js';
import { checkOrigin, originPolicy, preflightHeaders } from './origin-guard.js';
import { Router, type Route } from './router.js';
import { requeueRoutes } from './requeue-routes.js';
import { tarRoutes } from './tar-routes.js';
import { assertOptionKeys, type OptionKeys } from '../options.js';

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
   * Most connections open at once; more are answered `503` with
   * `Retry-After` and closed, so that sockets never take the descriptors
   * the store's files need.
   * @default half of what the file-descriptor limit leaves after 64 (480 at `ulimit -n 1024`); 1000 where the limit is unknown
   */
  maxConnections?: number;
  /**
   * Milliseconds a count of the areas (for `/metrics`, `/stats` and the
   * page) is reused before the directories are walked again.
   * @default 2000
   */
  statsInterval?: number;
  /**
   * Called once per request when its answer is over (or the connection
   * closed), for an access log; see `accessLine` for a formatter.
   * @default undefined
   */
  onRequest?: (entry: RequestLogEntry) => void;
  /**
   * Called with each error answered with a 5xx status (a full disk, a failed
   * fsync, a bug), for logging. Client errors (4xx) are not reported.
   * @default undefined
   */
  onError?: (err: unknown, req: IncomingMessage) => void;
}

const DEFAULT_MAX_BYTES = 1024 * 1024 * 1024;
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS']);

/** Every key of {@link ServerOptions}: any other is refused with `ERR_INVALID_OPTION`. */
const SERVER_KEYS = {
  maxBytes: true,
  token: true,
  allowedHosts: true,
  allowedOrigins: true,
  headersTimeout: true,
  requestTimeout: true,
  idleTimeout: true,
  keepAliveTimeout: true,
  maxConnections: true,
  statsInterval: true,
  onRequest: true,
  onError: true,
} satisfies OptionKeys<ServerOptions>;

/**
 * An `http.Server` (not yet listening) that serves `store`:
 * `POST /files`, `PUT /files/NAME`, `GET /files?area=AREA`,
 * `GET|HEAD|DELETE /files/AREA/NAME`, `POST /files/NAME/claim`,
 * `GET /export/AREA.tar`, `POST /import?area=AREA`, the page `GET /`,
 * `GET /stats`, `GET /metrics` and `GET /healthz`.
 * Call `listen()` on it; it binds wherever you say, so pass `127.0.0.1`
 * unless you mean to expose the store.
 */
export function createServer(store: FileStore, options: ServerOptions = {}): Server {
  assertOptionKeys(options, SERVER_KEYS, 'createServer()');
  const {
    maxBytes = DEFAULT_MAX_BYTES,
    token,
    headersTimeout = 20_000,
    requestTimeout = 3_600_000,
    idleTimeout = 60_000,
    keepAliveTimeout = 5_000,
    maxConnections = defaultMaxConnections(),
    statsInterval = 2_000,
    onError,
    onRequest,
  } = options;
  const policy = originPolicy(options.allowedHosts, options.allowedOrigins);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
    throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1)
    throw new RangeError(`maxConnections must be a positive integer, got ${maxConnections}`);
  if (token !== undefined) assertToken(token);
  const expected = token === undefined ? null : hash(`Bearer ${token}`);
  const routes: Route[] = [...filesRoutes, ...tarRoutes, ...requeueRoutes, ...opsRoutes];
  const router = new Router(routes);
  const stats = new AreaStats(store.root, statsInterval);
  let openConnections = (): number => 0;
  const metrics = new ServerMetrics(stats, () => openConnections());

  const handle = (req: IncomingMessage, res: ServerResponse, expectsContinue: boolean): void => {
    const record = track(req, res, (entry, route) => {
      metrics.observe(
        KNOWN_METHODS.has(entry.method) ? entry.method : 'other',
        route,
        entry.status,
        entry.durationMs / 1000,
      );
      onRequest?.(entry);
    });
    dispatch(req, res, expectsContinue, record).catch((err: unknown) => fail(req, res, err, expectsContinue));
  };

  const dispatch = async (
    req: IncomingMessage,
    res: ServerResponse,
    expectsContinue: boolean,
    record: { route: string },
  ): Promise<void> => {
    const cors = checkOrigin(req, policy);
    for (const [key, value] of Object.entries(cors)) if (value !== undefined) res.setHeader(key, value);
    if (req.method === 'OPTIONS' && cors['access-control-allow-origin'] !== undefined) {
      res.writeHead(204, preflightHeaders(req)).end();
      return;
    }
    const url = req.url ?? '/';
    const queryAt = url.indexOf('?');
    const path = queryAt === -1 ? url : url.slice(0, queryAt);
    const query = new URLSearchParams(queryAt === -1 ? '' : url.slice(queryAt + 1));
    const method = req.method ?? 'GET';
    const found = matchOrNull(router, method, path);
    if (found !== null) record.route = found.route.path;
    if (expected !== null && found?.route.public !== true && !authorized(req, expected)) {
      throw new HttpError(401, 'ERR_UNAUTHORIZED', 'missing or wrong Authorization: Bearer token');
    }
    const { route, params } = found ?? router.match(method, path);
    if (req.httpVersion === '1.0' && hasBodyMethod(method) && !hasBody(req)) {
      throw new HttpError(411, 'ERR_LENGTH_REQUIRED', 'an HTTP/1.0 upload needs a Content-Length');
    }
    await route.handler({ store, req, res, params, query, maxBytes, expectsContinue, metrics, stats });
  };

  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown, expectsContinue: boolean): void => {
    if (res.headersSent || res.destroyed) {
      res.destroy();
      return;
    }
    const { status, code, message, committed } = describeError(err, store.root);
    metrics.failed(code, status);
    if (status >= 500) onError?.(err, req);
    const headers: Record<string, string> = {};
    if (status === 401) headers['www-authenticate'] = 'Bearer realm="maildir-filestore"';
    if (status === 503) headers['retry-after'] = '1';
    const allow = (err as { allow?: unknown }).allow;
    if (typeof allow === 'string') headers.allow = allow;
    const body = { error: committed === undefined ? { code, message } : { code, message, committed } };
    answerEarly(req, res, status, body, headers, expectsContinue && !continued(res));
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
  server.on('clientError', clientError);
  server.setTimeout(idleTimeout);
  openConnections = capConnections(server, maxConnections, () => metrics.refusedConnection());
  return server;
}

function matchOrNull(router: Router, method: string, path: string): ReturnType<Router['match']> | null {
  try {
    return router.match(method, path);
  } catch {
    return null;
  }
}

function hasBodyMethod(method: string): boolean {
  return method === 'POST' || method === 'PUT';
}

function hasBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/** The answer under way on each connection. */
const inFlight = new WeakMap<Socket, { req: IncomingMessage; res: ServerResponse }>();
/** Bytes read and written on each connection up to the end of its last request. */
const counted = new WeakMap<Socket, [number, number]>();

/**
 * Calls `done` once the answer is over (finished or cut), with the
 * access-log entry and the route pattern (`none` until a route matched).
 */
function track(
  req: IncomingMessage,
  res: ServerResponse,
  done: (entry: RequestLogEntry, route: string) => void,
): { route: string } {
  const record = { route: 'none' };
  const time = new Date();
  const started = process.hrtime.bigint();
  const { socket } = req;
  inFlight.set(socket, { req, res });
  res.once('close', () => {
    if (inFlight.get(socket)?.res === res) inFlight.delete(socket);
    // counted from the end of the connection's previous request: by the time a request
    // is seen, its headers (and often its whole body) have been read already
    const [readBefore, writtenBefore] = counted.get(socket) ?? [0, 0];
    counted.set(socket, [socket.bytesRead, socket.bytesWritten]);
    const entry: RequestLogEntry = {
      time,
      method: req.method ?? '',
      path: req.url ?? '',
      status: res.headersSent ? res.statusCode : 0,
      bytesIn: socket.bytesRead - readBefore,
      bytesOut: socket.bytesWritten - writtenBefore,
      durationMs: Number(process.hrtime.bigint() - started) / 1e6,
      remote: socket.remoteAddress ?? '',
      aborted: !res.writableFinished,
    };
    done(entry, record.route);
  });
  return record;
}

/**
 * Errors node:http meets before a request reaches a handler (a malformed
 * request, headers too slow or too large): answered in JSON like every
 * other error, then the connection is closed.
 */
function clientError(err: NodeJS.ErrnoException, socket: Socket): void {
  // a request cut in its body (its handler sees the abort) or a connection gone: nothing to answer
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight.get(socket)?.req.complete === false) {
    socket.destroy();
    return;
  }
  const answering = inFlight.get(socket);
  if (answering?.req.complete === true) {
    // garbage after a whole request (an HTTP/1.0 body without a length): that request is answered, then the connection ends
    answering.res.once('close', () => {
      socket.end();
      socket.setTimeout(1_000, () => socket.destroy());
    });
    return;
  }
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'ERR_REQUEST_TIMEOUT', 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'ERR_BAD_REQUEST', 'the request headers are too large']
        : [400, 'ERR_BAD_REQUEST', 'malformed HTTP request'];
  const text = `${JSON.stringify({ error: { code, message } })}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
  socket.setTimeout(1_000, () => socket.destroy());
  socket.once('end', () => socket.destroy());
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
