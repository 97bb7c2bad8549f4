// writeOut: one backpressured write that always settles, whatever the stream does.
import { once } from 'node:events';
import { Writable } from 'node:stream';
import { expect, it } from 'vitest';
import { writeOut } from '../lib/write-out.js';

/** A stream that keeps what it is given and acknowledges each write only when `release()` is called. */
function slowSink(): { stream: Writable; got: string[]; release(): void } {
  const got: string[] = [];
  const pending: Array<() => void> = [];
  const stream = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _encoding, cb) {
      got.push(chunk.toString());
      pending.push(cb);
    },
  });
  const release = (): void => {
    for (const cb of pending.splice(0)) cb();
  };
  return { stream, got, release };
}

it('resolves once the chunk is written when the stream has room', async () => {
  const got: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, cb) {
      got.push(chunk.toString());
      cb();
    },
  });
  await writeOut(stream, 'a');
  await writeOut(stream, Buffer.from('b'));
  expect(got).toEqual(['a', 'b']);
});

it("waits for 'drain' when the stream asks for it", async () => {
  const sink = slowSink();
  let settled = false;
  const written = writeOut(sink.stream, 'big').then(() => (settled = true));
  await new Promise((resolve) => setTimeout(resolve, 20));
  expect([settled, sink.got]).toEqual([false, ['big']]);
  sink.release();
  await written;
  expect(settled).toBe(true);
});

it("rejects with the stream's error while waiting (EPIPE from a reader that went away)", async () => {
  const sink = slowSink();
  const written = writeOut(sink.stream, 'x');
  sink.stream.destroy(Object.assign(new Error('broken pipe'), { code: 'EPIPE' }));
  await expect(written).rejects.toMatchObject({ code: 'EPIPE' });
});

it('rejects with ECONNRESET when the stream closes without an error while waiting', async () => {
  const sink = slowSink();
  const written = writeOut(sink.stream, 'x');
  sink.stream.destroy();
  await expect(written).rejects.toMatchObject({ code: 'ECONNRESET' });
});

it('rejects with ECONNRESET, instead of waiting forever, on a stream destroyed before the write', {
  timeout: 5_000,
}, async () => {
  const sink = slowSink();
  sink.stream.destroy();
  await once(sink.stream, 'close');
  await expect(writeOut(sink.stream, 'x')).rejects.toMatchObject({ code: 'ECONNRESET' });
  expect(sink.got).toEqual([]);
});
