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
  /** The body of a pax extended header holding `name` as its `path`, and the records of `pax`. */
  encodePax(fields: { name: string; pax?: Record<string, string> }): Uint8Array;
}

const require = createRequire(import.meta.url);
const codec = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as HeaderCodec;

/** The size of a tar block: headers are one block, bodies are padded to whole blocks. */
export const BLOCK_SIZE = 512;

/** Zero bytes to copy from (`Buffer.concat`) when padding to whole blocks; never handed out as a chunk itself. */
export const ZEROS = Buffer.alloc(2 * BLOCK_SIZE);

/** The latest mtime the ustar header of tar-stream holds: it encodes the seconds as a 32-bit integer. */
const USTAR_MTIME_MAX = 2 ** 31 - 1;

/**
 * The header blocks of a regular file: one ustar header, or a pax header then
 * the ustar header (the layout tar-stream's `pack()` writes) when the name is
 * over 100 bytes or not ASCII, or the mtime is before 1970 or after 2038
 * (the pax `mtime` record carries it; the ustar field holds the nearest
 * value it can). Mode and mtime are written as given, so a mode of 000 or an
 * mtime of 0 stay what they are.
 */
export function fileHeader(name: string, size: number, mode: number, mtime: Date): Buffer {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const inRange = seconds >= 0 && seconds <= USTAR_MTIME_MAX;
  const fields: HeaderFields = { name, mode, uid: 0, gid: 0, size, mtime, type: 'file' };
  const ustar = inRange ? codec.encode(fields) : null;
  if (ustar !== null) return Buffer.from(ustar.buffer, ustar.byteOffset, ustar.byteLength);
  if (!inRange) fields.mtime = new Date(Math.min(Math.max(seconds, 0), USTAR_MTIME_MAX) * 1000);
  const pax = codec.encodePax(inRange ? { name } : { name, pax: { mtime: String(seconds) } });
  const paxHeader = codec.encode({ ...fields, name: 'PaxHeader', size: pax.byteLength, type: 'pax-header' });
  const fileHeader = codec.encode({ ...fields, name: 'PaxHeader' });
  if (paxHeader === null || fileHeader === null) throw new Error('tar-stream could not encode a pax header');
  return Buffer.concat([paxHeader, pax, ZEROS.subarray(0, padding(pax.byteLength)), fileHeader]);
}

/** The zero bytes that pad a body of `size` bytes to a whole block. */
export function padding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}
