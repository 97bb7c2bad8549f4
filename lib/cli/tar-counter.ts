/**
 * Counts what flows through a tar stream, for the progress line: bytes, and
 * regular-file entries found by walking the headers. Only the 512-byte
 * headers are looked at; bodies are skipped by their size, so the cost does
 * not grow with the data. Counting never fails the stream: at the first
 * header that is not a valid tar header (a bad checksum, an unreadable size,
 * or a size a pax record overrides, as for files over 8 GiB in pax format)
 * the file count stops where it is and only bytes are counted on.
 */
import { Transform, type TransformCallback } from 'node:stream';

const BLOCK = 512;
/** Typeflags of regular files: `0`, NUL (old tar) and `7` (contiguous file). */
const FILE_TYPES = new Set([0x30, 0x00, 0x37]);

/** A pass-through Transform that counts bytes and regular-file entries of a tar stream. */
export class TarCounter extends Transform {
  /** Regular-file entries whose header has passed through. */
  files = 0;
  /** Bytes that have passed through. */
  bytes = 0;
  readonly #onProgress: ((files: number, bytes: number) => void) | undefined;
  readonly #header = Buffer.alloc(BLOCK);
  #filled = 0;
  #skip = 0;
  #lost = false;

  /** `onProgress` is called with the counts after every chunk. */
  constructor(onProgress?: (files: number, bytes: number) => void) {
    super();
    this.#onProgress = onProgress;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (!this.#lost) this.#walk(chunk);
    this.#onProgress?.(this.files, this.bytes);
    cb(null, chunk);
  }

  #walk(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && !this.#lost) {
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, chunk.length - at);
        this.#skip -= n;
        at += n;
        continue;
      }
      const n = Math.min(BLOCK - this.#filled, chunk.length - at);
      chunk.copy(this.#header, this.#filled, at, at + n);
      this.#filled += n;
      at += n;
      if (this.#filled === BLOCK) {
        this.#filled = 0;
        this.#readHeader(this.#header);
      }
    }
  }

  #readHeader(header: Buffer): void {
    if (header.every((byte) => byte === 0)) return; // an end-of-archive block
    const size = validSize(header);
    if (size === null) {
      this.#lost = true;
      return;
    }
    if (FILE_TYPES.has(header[156] as number)) this.files++;
    this.#skip = Math.ceil(size / BLOCK) * BLOCK;
  }
}

/** The entry size of a header whose checksum is right, else `null`. */
function validSize(header: Buffer): number | null {
  const stored = octal(header.subarray(148, 156));
  if (stored === null) return null;
  let sum = 8 * 0x20; // the checksum field counts as spaces
  for (let i = 0; i < BLOCK; i++) if (i < 148 || i >= 156) sum += header[i] as number;
  if (sum !== stored) return null;
  const field = header.subarray(124, 136);
  if (field[0] === 0x80) {
    let size = 0;
    for (let i = 1; i < field.length; i++) size = size * 256 + (field[i] as number);
    return Number.isSafeInteger(size) ? size : null;
  }
  return octal(field);
}

/** An octal number field: optional spaces, digits, ended by NUL or space; `null` when malformed. */
function octal(field: Buffer): number | null {
  const text = field.toString('latin1');
  const match = /^ *([0-7]*)[ \0]*$/.exec(text);
  if (match === null) return null;
  return match[1] === '' ? 0 : parseInt(match[1] as string, 8);
}
