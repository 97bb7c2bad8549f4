/**
 * A cap on open connections, below the process's file-descriptor limit.
 *
 * Every connection holds a descriptor, and an upload holds a second one
 * for its file (an export several). When sockets take them all, every
 * open() of the store fails with EMFILE and accept() itself fails, so
 * clients see resets and even finished uploads cannot commit. So the
 * server keeps at most `maxConnections` (by default half of what the limit
 * leaves after a reserve, from `/proc/self/limits`) and answers the
 * connections beyond with `503` and `Retry-After` at once, instead of
 * Node's `maxConnections`, which closes them without a word.
 *
 * A refused connection is answered, half-closed, and read until the client
 * closes it (a second at most), so the client reads the 503 instead of a
 * reset: closing a socket with unread data makes the kernel send RST.
 */
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** Descriptors kept for files, directories and the runtime besides the connections. */
const RESERVE = 64;
/** Connections kept when the limit cannot be read (not Linux). */
const FALLBACK = 1000;
/** At most this many refused connections linger to be read; past it they are closed at once. */
const MAX_LINGERING = 64;
const LINGER_MS = 1000;

/** The soft limit on open files of this process, from `/proc/self/limits`; `null` when unknown. */
export function descriptorLimit(): number | null {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return line === null || line[1] === 'unlimited' ? null : Number(line[1]);
  } catch {
    return null;
  }
}

/** The default cap: half of the descriptors the limit leaves after a reserve (one for the socket, one for its file). */
export function defaultMaxConnections(limit = descriptorLimit()): number {
  if (limit === null) return FALLBACK;
  return Math.max(8, Math.floor((limit - RESERVE) / 2));
}

/**
 * Puts the cap on `server`: connections beyond `max` get `503` with
 * `Retry-After: 1` and are closed. Returns the number of open connections,
 * for metrics; `onRefused` is called for each refused one.
 */
export function capConnections(server: Server, max: number, onRefused: () => void): () => number {
  let open = 0;
  let lingering = 0;
  // node:http attaches its parser in a 'connection' listener; a refused socket must never reach it
  const listeners = server.listeners('connection') as Array<(socket: Socket) => void>;
  server.removeAllListeners('connection');
  server.on('connection', (socket: Socket) => {
    if (open >= max) {
      onRefused();
      refuse(socket, lingering < MAX_LINGERING);
      if (!socket.destroyed) {
        lingering++;
        socket.once('close', () => lingering--);
      }
      return;
    }
    open++;
    socket.once('close', () => open--);
    for (const listener of listeners) listener.call(server, socket);
  });
  return () => open;
}

function refuse(socket: Socket, linger: boolean): void {
  const body = `${JSON.stringify({
    error: { code: 'ERR_TOO_MANY_CONNECTIONS', message: 'the server has as many connections open as it takes; retry' },
  })}\n`;
  socket.on('error', () => {});
  socket.end(
    `HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
  if (!linger) {
    socket.destroySoon();
    return;
  }
  socket.resume();
  socket.setTimeout(LINGER_MS, () => socket.destroy());
  socket.once('end', () => socket.destroy());
}
