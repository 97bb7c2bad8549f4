import type { Writable } from 'node:stream';

/** The program's name, as errors and help show it. */
export const PROGRAM = 'maildir-filestore';

/** `maildir-filestore: CODE: message` on one line. */
export function errorLine(err: unknown): string {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  let text = typeof message === 'string' ? message : String(err);
  if (text.startsWith(`${label}: `)) text = text.slice(label.length + 2);
  return `${PROGRAM}: ${label}: ${text.replace(/\s*\n\s*/g, ' ')}`;
}

/**
 * Writes `chunk` and, when the stream asks for it, waits for `'drain'`.
 * Rejects with the stream's error (`EPIPE` when a reader of standard output
 * went away), and with `ECONNRESET` when the stream closed without one (an
 * HTTP client that disconnected), so a writing loop stops either way.
 */
export async function writeOut(stream: Writable, chunk: string | Buffer): Promise<void> {
  let failure: Error | null = null;
  const onError = (err: Error): void => {
    failure ??= err;
  };
  stream.on('error', onError);
  try {
    if (!stream.write(chunk)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          stream.off('drain', done);
          stream.off('close', done);
          stream.off('error', done);
          resolve();
        };
        stream.on('drain', done);
        stream.on('close', done);
        stream.on('error', done);
      });
    } else {
      await new Promise((resolve) => process.nextTick(resolve));
    }
  } finally {
    stream.off('error', onError);
  }
  if (failure !== null) throw failure;
  if (stream.destroyed) throw Object.assign(new Error('the reader went away'), { code: 'ECONNRESET' });
}

const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const SHORT: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A name as `ls` prints it on one line: backslash as `\\`, newline, carriage
 * return and tab as `\n`, `\r`, `\t`, and every other control character
 * (C0, DEL, C1, U+2028, U+2029) as `\uHHHH`. Unambiguous, because every
 * backslash of the name is doubled.
 */
export function escapeName(name: string): string {
  return name.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
