/**
 * Tar import into a store area (the export is in `tar-export.ts`).
 *
 * Entries are taken one at a time from a tar-stream extract; each regular
 * file is piped into a store writer, so it lands atomically, and the next
 * entry is read only after the commit. The first unsafe entry, collision or
 * parse error stops the import; what was committed before stays, and is
 * named on the error.
 */
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import pump from 'pump';
import tarStream, { type Header } from 'tar-stream';
import { FileStoreError } from './errors.js';
import { assertName } from './names.js';
import { BLOCK_SIZE } from './tar-header.js';
import type { FileWriter } from './writer.js';

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

const END_OF_ARCHIVE_SIZE = 2 * BLOCK_SIZE;

/** Counts the bytes of the archive, to tell a complete one from one cut at an entry boundary. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

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
  const counter = new ByteCounter();
  const extract = tarStream.extract();
  let sourceError: Error | undefined;
  let parseError: Error | undefined;
  const onSourceError = (err: Error): void => {
    sourceError ??= err;
  };
  source.on('error', onSourceError);
  extract.on('error', (err: Error) => {
    parseError ??= err;
  });
  const joined = new Promise<Error | undefined>((resolve) => pump(source, counter, extract, resolve));
  let failure: unknown;
  let end = 0;
  try {
    for await (const entry of extract) {
      const name = entryName(entry.header);
      end = entry.offset + BLOCK_SIZE + paddedSize(entry.header.size ?? 0);
      if (name === null) {
        entry.resume();
      } else {
        await writeEntry(entry, openWriter(name, area, overwrite));
        committed.push(name);
      }
      // pump destroys the extract without an error when the source fails, and
      // tar-stream's iterator never settles a next() asked after that: stop here,
      // the source's error is raised below
      if (extract.destroyed) break;
    }
  } catch (err) {
    failure = err;
  }
  const joinError = await joined;
  source.off('error', onSourceError);
  if (sourceError !== undefined) throw sourceError;
  if (parseError !== undefined) throw corrupt(parseError.message, parseError);
  if (failure !== undefined) throw failure;
  if (joinError) throw joinError;
  if (counter.bytes < end + END_OF_ARCHIVE_SIZE) throw corrupt('the archive ends without its end-of-archive blocks');
}

function corrupt(what: string, cause?: Error): FileStoreError {
  return new FileStoreError('ERR_CORRUPT_ARCHIVE', `corrupt or truncated tar archive: ${what}`, { cause });
}

function paddedSize(size: number): number {
  return Math.ceil(size / BLOCK_SIZE) * BLOCK_SIZE;
}

/**
 * The store name of an entry, or `null` for the archive's root directory
 * (`.` or `./`, as `tar -cf - -C dir .` writes it), which is skipped. A
 * leading `./` is dropped once. Anything but a regular file with a valid
 * store name is refused with `ERR_UNSAFE_ENTRY`.
 */
function entryName(header: Header): string | null {
  const { type, name } = header;
  if (type === 'directory' && (name === '.' || name === './')) return null;
  if (type !== 'file' && type !== 'contiguous-file') {
    throw unsafe(name, `a ${type ?? 'unknown'} entry`);
  }
  const stripped = name.startsWith('./') ? name.slice(2) : name;
  try {
    assertName(stripped);
  } catch (err) {
    throw unsafe(name, 'not a valid store name', err);
  }
  return stripped;
}

function unsafe(name: string, why: string, cause?: unknown): FileStoreError {
  const shown = JSON.stringify(name.length > 64 ? `${name.slice(0, 64)}...` : name);
  return new FileStoreError('ERR_UNSAFE_ENTRY', `refused tar entry ${shown}: ${why}`, { cause });
}

function writeEntry(entry: object, writer: FileWriter): Promise<void> {
  return new Promise((resolve, reject) => {
    pump(entry as NodeJS.ReadableStream, writer, (err) => (err ? reject(err) : resolve()));
  });
}
