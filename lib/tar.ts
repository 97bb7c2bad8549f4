/**
 * Tar export and import of a store area.
 *
 * Export: one driver loop takes names (from the caller or from the area's
 * streamed listing) and writes each file into a tar-stream pack entry in
 * chunks read at explicit offsets, waiting for the entry to drain before
 * reading on. Small files cost a thread-pool round trip per open, fstat, read
 * and close, so up to READ_AHEAD files are opened and read (one chunk each)
 * ahead of the one being packed; larger files stream one at a time. `fstat`
 * and `close` of a descriptor opened read-only do not wait on the disk, and
 * on a busy machine each thread-pool round trip costs far more than these
 * syscalls, so they run synchronously; `open` and `read`, which can wait on
 * the disk, go through the thread pool. Memory
 * is bounded by READ_AHEAD chunks plus the streams' high-water marks, and a
 * slow consumer pauses the reads. The loop owns every failure and destroys the returned stream with it
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
import { closeSync, constants, fstatSync, open, read, type Stats } from 'node:fs';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { promisify } from 'node:util';
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

const CHUNK_SIZE = 128 * 1024;
/** Files opened, stat'ed and read (up to one chunk each) ahead of the one being packed. */
const READ_AHEAD = 16;
const BLOCK_SIZE = 512;
const END_OF_ARCHIVE_SIZE = 2 * BLOCK_SIZE;
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** A file that vanished (`ENOENT`) or is a symlink (`ELOOP` under `O_NOFOLLOW`) is skipped. */
const SKIPPED_ON_OPEN = new Set(['ENOENT', 'ELOOP']);

const openFile = promisify(open);

/** Reads into `buffer` at `position`; resolves with the number of bytes read. */
function readAt(fd: number, buffer: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    read(fd, buffer, 0, buffer.length, position, (err, bytesRead) => (err ? reject(err) : resolve(bytesRead)));
  });
}

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

/** A file opened and read up to its first chunk, waiting for its turn in the archive. */
interface OpenedFile {
  name: string;
  path: string;
  fd: number;
  stats: Stats;
  /** The first bytes, up to `CHUNK_SIZE`, or the whole file and one byte more when it is smaller. */
  head: Buffer;
}

async function packFiles(
  store: FileStore,
  area: Area,
  names: Iterable<string> | AsyncIterable<string>,
  pack: Pack,
  out: PassThrough,
): Promise<void> {
  const ahead: Array<Promise<OpenedFile | null>> = [];
  try {
    for await (const name of names) {
      if (out.destroyed) return;
      const opened = openAhead(store.path(name, area), name);
      opened.catch(ignore); // its error is raised when its turn comes
      ahead.push(opened);
      if (ahead.length >= READ_AHEAD) await packFile(await (ahead.shift() as Promise<OpenedFile | null>), pack, out);
    }
    while (ahead.length > 0 && !out.destroyed) await packFile(await (ahead.shift() as Promise<OpenedFile | null>), pack, out);
    if (!out.destroyed) pack.finalize();
  } finally {
    for (const opened of ahead) opened.then((file) => file && closeQuietly(file.fd), ignore);
  }
}

/** Opens, stats and reads the head of a file; `null` when it is to be skipped. */
async function openAhead(path: string, name: string): Promise<OpenedFile | null> {
  let fd: number;
  try {
    fd = await openFile(path, OPEN_FLAGS);
  } catch (err) {
    if (SKIPPED_ON_OPEN.has((err as NodeJS.ErrnoException).code ?? '')) return null;
    throw err;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) {
      closeQuietly(fd);
      return null;
    }
    const head = Buffer.allocUnsafe(stats.size < CHUNK_SIZE ? stats.size + 1 : CHUNK_SIZE);
    const bytesRead = await readAt(fd, head, 0);
    return { name, path, fd, stats, head: head.subarray(0, bytesRead) };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

async function packFile(file: OpenedFile | null, pack: Pack, out: PassThrough): Promise<void> {
  if (file === null) return;
  try {
    if (out.destroyed) return;
    const { name, stats } = file;
    if (stats.size < CHUNK_SIZE && file.head.length === stats.size) {
      // the whole file, and the read past its end found nothing more: one entry with its body
      const header = { name, size: stats.size, mode: stats.mode & 0o7777, mtime: stats.mtime, type: 'file' as const };
      const err = await new Promise<Error | null | undefined>((done) => pack.entry(header, file.head, done));
      if (err && !out.destroyed) throw err;
      return;
    }
    let entryDone!: Promise<Error | null | undefined>;
    const sink = new Promise<Sink>((resolve) => {
      entryDone = new Promise((done) => {
        resolve(pack.entry({ name, size: stats.size, mode: stats.mode & 0o7777, mtime: stats.mtime, type: 'file' }, done));
      });
    });
    const entry = await sink;
    entry.on('error', ignore); // a destroyed entry also reports through entryDone
    await copyInto(file, entry, out);
    const err = await entryDone;
    if (err && !out.destroyed) throw err;
  } finally {
    closeQuietly(file.fd);
  }
}

/**
 * Writes exactly the file's fstat size into the entry, starting with the
 * head read ahead. The last read asks for one byte more than is left, so a
 * file that grew is noticed without another fstat; a read that finds the end
 * early means the file shrank.
 */
async function copyInto(file: OpenedFile, sink: Sink, out: PassThrough): Promise<void> {
  const { fd, path } = file;
  const size = file.stats.size;
  let chunk = file.head;
  let asked = size < CHUNK_SIZE ? size + 1 : CHUNK_SIZE;
  let position = 0;
  for (;;) {
    const left = size - position;
    if (chunk.length > left) throw fileChanged(path, 'grew');
    if (chunk.length === 0 && left > 0) throw fileChanged(path, 'shrank');
    position += chunk.length;
    if (chunk.length > 0 && !sink.write(chunk)) await drained(sink);
    if (out.destroyed) return;
    if (position === size && asked > left) break;
    const rest = size - position;
    asked = rest < CHUNK_SIZE ? rest + 1 : CHUNK_SIZE;
    const buffer = Buffer.allocUnsafe(asked);
    const bytesRead = await readAt(fd, buffer, position);
    if (out.destroyed) return;
    chunk = buffer.subarray(0, bytesRead);
  }
  sink.end(undefined);
}

function ignore(): void {}

/** Closes a descriptor opened read-only: nothing is flushed, so a failing close loses nothing. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // nothing was written through this descriptor
  }
}

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
