/**
 * The import's tar parser: the members of an archive, one at a time, as GNU
 * tar reads them. Extended headers (pax `x` and `g`, GNU long names `L` and
 * `K`) are folded into the member they describe; GNU volume labels are
 * skipped; sparse members (old GNU `S` headers and pax formats 0.0, 0.1 and
 * 1.0) come with their map, and their body is the real file rebuilt. The
 * first zero block ends the archive: what follows it (a second archive, or
 * anything else) is not read as members, as with GNU tar, libarchive and
 * Python's tarfile.
 *
 * Names stay bytes here, exactly as the archive holds them: a pax `path` is
 * taken as bytes whatever `hdrcharset` says, as GNU tar does.
 */
import type { Readable } from 'node:stream';
import { FileStoreError } from '../errors.js';
import { ByteSource } from './byte-source.js';
import {
  BLOCK_SIZE,
  compressedFormat,
  decodeHeader,
  padding,
  paddedSize,
  parsePax,
  type PaxRecords,
} from './header.js';
import { oldGnuRealSize, oldGnuSegments, paxSparse, readMap10, rebuild, validMap, type SparseMap } from './sparse.js';

/** What a member is, from its typeflag (and, for old archives, a name ending in `/`). */
export type EntryKind =
  | 'file'
  | 'directory'
  | 'hard link'
  | 'symbolic link'
  | 'character device'
  | 'block device'
  | 'FIFO'
  | 'multi-volume continuation'
  | 'unknown';

/** One member of an archive. */
export interface TarEntry {
  /** The member's name as the archive holds it: pax `path`, GNU long name, or ustar prefix and name. */
  name: Buffer;
  kind: EntryKind;
  /** The typeflag character. */
  type: string;
  /** The size of the file the member stands for (the real size of a sparse file). */
  size: number;
  /** The sparse map, for a sparse member. */
  sparse: SparseMap | null;
  /**
   * The file's bytes (a sparse file's rebuilt). Read it before asking for the
   * next member, or leave it: the parser skips what was not read. Rejects
   * with `ERR_CORRUPT_ARCHIVE` when the archive ends inside it.
   */
  body(): AsyncIterable<Buffer>;
}

/** The largest pax extended header read; a bigger one is refused rather than held in memory. */
export const MAX_PAX_SIZE = 16 * 1024 * 1024;
/** The largest GNU long name or long link name read. */
const MAX_LONG_NAME = 64 * 1024;

const KINDS: Record<string, EntryKind> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  S: 'file',
  '1': 'hard link',
  '2': 'symbolic link',
  '3': 'character device',
  '4': 'block device',
  '5': 'directory',
  D: 'directory',
  '6': 'FIFO',
  M: 'multi-volume continuation',
};

/** The header types that describe the next member rather than being one. */
const EXTENSIONS = new Set(['x', 'g', 'L', 'K', 'X']);

/** Errors of a corrupt or truncated archive. */
export function corrupt(what: string, cause?: Error): FileStoreError {
  return new FileStoreError('ERR_CORRUPT_ARCHIVE', `corrupt or truncated tar archive: ${what}`, { cause });
}

/**
 * The members of the archive `source`, in order. Ends at the first zero
 * block; leaves the rest of `source` unread (`drain()` or `close()` it via
 * the returned reader). Rejects with `ERR_CORRUPT_ARCHIVE` for a header that
 * is not one, an archive that ends inside a member or without its
 * end-of-archive block, or a malformed pax or sparse record; with the
 * source's own error when it fails.
 */
export class TarParser {
  readonly #bytes: ByteSource;
  readonly #global = new Map<string, Buffer>();

  constructor(source: Readable) {
    this.#bytes = new ByteSource(source);
  }

  /** Reads the rest of the source after the end of the archive and drops it. */
  drain(): void {
    this.#bytes.drain();
  }

  /** Stops reading the source (the import failed). */
  close(): void {
    this.#bytes.close();
  }

