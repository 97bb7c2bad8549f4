/**
 * Exact reads from a readable stream: the import's parser asks for a header
 * block, a pax body, or a file body of so many bytes, and gets exactly that
 * many (or learns the stream ended). Bodies come as views of the source's own
 * chunks, so no byte of a file is copied on its way to the store.
 */
import type { Readable } from 'node:stream';

const EMPTY = Buffer.alloc(0);

/** Pulls chunks from a readable stream and hands them out by exact byte counts. */
export class ByteSource {
  /** Bytes handed out so far: the archive offset of the next byte. */
  offset = 0;
  readonly #iterator: AsyncIterator<unknown>;
  #chunk: Buffer = EMPTY;
  #ended = false;

  constructor(source: Readable) {
    this.#iterator = source[Symbol.asyncIterator]();
  }

  /** Up to `n` bytes, as views: fewer only when the stream ends first. Rejects with the stream's error. */
  async *take(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0 && (await this.#fill())) {
      const piece = this.#slice(left);
      left -= piece.length;
      yield piece;
    }
  }

  /** `n` bytes in one buffer; shorter only when the stream ends first. */
  async read(n: number): Promise<Buffer> {
    if (this.#chunk.length >= n || !(await this.#fill()) || this.#chunk.length >= n) return this.#slice(n);
    const parts: Buffer[] = [];
    let got = 0;
    for await (const piece of this.take(n)) {
      parts.push(piece);
      got += piece.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Skips `n` bytes; resolves with how many there were. */
  async skip(n: number): Promise<number> {
    let got = 0;
    for await (const piece of this.take(n)) got += piece.length;
    return got;
  }

  /** Reads the rest of the stream and drops it, so its writer finishes; its errors no longer matter. */
  drain(): void {
    this.#chunk = EMPTY;
    const next = (): void => {
      if (this.#ended) return;
      this.#iterator.next().then((result) => {
        if (result.done) this.#ended = true;
        else next();
      }, ignore);
    };
    next();
  }

  /** Stops reading: the stream is destroyed (an import that failed). */
  close(): void {
    this.#chunk = EMPTY;
    if (this.#ended) return;
    this.#ended = true;
    this.#iterator.return?.().catch(ignore);
  }

  #slice(n: number): Buffer {
    const piece = this.#chunk.length <= n ? this.#chunk : this.#chunk.subarray(0, n);
    this.#chunk = this.#chunk.subarray(piece.length);
    this.offset += piece.length;
    return piece;
  }

  /** True when bytes are at hand, loading the next chunk if needed; false at the end of the stream. */
  async #fill(): Promise<boolean> {
    while (this.#chunk.length === 0) {
      if (this.#ended) return false;
      const result = await this.#iterator.next();
      if (result.done) {
        this.#ended = true;
        return false;
      }
      const chunk = result.value;
      this.#chunk = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array | string);
    }
    return true;
  }
}

function ignore(): void {}
