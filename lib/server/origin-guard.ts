/**
 * Who may talk to the server: the defence against DNS rebinding and against
 * other web pages driving it through the browser of someone who can reach it.
 *
 * A page on another site can send "simple" requests (a form POST, a
 * `text/plain` fetch) to any address the browser reaches, without a CORS
 * preflight, and with DNS rebinding (a name of the attacker's that resolves
 * to 127.0.0.1 after the page loaded) even read the answers. So:
 *
 * - `Host` must name the server as an address (an IP literal, which no DNS
 *   answer can rebind), `localhost`, or one of the names the operator gave;
 *   any other name is a rebinding attempt or a misrouted request: `403`.
 * - A request a browser marks as coming from another origin (`Origin` not
 *   this server, `Sec-Fetch-Site` `cross-site` or `same-site`) is refused
 *   with `403` unless its origin is allowed, except a `GET`/`HEAD` link
 *   someone followed (a top-level navigation shows the answer to the user,
 *   not to the page that linked it). Clients that are not browsers send
 *   neither header and are not affected.
 * - An allowed origin gets CORS headers, and its preflights (`OPTIONS`) are
 *   answered `204`.
 */
import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { isIP } from 'node:net';
import { HttpError } from './http-error.js';

/** Origin rules, parsed once from the server's options. */
export interface OriginPolicy {
  /** Host names accepted besides IP literals and `localhost` (lower case), or `'any'`. */
  readonly hosts: ReadonlySet<string> | 'any';
  /** Origins (`scheme://host[:port]`) allowed to send cross-origin requests, or `'any'`. */
  readonly origins: ReadonlySet<string> | 'any';
}

/** Parses the `allowedHosts` and `allowedOrigins` options; `*` alone means any. */
export function originPolicy(
  allowedHosts: readonly string[] = [],
  allowedOrigins: readonly string[] = [],
): OriginPolicy {
  const hosts = allowedHosts.map((host) => {
    const name = hostnameOf(host);
    if (name === null || name === '') throw new TypeError(`allowedHosts: not a host name: ${JSON.stringify(host)}`);
    return name;
  });
  const origins = allowedOrigins.map((origin) => {
    if (origin === '*') return origin;
    const parsed = URL.canParse(origin) ? new URL(origin) : null;
    if (parsed === null || parsed.origin === 'null' || parsed.origin !== origin.replace(/\/$/, ''))
      throw new TypeError(`allowedOrigins: not an origin (scheme://host[:port]): ${JSON.stringify(origin)}`);
    return parsed.origin;
  });
  return {
    hosts: hosts.includes('*') ? 'any' : new Set(hosts),
    origins: origins.includes('*') ? 'any' : new Set(origins),
  };
}

/** The host name of a `Host` header value (port and IPv6 brackets removed, lower case), or `null` when malformed. */
function hostnameOf(host: string): string | null {
  const value = host.trim().toLowerCase();
  if (value === '*') return value;
  const bracketed = /^\[([0-9a-f:.]+)\](?::\d{1,5})?$/.exec(value);
  if (bracketed) return bracketed[1] as string;
  const plain = /^([a-z0-9.-]*[a-z0-9-])\.?(?::\d{1,5})?$/.exec(value);
  return plain ? (plain[1] as string) : null;
}

function hostAllowed(host: string | undefined, policy: OriginPolicy): boolean {
  // HTTP/1.0 clients may send no Host; browsers always send one
  if (host === undefined) return true;
  const name = hostnameOf(host);
  if (name === null) return false;
  if (isIP(name) !== 0 || name === 'localhost') return true;
  return policy.hosts === 'any' || policy.hosts.has(name);
}

function originAllowed(origin: string, policy: OriginPolicy): boolean {
  return policy.origins === 'any' ? origin !== 'null' : policy.origins.has(origin);
}

/**
 * Checks a request against the policy: throws a `403` {@link HttpError}
 * (`ERR_HOST_NOT_ALLOWED` or `ERR_CROSS_ORIGIN`) when it is refused, else
 * returns the CORS headers its answer needs (none for a same-origin request).
 */
export function checkOrigin(req: IncomingMessage, policy: OriginPolicy): OutgoingHttpHeaders {
  const { host, origin } = req.headers;
  if (!hostAllowed(host, policy)) {
    throw new HttpError(
      403,
      'ERR_HOST_NOT_ALLOWED',
      `the Host ${JSON.stringify(host)} is not this server's (allow a name with --allow-host)`,
    );
  }
  const site = req.headers['sec-fetch-site'];
  const sameOrigin = origin === undefined ? site !== 'cross-site' && site !== 'same-site' : isSameOrigin(origin, host);
  if (sameOrigin) return {};
  if (origin !== undefined && originAllowed(origin, policy)) {
    return { 'access-control-allow-origin': origin, 'access-control-expose-headers': 'location', vary: 'Origin' };
  }
  const method = req.method ?? 'GET';
  if ((method === 'GET' || method === 'HEAD') && req.headers['sec-fetch-mode'] === 'navigate') return {};
  throw new HttpError(
    403,
    'ERR_CROSS_ORIGIN',
    `cross-origin request from ${origin === undefined ? `another site (Sec-Fetch-Site: ${site})` : JSON.stringify(origin)} refused (allow it with --allow-origin)`,
  );
}

function isSameOrigin(origin: string, host: string | undefined): boolean {
  if (origin === 'null' || host === undefined || !URL.canParse(origin)) return false;
  const { protocol, host: originHost } = new URL(origin);
  // the scheme is not compared: behind a TLS proxy the page is https and this server http
  return (protocol === 'http:' || protocol === 'https:') && originHost === new URL(`http://${host}`).host;
}

/** The answer headers of a CORS preflight from an allowed origin. */
export function preflightHeaders(req: IncomingMessage): OutgoingHttpHeaders {
  return {
    'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE',
    'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'authorization, content-type',
    'access-control-max-age': '600',
  };
}
