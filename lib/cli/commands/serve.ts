import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { FileStore } from '../../index.js';
import { createServer } from '../../server/index.js';
import { UsageError, defineCommand } from '../command.js';
import { errorLine } from '../output.js';
import { durability, integer, optionalDir, text } from '../specs.js';

/** `serve [DIR]`: the HTTP upload server. */
export const serve = defineCommand({
  name: 'serve',
  usage: '[DIR] [--port 8080] [--host 127.0.0.1] [--max-bytes N] [--token T] [--durability MODE]',
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
                       FILESTORE_TOKEN environment variable; none if unset)
  --durability MODE    full, file or none (default: full)`,
  args: [optionalDir('./data')],
  options: {
    port: integer(8080, 0, 65535),
    host: text(),
    'max-bytes': integer(1024 * 1024 * 1024),
    token: text(),
    durability,
  },
  async run({ args: [root], options }, io) {
    const { port, 'max-bytes': maxBytes } = options;
    const host = options.host ?? '127.0.0.1';
    const token = options.token ?? io.env.FILESTORE_TOKEN;
    if (token === '') throw new UsageError('the token must not be empty');
    const store = new FileStore(root, { durability: options.durability });
    await store.prepare();
    const server = createServer(store, { maxBytes, token, onError: (err) => io.stderr.write(`${errorLine(err)}\n`) });
    const closed = once(server, 'close');
    server.listen(port, host);
    await Promise.race([once(server, 'listening'), closed]);
    const address = server.address() as AddressInfo;
    const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    io.stderr.write(`maildir-filestore: serving ${store.root} on http://${shown}:${address.port}/\n`);
    const stop = (): void => {
      server.close();
      server.closeIdleConnections();
      process.once('SIGINT', () => server.closeAllConnections());
      process.once('SIGTERM', () => server.closeAllConnections());
    };
    if (io.signal.aborted) stop();
    else io.signal.addEventListener('abort', stop, { once: true });
    await closed;
    return 0;
  },
});
