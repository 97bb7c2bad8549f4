// Tar archives for the import specs, built with tar-stream's pack.
import type { Readable } from 'node:stream';
import tarStream, { type Header } from 'tar-stream';

/** One entry of {@link archive}: its header, and the body of a regular or contiguous file. */
export type ArchiveEntry = [Partial<Header> & { name: string }, (string | Buffer)?];

/** An archive made by tar-stream's pack from [header, body] pairs, with its end-of-archive blocks. */
export async function archive(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as unknown as Readable) chunks.push(chunk as Buffer);
  })();
  for (const [header, body] of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (header.type === undefined || header.type === 'file' || header.type === 'contiguous-file') pack.entry(header, body ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}
