/**
 * Tar export of a store area.
 *
 * One loop takes the names (from the caller, or from the area's streamed
 * listing) in batches and writes the archive into the returned stream,
 * waiting whenever the consumer has enough buffered: a slow consumer pauses
 * the reads, and memory stays bounded whatever the size of files.
 *
 * Each name goes into the archive once: a directory read may return a name
 * twice (tmpfs does, when a file is renamed over the entry a read is to
 * resume at: up to 35,047 repeated entries in one export of 3,000 files),
 * and such an archive cannot be imported back. So the names taken are kept
 * in a set, the one part of the export's memory that grows with the number
 * of files.
 *
 * Small files are read by the reader thread (`reader.ts`), a batch at a
 * time, BATCHES_AHEAD batches ahead of the one being written; each batch of
 * them goes into the archive as one chunk. The first batch is read here
 * instead, so an export of a few files never starts the thread, and so is
 * every batch where the process may not start threads. Files too big for a batch are opened and streamed
 * here, in chunks read at explicit offsets, READ_AHEAD of them opened (and
 * their first chunk read) ahead of the one being written. `fstat` and `close`
 * of a descriptor opened read-only do not wait on the disk and run
 * synchronously; `open` and `read`, which can, go through the thread pool.
 *
 * The loop owns every failure and destroys the stream with it, so the
 * consumer sees the real error (`EACCES`, `ERR_FILE_CHANGED`, ...). An entry
 * header carries the size fstat gave for the open descriptor, and exactly
 * that many bytes follow it or the stream fails: a file that grows or shrinks
 * while it is read never yields a corrupt archive.
 */
import { closeSync, constants, fstatSync, open, read, type Stats } from 'node:fs';
import { sep } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { FileStoreError } from '../errors.js';
import type { AreaListing } from '../listing.js';
import { assertName, fsPath } from '../names.js';
import { BLOCK_SIZE, fileHeader, padding, ZEROS } from './header.js';
import { BATCH_NAMES, batchError, Kind, readerThread, RECORD_FIELDS, type Batch, type ErrorInfo } from './reader.js';

/** Options of `FileStore.exportTar()`. */
export interface ExportTarOptions {
  /**
   * The names to export, in this order, instead of every file of the area.
   * Each is validated when its turn comes; an invalid one destroys the stream
   * with `ERR_INVALID_NAME`. A name given again is exported once, where it
   * first came.
   * @default every file of the area, as `FileStore.list()` yields them
   */
  names?: Iterable<string> | AsyncIterable<string>;
}

const CHUNK_SIZE = 128 * 1024;
/** Large files opened, stat'ed and read (up to one chunk each) ahead of the one being written. */
const READ_AHEAD = 16;
/** Batches of small files being read by the reader thread ahead of the one being written. */
const BATCHES_AHEAD = 4;
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

/**
 * The tar stream of `FileStore.exportTar()`: the files of the area directory
 * `dir`, named by `options.names` or else by `listed` (the area's listing).
 */
export function exportTar(dir: string, listed: () => AreaListing, options: ExportTarOptions = {}): Readable {
  const { names } = options;
  if (names !== undefined && !isIterable(names)) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option names must be an iterable or async iterable of strings');
  }
  const out = new Archive();
  writeArchive(dir, names === undefined ? new ListedBatches(listed()) : new NameBatches(names), out).then(
    () => out.finish(),
    (err: unknown) => out.destroy(err as Error),
  );
  return out;
}

/** The archive as the loop writes it: a readable stream it pushes into, waiting while the consumer has enough. */
class Archive extends Readable {
  #wanted: (() => void) | null = null;

  /** Adds a chunk; resolves when the consumer wants more, or at once when it does already. */
  async add(chunk: Buffer): Promise<void> {
    if (this.destroyed || this.push(chunk)) return;
    await new Promise<void>((resolve) => {
      this.#wanted = resolve;
    });
  }

  /** Ends the archive with its two zero blocks. */
  finish(): void {
    if (this.destroyed) return;
    this.push(Buffer.alloc(2 * BLOCK_SIZE));
    this.push(null);
  }

  override _read(): void {
    this.#wake();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    this.#wake();
    callback(err);
  }

  #wake(): void {
    const wanted = this.#wanted;
    this.#wanted = null;
    wanted?.();
  }
}

/** Where the loop takes its names from, a batch at a time. */
interface NameSource {
  /** No more names: the source ended, was closed, or failed (`error`). */
  readonly done: boolean;
  /** The invalid name that ended the source, raised after the files named before it. */
  readonly error: unknown;
  take(wait: boolean): Promise<string[]>;
  close(): void;
}

