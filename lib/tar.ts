/**
 * Tar export and import of a store area.
 *
 * Export: one driver loop takes names one at a time (from the caller or from
 * the area's streamed listing), opens the file, and writes it into a
 * tar-stream pack entry in chunks read at explicit offsets, waiting for the
 * entry to drain before reading on. So one file descriptor and a few
 * high-water marks of data are all it holds, and a slow consumer pauses the
 * reads. The loop owns every failure and destroys the returned stream with it
 * before anything else is torn down, so the consumer sees the real error
 * (`EACCES`, `ERR_FILE_CHANGED`, ...), never a bare premature close. The entry
 * header carries the size fstat gave for the open descriptor, and exactly that
 * many bytes follow it or the stream fails: a file that grows or shrinks
 * while it is read never yields a corrupt archive.
 *
 * Import: entries are taken one at a time from a tar-stream extract; each
 * regular file is piped into a store writer, so it lands atomically, and the
 * next entry is read only after the commit. The first unsafe entry, collision
 * or parse error stops the import; what was committed before stays, and is
 * named on the error.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import pump from 'pump';
import tarStream, { type Header, type Pack } from 'tar-stream';
import { FileStoreError } from './errors.js';
import { assertArea, assertName, type Area } from './names.js';
import type { FileStore } from './store.js';
import type { FileWriter } from './writer.js';

/** Options of {@link FileStore.exportTar}. */
export interface ExportTarOptions {
  /**
   * The names to export, in this order, instead of every file of the area.
   * Each is validated when its turn comes; an invalid one destroys the stream
   * with `ERR_INVALID_NAME`.
   * @default every file of the area, as {@link FileStore.list} yields them
   */
  names?: Iterable<string> | AsyncIterable<string>;
}

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

type Sink = ReturnType<Pack['entry']>;

const CHUNK_SIZE = 64 * 1024;
const BLOCK_SIZE = 512;
const END_OF_ARCHIVE_SIZE = 2 * BLOCK_SIZE;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** A file that vanished (`ENOENT`) or is a symlink (`ELOOP` under `O_NOFOLLOW`) is skipped. */
const SKIPPED_ON_OPEN = new Set(['ENOENT', 'ELOOP']);

/** The tar stream of {@link FileStore.exportTar}. */
export function exportTar(store: FileStore, area: Area, options: ExportTarOptions = {}): Readable {
  assertArea(area);
  const { names } = options;
  if (names !== undefined && !isIterable(names)) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option names must be an iterable or async iterable of strings');
  }
  const pack = tarStream.pack();
  const out = new PassThrough();
  pump(pack as unknown as NodeJS.ReadableStream, out);
  packFiles(store, area, names ?? areaNames(store, area), pack, out).catch((err: unknown) => out.destroy(err as Error));
  return out;
}

async function* areaNames(store: FileStore, area: Area): AsyncGenerator<string> {
  for await (const entry of store.list(area)) yield entry.name;
}

async function packFiles(
  store: FileStore,
  area: Area,
  names: Iterable<string> | AsyncIterable<string>,
  pack: Pack,
  out: PassThrough,
): Promise<void> {
  for await (const name of names) {
    if (out.destroyed) return;
    await packFile(store.path(name, area), name, pack, out);
  }
  if (!out.destroyed) pack.finalize();
}

async function packFile(path: string, name: string, pack: Pack, out: PassThrough): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(path, OPEN_FLAGS);
  } catch (err) {
    if (SKIPPED_ON_OPEN.has((err as NodeJS.ErrnoException).code ?? '')) return;
    throw err;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile() || out.destroyed) return;
    const size = stats.size;
    let entryDone!: Promise<Error | null | undefined>;
    const sink = new Promise<Sink>((resolve) => {
      entryDone = new Promise((done) => {
        resolve(pack.entry({ name, size, mode: stats.mode & 0o7777, mtime: stats.mtime, type: 'file' }, done));
      });
    });
    const entry = await sink;
    entry.on('error', ignore); // a destroyed entry also reports through entryDone
    await copyInto(handle, size, entry, path, out);
    const err = await entryDone;
    if (err && !out.destroyed) throw err;
  } finally {
    await handle.close();
  }
}

/**
 * Writes exactly `size` bytes of the file into the entry. The last read asks
 * for one byte more than is left, so a file that grew is noticed without
 * another fstat; a read that finds the end early means the file shrank.
 */
async function copyInto(handle: FileHandle, size: number, sink: Sink, path: string, out: PassThrough): Promise<void> {
  let position = 0;
  for (;;) {
    const left = size - position;
    const length = left < CHUNK_SIZE ? left + 1 : CHUNK_SIZE;
    const buffer = Buffer.allocUnsafe(length);
    const { bytesRead } = await handle.read(buffer, 0, length, position);
    if (out.destroyed) return;
    if (bytesRead > left) throw fileChanged(path, 'grew');
    if (bytesRead === 0 && left > 0) throw fileChanged(path, 'shrank');
    position += bytesRead;
    if (bytesRead > 0 && !sink.write(buffer.subarray(0, bytesRead))) await drained(sink);
    if (out.destroyed) return;
    if (position === size && length > left) break;
  }
  sink.end(undefined);
}

function ignore(): void {}

function fileChanged(path: string, how: string): FileStoreError {
  return new FileStoreError('ERR_FILE_CHANGED', `file ${how} while it was being exported: ${path}`, { path });
}

/** Resolves when the entry can take more data, or is gone. */
function drained(sink: Sink): Promise<void> {
  return new Promise((resolve) => {
    if (sink.destroying) return resolve();
    const done = (): void => {
      sink.off('drain', done);
      sink.off('close', done);
      resolve();
    };
    sink.on('drain', done);
    sink.on('close', done);
  });
}

function isIterable(value: unknown): value is Iterable<string> | AsyncIterable<string> {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof candidate[Symbol.iterator] === 'function' || typeof candidate[Symbol.asyncIterator] === 'function';
}

/** Counts the bytes of the archive, to tell a complete one from one cut at an entry boundary. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}

/** The import of {@link FileStore.importTar}; `openWriter` makes the writer of each file. */
export async function importTar(source: Readable, options: ImportTarOptions, openWriter: OpenWriter): Promise<string[]> {
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
  if (typeof overwrite !== 'boolean') throw new FileStoreError('ERR_INVALID_OPTION', 'option overwrite must be a boolean');
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
        continue;
      }
      await writeEntry(entry, openWriter(name, area, overwrite));
      committed.push(name);
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
