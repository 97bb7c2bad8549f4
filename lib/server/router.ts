/**
 * A tiny router: routes are `METHOD /literal/:param` patterns matched on the
 * raw, still percent-encoded path segments, so an encoded `/` or `..` can
 * only ever arrive inside a parameter, where the store rejects it as a bad
 * name. A parameter may carry a literal suffix (`/export/:area.tar`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FileStore } from '../store.js';
import type { AreaStats } from './area-stats.js';
import { nameFromBytes } from '../names.js';
import { HttpError } from './http-error.js';
import type { ServerMetrics } from './metrics.js';

/** What a route handler gets. */
export interface RequestContext {
  readonly store: FileStore;
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The decoded path parameters, by name. */
  readonly params: Record<string, string>;
  readonly query: URLSearchParams;
  /** The largest request body accepted, in bytes. */
  readonly maxBytes: number;
  /** The client sent `Expect: 100-continue` and waits for `100 Continue` before the body. */
  readonly expectsContinue: boolean;
  /** This server's counters. */
  readonly metrics: ServerMetrics;
  /** The cached count of the store's areas. */
  readonly stats: AreaStats;
}

/**
 * The values of a query parameter that carries file names, each decoded as
 * a path segment is ({@link decode}: `%E9` alone is the escaped byte U+DCE9),
 * `+` as a space. `URLSearchParams` would turn such a byte into U+FFFD.
 */
export function nameParams(url: string | undefined, key: string): string[] {
  const queryAt = url?.indexOf('?') ?? -1;
  if (url === undefined || queryAt === -1) return [];
  const values: string[] = [];
  for (const pair of url.slice(queryAt + 1).split('&')) {
    const equals = pair.indexOf('=');
    const name = equals === -1 ? pair : pair.slice(0, equals);
    if (decode(name.replaceAll('+', ' ')) !== key) continue;
    values.push(decode((equals === -1 ? '' : pair.slice(equals + 1)).replaceAll('+', ' ')));
  }
  return values;
}

/** A `true`/`false` query flag (`1`/`0`, or present without a value for true); `false` when absent, `400` otherwise. */
export function booleanParam(query: URLSearchParams, key: string): boolean {
  const value = query.get(key);
  if (value === null || value === 'false' || value === '0') return false;
  if (value === 'true' || value === '1' || value === '') return true;
  throw new HttpError(400, 'ERR_BAD_REQUEST', `${key} must be true or false, got ${JSON.stringify(value)}`);
}

/** One endpoint. */
export interface Route {
  readonly method: string;
  /** E.g. `/files/:area/:name`. */
  readonly path: string;
  /** Served without the token (pages and probes that reveal nothing of the store's content). */
  readonly public?: boolean;
  handler(ctx: RequestContext): Promise<void>;
}

interface Segment {
  literal?: string;
  param?: string;
  suffix?: string;
}

interface CompiledRoute extends Route {
  readonly segments: Segment[];
}

/** Finds the route for a method and path, or throws 404/405 {@link HttpError}s. */
export class Router {
  readonly #routes: CompiledRoute[];

  constructor(routes: readonly Route[]) {
    this.#routes = routes.map((route) => ({ ...route, segments: route.path.split('/').slice(1).map(compileSegment) }));
  }

  /**
   * The route and its decoded parameters for `method` and the raw request
   * path. `HEAD` is answered by the `GET` route where there is no `HEAD`
   * one (node:http sends no body for `HEAD`; handlers may check the method
   * to skip the work).
   */
  match(method: string, rawPath: string): { route: Route; params: Record<string, string> } {
    const parts = rawPath.split('/').slice(1);
    const allowed = new Set<string>();
    let get: { route: Route; params: Record<string, string> } | null = null;
    for (const route of this.#routes) {
      const params = matchSegments(route.segments, parts);
      if (params === null) continue;
      if (route.method === method) return { route, params };
      if (route.method === 'GET') get ??= { route, params };
      allowed.add(route.method);
    }
    if (method === 'HEAD' && get !== null) return get;
    if (allowed.has('GET')) allowed.add('HEAD');
    if (allowed.size === 0) throw new HttpError(404, 'ERR_NOT_FOUND', `no such endpoint: ${rawPath}`);
    const error = new HttpError(
      405,
      'ERR_METHOD_NOT_ALLOWED',
      `${method} is not allowed here (allowed: ${[...allowed].join(', ')})`,
    );
    throw Object.assign(error, { allow: [...allowed].join(', ') });
  }
}

function compileSegment(segment: string): Segment {
  const param = /^:(\w+)(.*)$/.exec(segment);
  return param ? { param: param[1] as string, suffix: param[2] as string } : { literal: segment };
}

function matchSegments(segments: Segment[], parts: string[]): Record<string, string> | null {
  if (segments.length !== parts.length) return null;
  const params: Record<string, string> = {};
  for (const [i, segment] of segments.entries()) {
    const part = parts[i] as string;
    if (segment.literal !== undefined) {
      if (part !== segment.literal) return null;
      continue;
    }
    const suffix = segment.suffix as string;
    if (!part.endsWith(suffix)) return null;
    params[segment.param as string] = decode(part.slice(0, part.length - suffix.length));
  }
  return params;
}

/**
 * A path segment, percent-decoded. Its bytes are read as a store name reads
 * them (see `nameFromBytes`): `%E9` alone, not UTF-8, is the escaped byte
 * U+DCE9, so every name a listing gives has a URL.
 */
export function decode(part: string): string {
  if (!part.includes('%')) return part;
  if (!WELL_FORMED.test(part))
    throw new HttpError(400, 'ERR_BAD_REQUEST', `malformed percent-encoding in ${JSON.stringify(part)}`);
  try {
    return decodeURIComponent(part);
  } catch {
    return nameFromBytes(percentDecoded(part));
  }
}

function percentDecoded(part: string): Buffer {
  const pieces: Buffer[] = [];
  let plainFrom = 0;
  for (let at = part.indexOf('%'); at !== -1; at = part.indexOf('%', plainFrom)) {
    pieces.push(
      Buffer.from(part.slice(plainFrom, at), 'utf8'),
      Buffer.of(Number.parseInt(part.slice(at + 1, at + 3), 16)),
    );
    plainFrom = at + 3;
  }
  pieces.push(Buffer.from(part.slice(plainFrom), 'utf8'));
  return Buffer.concat(pieces);
}

/** Each percent sign followed by two hex digits. */
const WELL_FORMED = /^(?:[^%]|%[0-9A-Fa-f]{2})*$/;
