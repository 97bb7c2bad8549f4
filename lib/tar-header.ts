/**
 * Tar headers of exported files, encoded by tar-stream's own header codec.
 *
 * tar-stream's `pack()` costs a stream object and several promise hops per
 * entry, which for 10,000 small files was most of the export's time (bench
 * scenario 7). The export writes its archive itself and takes from tar-stream
 * only the format: `headers.js`, the module its `pack()` encodes with. The
 * package's `exports` map does not name that module, so it is loaded by the
 * path of the package's main file; the lockfile pins the version, and the
 * export specs (GNU tar reads every archive back) fail if it ever changes.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** The fields of a header this library writes. */
interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: Date;
  type: 'file' | 'pax-header';
}

interface HeaderCodec {
  /** A 512-byte ustar header, or `null` when the name needs a pax header (over 100 bytes, or not ASCII). */
  encode(fields: HeaderFields): Uint8Array | null;
  /** The body of a pax extended header holding `name` as its `path`. */
  encodePax(fields: { name: string }): Uint8Array;
}

const require = createRequire(import.meta.url);
const codec = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as HeaderCodec;

/** The size of a tar block: headers are one block, bodies are padded to whole blocks. */
export const BLOCK_SIZE = 512;

/** Zero bytes, for padding bodies to whole blocks and for the end of the archive. */
export const ZEROS = Buffer.alloc(2 * BLOCK_SIZE);

/**
 * The header blocks of a regular file: one ustar header, or for a long or
 * non-ASCII name a pax header carrying the name, then the ustar header (the
 * same layout tar-stream's `pack()` writes). Mode and mtime are written as
 * given, so a mode of 000 or an mtime of 0 stay what they are.
 */
export function fileHeader(name: string, size: number, mode: number, mtime: Date): Buffer {
  const fields: HeaderFields = { name, mode, uid: 0, gid: 0, size, mtime, type: 'file' };
  const ustar = codec.encode(fields);
  if (ustar !== null) return Buffer.from(ustar.buffer, ustar.byteOffset, ustar.byteLength);
  const pax = codec.encodePax({ name });
  const paxHeader = codec.encode({ ...fields, name: 'PaxHeader', size: pax.byteLength, type: 'pax-header' });
  const fileHeader = codec.encode({ ...fields, name: 'PaxHeader' });
  if (paxHeader === null || fileHeader === null) throw new Error('tar-stream could not encode a pax header');
  return Buffer.concat([paxHeader, pax, ZEROS.subarray(0, padding(pax.byteLength)), fileHeader]);
}

/** The zero bytes that pad a body of `size` bytes to a whole block. */
export function padding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}
