import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FileStore } from '../../index.js';
import {
  accessLine,
  assertToken,
  createServer,
  defaultMaxConnections,
  errorLine,
  eventLine,
  type LogFormat,
} from '../../server/index.js';
import { UsageError, type ValueSpec, defineCommand } from '../command.js';
import { durability, flag, integer, optionalDir, text } from '../specs.js';

/** A comma-separated list option; `[]` when absent. */
const list: ValueSpec<string[]> = {
  kind: 'value',
  read: (value) =>
    (value ?? '')
      .split(',')
      .map((item) => item.trim())
      .filter((item) => item !== ''),
};

/** `--log text|json`. */
const logFormat: ValueSpec<LogFormat> = {
  kind: 'value',
  read(value, option) {
    if (value === undefined || value === 'text') return 'text';
    if (value === 'json') return 'json';
    throw new UsageError(`--${option} must be text or json, got ${JSON.stringify(value)}`);
  },
};

/** `serve [DIR]`: the HTTP upload server. */
export const serve = defineCommand({
  name: 'serve',
  usage: '[DIR] [--port 8080] [--host 127.0.0.1] [--token T] [OPTIONS]',
  summary: 'serve the store DIR (default ./data) over HTTP',
  help: `Prepares DIR (default ./data) and serves it over HTTP until SIGINT or
SIGTERM; a second signal cuts the uploads still running (their tmp/ files
are removed). Prints "maildir-filestore: serving ROOT on http://HOST:PORT/"
on stderr once bound (ROOT is DIR's absolute path).

Options:
  --port N             TCP port, 0 for any free one (default: 8080)
  --host H             address to bind (default: 127.0.0.1, this machine only)
  --max-bytes N        largest request body in bytes (default: 1073741824)
  --token T            require "Authorization: Bearer T" (default: the
                       FILESTORE_TOKEN environment variable; none if unset);
                       printable ASCII without spaces
  --durability MODE    full, file or none (default: full)
  --allow-host NAMES   comma-separated host names the server answers to
                       besides IP addresses and localhost (e.g. the name of
                       a reverse proxy); '*' for any (no DNS-rebinding guard)
  --allow-origin LIST  comma-separated origins (https://app.example) whose
                       pages may call the server; '*' for any
  --max-connections N  most connections open at once, more get 503 (default:
                       half of what the descriptor limit leaves after 64)
  --log FORMAT         text or json: the format of the start, access, error
                       and shutdown lines on stderr (default: text)
  --quiet              no access log (one line per request); the start,
                       error and shutdown lines stay`,
  args: [optionalDir('./data')],
  options: {
    port: integer(8080, 0, 65535),
    host: text(),
    'max-bytes': integer(1024 * 1024 * 1024),
    token: text(),
    durability,
    'allow-host': list,
    'allow-origin': list,
    'max-connections': integer(defaultMaxConnections(), 1),
    log: logFormat,
    quiet: flag(),
  },
  async run({ args: [root], options }, io) {
    const { port, 'max-bytes': maxBytes, 'allow-host': allowedHosts, 'allow-origin': allowedOrigins } = options;
    const { log: format, quiet, 'max-connections': maxConnections } = options;
    const line = (text: string): void => void io.stderr.write(`${text}\n`);
    const host = options.host ?? '127.0.0.1';
    const token = options.token ?? io.env.FILESTORE_TOKEN;
    if (token !== undefined) usage(() => assertToken(token), '--token (or FILESTORE_TOKEN): ');
    const store = new FileStore(root, { durability: options.durability });
    await store.prepare();
    const server = usage(() =>
      createServer(store, {
        maxBytes,
        token,
        allowedHosts,
        allowedOrigins,
        maxConnections,
        onError: (err, req) => line(errorLine(err, req.method ?? '', req.url ?? '', format)),
        onRequest: quiet ? undefined : (entry) => line(accessLine(entry, format)),
      }),
    );
    let requests = 0;
    server.on('request', () => requests++);
    const closed = once(server, 'close');
    server.listen(port, host);
    await Promise.race([once(server, 'listening'), closed]);
    const address = server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    const url = `http://${shown}:${address.port}/`;
    const started = Date.now();
    line(
      eventLine(
        'start',
        `serving ${store.root} on ${url}`,
        { root: store.root, url, pid: process.pid, maxConnections },
        format,
      ),
    );
    if (token === undefined && !isLoopback(address.address)) {
      const warning = `WARNING: ${address.address} is reachable from other machines and no --token is set: anyone who can reach it can read, change and delete the store`;
      line(eventLine('warning', warning, {}, format));
    }
    const stop = (): void => {
      server.close();
      server.closeIdleConnections();
      process.once('SIGINT', () => server.closeAllConnections());
      process.once('SIGTERM', () => server.closeAllConnections());
    };
    if (io.signal.aborted) stop();
    else io.signal.addEventListener('abort', stop, { once: true });
    await closed;
    const seconds = Math.round((Date.now() - started) / 100) / 10;
    line(eventLine('stop', `stopped after ${seconds} s and ${requests} requests`, { seconds, requests }, format));
    return 0;
  },
});

function isLoopback(address: string): boolean {
  return /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);
}

/** Runs `make`, turning an option it refuses (a TypeError or RangeError) into a usage error. */
function usage<T>(make: () => T, prefix = ''): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof TypeError || err instanceof RangeError) throw new UsageError(`${prefix}${err.message}`);
    throw err;
  }
}