  async *entries(): AsyncGenerator<TarEntry> {
    let members = 0;
    let local: PaxRecords = [];
    let longName: Buffer | null = null;
    for (;;) {
      const start = this.#bytes.offset;
      const block = await this.#bytes.read(BLOCK_SIZE);
      if (block.length === 0) {
        if (members === 0 && start === 0) throw corrupt('the archive is empty');
        throw corrupt('the archive ends without its end-of-archive blocks');
      }
      const header = block.length < BLOCK_SIZE ? 'short' : decodeHeader(block);
      if (header === null) return; // the end-of-archive marker
      const packed = typeof header === 'string' && start === 0 ? compressedFormat(block) : null;
      if (packed !== null) throw corrupt(`${packed}-compressed data, not a tar archive: decompress it first`);
      if (header === 'short') throw corrupt(`the archive ends inside a header at byte ${start}`);
      if (typeof header === 'string') {
        const what = header === 'checksum' ? 'a header with a bad checksum' : 'a header field that is not a number';
        throw corrupt(`${what} at byte ${start}`);
      }
      if (EXTENSIONS.has(header.type)) {
        const body = await this.#extension(header.type, header.size, start);
        if (header.type === 'L') longName = body;
        else if (header.type === 'g') this.#addGlobal(body, start);
        else if (header.type !== 'K') local = local.concat(this.#records(body, start));
        continue;
      }
      if (header.type === 'V') {
        // a GNU volume label names the archive, not a member; GNU tar skips it on extraction
        await this.#skipBody(header.size, start);
        local = [];
        longName = null;
        continue;
      }
      const pax = this.#effective(local);
      const get = (key: string): string | undefined => {
        const value = pax.get(key);
        return value === undefined || value.length === 0 ? undefined : value.toString('utf8');
      };
      const sizeText = get('size');
      const stored = sizeText === undefined ? header.size : Number(sizeText);
      if (!Number.isSafeInteger(stored) || stored < 0)
        throw corrupt(`a pax size that is not a number at byte ${start}`);
      let name = pax.get('GNU.sparse.name') || pax.get('path') || longName || header.name;
      let kind = KINDS[header.type] ?? 'unknown';
      // v7 and old GNU tar mark directories by a trailing slash on a regular-file entry
      if ((header.type === '\0' || header.type === '0') && header.format !== 'ustar' && endsWithSlash(name))
        kind = 'directory';
      if (kind === 'directory' && endsWithSlash(name) && name.length > 1) name = name.subarray(0, name.length - 1);
      const sparse = await this.#sparse(header.type, header.block, local, get, stored, start);
      const end = this.#bytes.offset + paddedSize(sparse?.storedLeft ?? stored);
      const bytes = this.#bytes;
      let taken = false;
      const entry: TarEntry = {
        name,
        kind,
        type: header.type,
        size: sparse === null ? stored : sparse.map.realSize,
        sparse: sparse?.map ?? null,
        body: () => {
          if (taken) throw new Error('a tar entry body is read once');
          taken = true;
          const data = exactly(bytes, sparse?.storedLeft ?? stored, name);
          return sparse === null ? data : rebuildChecked(sparse.map, data, name);
        },
      };
      members++;
      local = [];
      longName = null;
      yield entry;
      const left = end - this.#bytes.offset;
      if (left > 0 && (await this.#bytes.skip(left)) < left) throw endsInside(name);
    }
  }

  /** The body of an extension header, read whole. */
  async #extension(type: string, size: number, start: number): Promise<Buffer> {
    const limit = type === 'L' || type === 'K' ? MAX_LONG_NAME : MAX_PAX_SIZE;
    if (size > limit) {
      throw new FileStoreError(
        'ERR_UNSAFE_ENTRY',
        `refused tar header at byte ${start}: an extended header of ${size} bytes (at most ${limit} are read)`,
      );
    }
    const body = await this.#bytes.read(size);
    if (body.length < size || (await this.#bytes.skip(padding(size))) < padding(size))
      throw corrupt(`the archive ends inside an extended header at byte ${start}`);
    if (type === 'L' || type === 'K') {
      const nul = body.indexOf(0);
      return nul === -1 ? body : body.subarray(0, nul);
    }
    return body;
  }

  async #skipBody(size: number, start: number): Promise<void> {
    const length = paddedSize(size);
    if ((await this.#bytes.skip(length)) < length) throw corrupt(`the archive ends inside the entry at byte ${start}`);
  }

  #records(body: Buffer, start: number): PaxRecords {
    const records = parsePax(body);
    if (records === null) throw corrupt(`a malformed pax extended header at byte ${start}`);
    return records;
  }

  /** A global pax header: its records hold for every later member; an empty value removes one. */
  #addGlobal(body: Buffer, start: number): void {
    for (const [key, value] of this.#records(body, start)) {
      if (value.length === 0) this.#global.delete(key);
      else this.#global.set(key, value);
    }
  }

  /** The pax records in force for a member: the global ones, then its own (the last of a key wins). */
  #effective(local: PaxRecords): Map<string, Buffer> {
    const records = new Map(this.#global);
    for (const [key, value] of local) records.set(key, value);
    return records;
  }

  /** The sparse map of a member, if it is sparse, and how many stored bytes are left to read after it. */
  async #sparse(
    type: string,
    block: Buffer,
    local: PaxRecords,
    get: (key: string) => string | undefined,
    stored: number,
    start: number,
  ): Promise<{ map: SparseMap; storedLeft: number } | null> {
    const malformed = (): FileStoreError => corrupt(`a malformed sparse map at byte ${start}`);
    if (type === 'S') {
      const realSize = oldGnuRealSize(block);
      let part = oldGnuSegments(block, true);
      if (part === null || realSize === null) throw malformed();
      const segments = [...part.segments];
      while (part.more) {
        const extension = await this.#bytes.read(BLOCK_SIZE);
        if (extension.length < BLOCK_SIZE) throw corrupt(`the archive ends inside a sparse map at byte ${start}`);
        part = oldGnuSegments(extension, false);
        if (part === null) throw malformed();
        segments.push(...part.segments);
      }
      return checked({ segments, realSize }, stored, stored, malformed);
    }
    if (type !== '0' && type !== '\0' && type !== '7') return null;
    const found = paxSparse(local, get);
    if (found === 'bad') throw malformed();
    if (found === null) return null;
    if (found.version !== '1.0') return checked(found.map, stored, stored, malformed);
    let used = 0;
    const map = await readMap10(async () => {
      if (used + BLOCK_SIZE > stored) return null;
      const next = await this.#bytes.read(BLOCK_SIZE);
      used += BLOCK_SIZE;
      if (next.length < BLOCK_SIZE) throw corrupt(`the archive ends inside a sparse map at byte ${start}`);
      return next;
    }, found.realSize);
    if (map === null) throw malformed();
    return checked(map.map, stored - map.used, stored - map.used, malformed);
  }
}

function checked(
  map: SparseMap,
  data: number,
  storedLeft: number,
  malformed: () => FileStoreError,
): { map: SparseMap; storedLeft: number } {
  const segments = map.segments.filter((segment) => segment.size > 0);
  const tidy = { segments, realSize: map.realSize };
  if (!validMap(tidy, data)) throw malformed();
  return { map: tidy, storedLeft };
}

function endsWithSlash(name: Buffer): boolean {
  return name.length > 0 && name[name.length - 1] === 0x2f;
}

function endsInside(name: Buffer): FileStoreError {
  return corrupt(`the archive ends inside the entry ${JSON.stringify(name.toString('utf8').slice(0, 64))}`);
}

/** `n` bytes of the body, as they come; rejects with `ERR_CORRUPT_ARCHIVE` when the archive ends first. */
async function* exactly(bytes: ByteSource, n: number, name: Buffer): AsyncGenerator<Buffer> {
  let got = 0;
  for await (const piece of bytes.take(n)) {
    got += piece.length;
    yield piece;
  }
  if (got < n) throw endsInside(name);
}

async function* rebuildChecked(map: SparseMap, data: AsyncIterable<Buffer>, name: Buffer): AsyncGenerator<Buffer> {
  try {
    yield* rebuild(map, data);
  } catch (err) {
    if (err instanceof RangeError) throw endsInside(name);
    throw err;
  }
}
