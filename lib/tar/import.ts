/**
 * Tar import into a store area (the export is in `export.ts`, the parser in
 * `entries.ts`).
 *
 * Members are taken one at a time from the parser; each regular file is
 * piped into a store writer, so it lands atomically, and the next member is
 * read only after the commit. The first refused member, collision or parse
 * error stops the import; what was committed before stays, and is named on
 * the error. The end-of-archive marker ends the import: bytes after it are
 * read and dropped, as GNU tar ignores them.
 *
 * A sparse member's holes stay holes: the writer skips them (`hole.ts`), so
 * the file takes its data's size on disk, as GNU tar extracts it (a small
 * file at durability `none`, held in memory, gets them as zeros). Still, a
 * consumer reads a hole as zeros, and libarchive's `gtar_sparse_skip_entry`
 * fixture holds a 10 GiB file in 8 KiB: so that a small archive cannot turn
 * into files that take any reader minutes, the holes of one import are
 * bounded, {@link MAX_SPARSE_HOLES}.
 */
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FileStoreError } from '../errors.js';
import { assertName, nameFromBytes } from '../names.js';
import type { FileWriter } from '../writer.js';
import { TarParser, type TarEntry } from './entries.js';

/**
 * The most bytes of holes the sparse members of one import may add up to
 * (256 MiB); the member that would pass it is refused with `ERR_UNSAFE_ENTRY`.
 */
export const MAX_SPARSE_HOLES = 256 * 1024 * 1024;

/** Options of {@link FileStore.importTar}. */
export interface ImportTarOptions {
  /**
   * The area the files are committed to.
   * @default 'new'
   */
  area?: 'new' | 'cur';
  /**
   * Replace existing files of the same name instead of failing with `EEXIST`.
   * @default false
   */
  overwrite?: boolean;
}

/**
 * What {@link FileStore.importTar} rejects with: the error (a
 * `FileStoreError` or a file-system error, with its own `code`) carrying the
 * names committed before the failure, which stay committed.
 */
export type ImportTarError = Error & { code?: string; committed: string[] };

/** Opens the writer of one imported file; supplied by the store. */
export type OpenWriter = (name: string, area: 'new' | 'cur', overwrite: boolean) => FileWriter;

/** The import of {@link FileStore.importTar}; `openWriter` makes the writer of each file. */
export async function importTar(
  source: Readable,
  options: ImportTarOptions,
  openWriter: OpenWriter,
): Promise<string[]> {
  const committed: string[] = [];
  try {
    const { area, overwrite } = importOptions(options);
    if (!isReadable(source)) throw new FileStoreError('ERR_INVALID_OPTION', 'source must be a readable stream');
    await extractInto(source, area, overwrite, openWriter, committed);
    return committed;
  } catch (err) {
    throw Object.assign(err as Error, { committed });
  }
}

function importOptions(options: ImportTarOptions): { area: 'new' | 'cur'; overwrite: boolean } {
  const { area = 'new', overwrite = false } = options;
  if (area !== 'new' && area !== 'cur') {
    throw new FileStoreError('ERR_INVALID_OPTION', `option area must be new or cur, not ${String(area)}`);
  }
  if (typeof overwrite !== 'boolean')
    throw new FileStoreError('ERR_INVALID_OPTION', 'option overwrite must be a boolean');
  return { area, overwrite };
}

function isReadable(value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function';
}

async function extractInto(
  source: Readable,
  area: 'new' | 'cur',
  overwrite: boolean,
  openWriter: OpenWriter,
  committed: string[],
): Promise<void> {
  const parser = new TarParser(source);
  let holes = 0;
  try {
    for await (const entry of parser.entries()) {
      const name = entryName(entry);
      if (name === null) continue;
      holes += holesOf(entry);
      if (holes > MAX_SPARSE_HOLES) {
        throw unsafe(name, `a sparse file whose holes take the import past ${MAX_SPARSE_HOLES} bytes of holes`);
      }
      await commit(entry, openWriter(name, area, overwrite));
      committed.push(name);
    }
  } catch (err) {
    parser.close();
    throw err;
  }
  parser.drain();
}

/** The bytes of a sparse member's real file that are not stored: its holes. */
function holesOf(entry: TarEntry): number {
  if (entry.sparse === null) return 0;
  return entry.sparse.segments.reduce((holes, segment) => holes - segment.size, entry.sparse.realSize);
}

/** Pipes a member's body into its writer; on failure, waits until the writer has removed its tmp file. */
async function commit(entry: TarEntry, writer: FileWriter): Promise<void> {
  try {
    await pipeline(entry.body(), writer);
  } catch (err) {
    if (!writer.closed) await new Promise((resolve) => writer.once('close', resolve));
    throw err;
  }
}

/**
 * The store name of a member, or `null` for the archive's root directory
 * (`.` or `./`, as `tar -cf - -C dir .` writes it), which is skipped. A
 * leading `./` is dropped once. Anything but a regular file with a valid
 * store name is refused with `ERR_UNSAFE_ENTRY`.
 */
function entryName(entry: TarEntry): string | null {
  const raw = nameFromBytes(entry.name);
  // GNU tar reads an empty member name as `.`
  if (entry.kind === 'directory' && (raw === '.' || raw === './' || raw === '')) return null;
  if (entry.kind !== 'file') throw unsafe(raw, describeKind(entry));
  const stripped = raw.startsWith('./') ? raw.slice(2) : raw;
  try {
    assertName(stripped);
  } catch (err) {
    throw unsafe(
      raw,
      'its name is not a valid store name (a path, empty, starting with a dot, or over 255 bytes)',
      err,
    );
  }
  return stripped;
}

function describeKind(entry: TarEntry): string {
  if (entry.kind === 'unknown') return `an entry of unknown type ${JSON.stringify(entry.type)}, not a regular file`;
  if (entry.kind === 'multi-volume continuation')
    return 'the continuation of a file from another volume of a multi-volume archive';
  return `a ${entry.kind}, not a regular file`;
}

function unsafe(name: string, why: string, cause?: unknown): FileStoreError {
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
  return new FileStoreError('ERR_UNSAFE_ENTRY', `refused tar entry ${shown}: ${why}`, { cause });
}
