/**
 * Holes: a chunk that stands for `size` zero bytes a `FileWriter` does not
 * write but skips, so the file gets a hole there (no disk blocks on file
 * systems with sparse files, zeros when read). The tar import gives the
 * holes of a sparse member this way. A hole chunk is an empty Buffer known
 * by identity, so a stream passes it on like any chunk, and any other
 * reader of the stream sees nothing.
 */
const SIZES = new WeakMap<Buffer, number>();

/** A chunk that makes a writer skip `size` bytes. */
export function hole(size: number): Buffer {
  const chunk = Buffer.alloc(0);
  SIZES.set(chunk, size);
  return chunk;
}

/** The bytes `chunk` skips: 0 for a chunk of data. */
export function holeSize(chunk: Buffer): number {
  return chunk.length === 0 ? (SIZES.get(chunk) ?? 0) : 0;
}
