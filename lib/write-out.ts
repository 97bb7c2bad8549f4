import type { Writable } from 'node:stream';

/**
 * Writes `chunk` and, when the stream asks for it, waits for `'drain'`.
 * Rejects with the stream's error (`EPIPE` when a reader of standard output
 * went away), and with `ECONNRESET` when the stream closed without one (an
 * HTTP client that disconnected), so a writing loop stops either way.
 */
export async function writeOut(stream: Writable, chunk: string | Buffer): Promise<void> {
  // a stream destroyed before this write would never emit 'drain', 'close' or 'error' again
  if (stream.destroyed) throw readerGone();
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
  if (stream.destroyed) throw readerGone();
}

function readerGone(): Error {
  return Object.assign(new Error('the reader went away'), { code: 'ECONNRESET' });
}
