/**
 * Counts what flows through a tar stream, for the CLI's progress line: bytes,
 * and regular-file entries found by walking the headers with the header
 * codec the import and export use. Only the 512-byte
 * headers are looked at; bodies are skipped by their size, so the cost does
 * not grow with the data. Counting never fails the stream: at the first
 * header that is not a valid tar header (a bad checksum, an unreadable size,
 * or a size a pax record overrides, as for files over 8 GiB in pax format)
 * the file count stops where it is and only bytes are counted on. It stops
 * too at the first zero block, where the import stops reading members.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { BLOCK_SIZE as BLOCK, decodeHeader, paddedSize } from './header.js';

/** Typeflags of regular files: `0`, NUL (old tar), `7` (contiguous file) and `S` (old GNU sparse file). */
const FILE_TYPES = new Set(['0', '\0', '7', 'S']);
/** Where an old GNU sparse header, and each of its extension blocks, says another extension block follows. */
const IS_EXTENDED = 482;
const EXTENSION_IS_EXTENDED = 504;

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
  /** Inside an old GNU sparse map's extension blocks: the body to skip after them. */
  #afterMap: number | null = null;

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

  #readHeader(block: Buffer): void {
    if (this.#afterMap !== null) {
      if (block[EXTENSION_IS_EXTENDED] !== 0) return;
      this.#skip = this.#afterMap;
      this.#afterMap = null;
      return;
    }
    const header = decodeHeader(block);
    // the end of the archive (what follows is not imported), or not a header
    if (header === null || typeof header === 'string') {
      this.#lost = true;
      return;
    }
    if (FILE_TYPES.has(header.type)) this.files++;
    if (header.type === 'S' && block[IS_EXTENDED] !== 0) this.#afterMap = paddedSize(header.size);
    else this.#skip = paddedSize(header.size);
  }
}