async function writeArchive(dir: string, source: NameSource, out: Archive): Promise<void> {
  const reading: Array<{ names: string[]; batch: Promise<Batch> }> = [];
  let first = true;
  try {
    for (;;) {
      while (reading.length < BATCHES_AHEAD && !source.done) {
        const names = await source.take(reading.length === 0);
        if (names.length === 0) break;
        // The first batch is read here, so an export of a few files never starts the thread
        const onThread = !first && readerThread.start();
        const batch = onThread ? readerThread.read(dir, names) : Promise.resolve(onMainThread(names));
        first = false;
        batch.catch(ignore); // its error is raised when its turn comes
        reading.push({ names, batch });
      }
      if (out.destroyed) break;
      const next = reading.shift();
      if (next === undefined) {
        if (source.done) break;
        // a run of names exported already: let other events (a destroy()) run before taking more
        await nextTurn();
        continue;
      }
      await writeBatch(dir, next.names, await next.batch, out);
      if (out.destroyed) return;
    }
    if (source.error !== undefined) throw source.error;
  } finally {
    source.close();
  }
}

/** A batch left whole to this thread's reads. */
function onMainThread(names: string[]): Batch {
  return { records: new Float64Array(names.length * RECORD_FIELDS).fill(Kind.Large), data: new ArrayBuffer(0) };
}

/**
 * Takes the names to export in batches: as many as are at hand at once, up
 * to BATCH_NAMES, so a slow source of names is not waited on while files are
 * ready to write. Each name is validated as it is taken; an invalid one ends
 * the names, and its error is raised after the files named before it. A name
 * taken before is dropped; it still counts towards the BATCH_NAMES a batch
 * draws, so a source that repeats names forever yields empty batches, never
 * a loop that does not return.
 */
class NameBatches implements NameSource {
  done = false;
  error: unknown;
  readonly #iterator: Iterator<string> | AsyncIterator<string>;
  readonly #taken = new Set<string>();
  #pending: Promise<IteratorResult<string>> | IteratorResult<string> | null = null;
  /** The iterator said it is done: nothing to close. */
  #ended = false;

  constructor(names: Iterable<string> | AsyncIterable<string>) {
    this.#iterator =
      Symbol.asyncIterator in names ? names[Symbol.asyncIterator]() : (names as Iterable<string>)[Symbol.iterator]();
  }

  /**
   * The next batch; empty when no name is at hand and `wait` is false, when
   * the names ended, or when every one of the BATCH_NAMES it drew was taken
   * before.
   */
  async take(wait: boolean): Promise<string[]> {
    const batch: string[] = [];
    let turn = wait ? null : nextTurn();
    for (let drawn = 0; drawn < BATCH_NAMES && !this.done; drawn++) {
      this.#pending ??= this.#iterator.next();
      const result = turn === null ? await this.#pending : await Promise.race([this.#pending, turn]);
      if (result === LATE) break;
      this.#pending = null;
      if (result.done) {
        this.done = this.#ended = true;
        break;
      }
      try {
        assertName(result.value);
      } catch (err) {
        this.error = err;
        this.done = true;
        break;
      }
      if (!firstTime(this.#taken, result.value)) continue;
      batch.push(result.value);
      turn ??= nextTurn();
    }
    return batch;
  }

  /** Ends the names early (the export stopped, or a name was invalid): the iterator's `return()` is called. */
  close(): void {
    if (this.#ended) return;
    this.done = this.#ended = true;
    Promise.resolve(this.#pending)
      .then(() => this.#iterator.return?.())
      .catch(ignore);
  }
}

/**
 * The names of the area's listing, up to BATCH_NAMES at once as the listing
 * has them buffered: one promise a batch, where {@link NameBatches} awaits
 * each name (its `take` was the main thread's largest cost in a profiled
 * export of 10,000 small files: 20 ms of about 100). A listed name is a store
 * name as it is, so it is not checked again; a name the directory read
 * repeats is dropped.
 */
class ListedBatches implements NameSource {
  done = false;
  readonly error: unknown = undefined;
  readonly #listing: AreaListing;
  readonly #taken = new Set<string>();

  constructor(listing: AreaListing) {
    this.#listing = listing;
  }

  async take(): Promise<string[]> {
    const entries = await this.#listing.take(BATCH_NAMES);
    if (entries.length === 0) this.done = true;
    const batch: string[] = [];
    for (const { name } of entries) if (firstTime(this.#taken, name)) batch.push(name);
    return batch;
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.#listing.return().catch(ignore);
  }
}

/** Whether `name` is new to `taken`, which then holds it. */
function firstTime(taken: Set<string>, name: string): boolean {
  if (taken.has(name)) return false;
  taken.add(name);
  return true;
}

const LATE = Symbol('late');

/** Resolves after the events at hand have run: names not yet at hand by then wait for the next batch. */
function nextTurn(): Promise<typeof LATE> {
  return new Promise((resolve) => setImmediate(resolve, LATE));
}

/**
 * Writes one batch: the files read whole go out as one chunk, headers and
 * padding included; large ones are opened and streamed here, READ_AHEAD at a
 * time.
 */
async function writeBatch(dir: string, names: string[], batch: Batch, out: Archive): Promise<void> {
  const { records, data } = batch;
  const count = records.length / RECORD_FIELDS;
  const large: number[] = [];
  for (let index = 0; index < count; index++) if (records[index * RECORD_FIELDS] === Kind.Large) large.push(index);
  const opening = new Map<number, Promise<OpenedFile | null>>();
  let opened = 0;
  let parts: Buffer[] = [];
  try {
    for (let index = 0; index < count && !out.destroyed; index++) {
      const at = index * RECORD_FIELDS;
      const kind = records[at];
      const name = names[index] as string;
      if (kind === Kind.Read) {
        const offset = records[at + 1] as number;
        const size = records[at + 2] as number;
        const mode = (records[at + 3] as number) & 0o7777;
        parts.push(fileHeader(name, size, mode, new Date(records[at + 4] as number)), Buffer.from(data, offset, size));
        if (padding(size) > 0) parts.push(ZEROS.subarray(0, padding(size)));
        continue;
      }
      if (kind === Kind.Skip) continue;
      if (parts.length > 0) await out.add(Buffer.concat(parts));
      parts = [];
      if (kind === Kind.Large) {
        for (; opened < large.length && opening.size < READ_AHEAD; opened++) {
          const next = large[opened] as number;
          const file = openAhead(dir + sep + (names[next] as string));
          file.catch(ignore); // its error is raised when its turn comes
          opening.set(next, file);
        }
        const file = opening.get(index) as Promise<OpenedFile | null>;
        opening.delete(index);
        await writeFile(name, await file, out);
      } else if (kind === Kind.Grew || kind === Kind.Shrank) {
        throw fileChanged(dir + sep + name, kind === Kind.Grew ? 'grew' : 'shrank');
      } else if (kind === Kind.Failed) {
        throw batchError(batch.error as ErrorInfo);
      }
    }
    if (parts.length > 0) await out.add(Buffer.concat(parts));
  } finally {
    for (const file of opening.values()) file.then((opened) => opened && closeQuietly(opened.fd), ignore);
  }
}

/** A file opened and read up to its first chunk, waiting for its turn in the archive. */
interface OpenedFile {
  path: string;
  fd: number;
  stats: Stats;
  /** The first bytes, up to `CHUNK_SIZE`, or the whole file and one byte more when it is smaller. */
  head: Buffer;
}

/** Opens, stats and reads the head of a file; `null` when it is to be skipped. */
async function openAhead(path: string): Promise<OpenedFile | null> {
  let fd: number;
  try {
    fd = await openFile(fsPath(path), OPEN_FLAGS);
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
    return { path, fd, stats, head: head.subarray(0, bytesRead) };
  } catch (err) {
    closeQuietly(fd);
    throw err;
  }
}

/**
 * Writes one file: its header, then exactly its fstat size, starting with the
 * head read ahead, then the padding. The last read asks for one byte more
 * than is left, so a file that grew is noticed without another fstat; a read
 * that finds the end early means the file shrank.
 */
async function writeFile(name: string, file: OpenedFile | null, out: Archive): Promise<void> {
  if (file === null) return;
  const { fd, path, stats } = file;
  const { size } = stats;
  try {
    if (out.destroyed) return;
    await out.add(fileHeader(name, size, stats.mode & 0o7777, stats.mtime));
    let chunk = file.head;
    let asked = size < CHUNK_SIZE ? size + 1 : CHUNK_SIZE;
    let position = 0;
    for (;;) {
      const left = size - position;
      if (chunk.length > left) throw fileChanged(path, 'grew');
      if (chunk.length === 0 && left > 0) throw fileChanged(path, 'shrank');
      position += chunk.length;
      if (chunk.length > 0) await out.add(chunk);
      if (out.destroyed) return;
      if (position === size && asked > left) break;
      const rest = size - position;
      asked = rest < CHUNK_SIZE ? rest + 1 : CHUNK_SIZE;
      const buffer = Buffer.allocUnsafe(asked);
      const bytesRead = await readAt(fd, buffer, position);
      if (out.destroyed) return;
      chunk = buffer.subarray(0, bytesRead);
    }
    // a buffer of its own: a consumer may reuse the chunks it is given
    if (padding(size) > 0) await out.add(Buffer.alloc(padding(size)));
  } finally {
    closeQuietly(fd);
  }
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

function isIterable(value: unknown): value is Iterable<string> | AsyncIterable<string> {
  if (typeof value !== 'object' || value === null) return false;
  const candidate = value as { [Symbol.iterator]?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof candidate[Symbol.iterator] === 'function' || typeof candidate[Symbol.asyncIterator] === 'function';
}
