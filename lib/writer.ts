/**
 * The Writable behind `FileStore.create()`.
 *
 * Data goes to a private file in `tmp/`, opened exclusively in `_construct`.
 * `_final` fsyncs and closes it, puts it at its target name (in `new/`, or in
 * `tmp/` for `commit: false`) and fsyncs the target directory, all before
 * the stream emits `'finish'`: so `pipeline()` resolving means "committed",
 * and a failed commit surfaces as `'error'`. `_destroy` closes the file and
 * unlinks the private file unless it was already put in place. An operation
 * in flight when `destroy()` is called finishes first, so the descriptor is
 * never closed under a pending write.
 *
 * At durability `none` a writer first keeps its bytes in memory: a file that
 * ends within `SMALL_FILE_MAX` is committed whole by the commit thread (see
 * commit-thread.ts), with no file in `tmp/` before `_final`. A file that
 * grows past it, a writer past the thread's caps, or a commit the thread
 * hands back goes to its file through the thread pool as above.
 *
 * At durability `full` the writer holds a descriptor of the target directory
 * from `_construct` on, so the directory fsync after the rename needs no new
 * one. Should that fsync fail, the commit is taken back, but never so that
 * the name is left without a version: an overwrite first keeps a hard link
 * to the version it replaces in `tmp/` and puts it back; where no such link
 * can be made, the new version stays and the error (`ERR_COMMIT_NOT_DURABLE`)
 * says so.
 */
import {
  close,
  constants,
  fstatSync,
  fsync,
  ftruncate,
  link,
  lstat,
  open,
  rename,
  unlink,
  write,
  writev,
  type Stats,
} from 'node:fs';
import { dirname } from 'node:path';
import { Writable } from 'node:stream';
import { commitThread, SMALL_FILE_MAX, type CommitRequest } from './commit-thread.js';
import { holdDirectory, syncDirectory, type Durability } from './durability.js';
import { FileStoreError } from './errors.js';
import { holeSize } from './hole.js';
import { fsPath, hasEscapedBytes } from './names.js';
import { place } from './place.js';

type Callback = (err?: Error | null) => void;

/** How a writer gets its file to the target name. Built by `FileStore.create()`. */
export interface WriterPlan {
  /** The file's name in its target area. */
  name: string;
  /** The private file the data is written to. */
  tmpPath: string;
  /** Where the file ends up on `'finish'`; equal to `tmpPath` when no move is needed. */
  targetPath: string;
  /** Whether an existing file at `targetPath` may be replaced. */
  overwrite: boolean;
  durability: Durability;
  mode: number;
  /**
   * Where the version an overwrite replaces is kept (a hard link in `tmp/`)
   * until the commit is durable, so a failed commit can put it back; `null`
   * when nothing is replaced or nothing is fsynced.
   */
  asidePath: string | null;
}

/** What an overwrite kept of the version it replaces: nothing (there was none), a link, or the error that prevented one. */
type Aside = 'none' | 'kept' | NodeJS.ErrnoException;

const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
const ABORTED = new Error('writer destroyed during commit');

/**
 * A `node:stream` Writable that writes one file into a store and commits it
 * atomically before `'finish'`. Any error or `destroy()` before the commit
 * removes the temporary file and leaves the target area untouched.
 */
export class FileWriter extends Writable {
  /** The file's name (generated when the caller gave none). */
  readonly name: string;
  readonly #plan: WriterPlan;
  #path: string;
  #fd: number | null = null;
  #tmpExists = false;
  #busy = false;
  #whenIdle: (() => void) | null = null;
  /** Copies of the bytes written so far while the writer buffers; null once it writes to its file. */
  #buffer: Buffer[] | null = null;
  #buffered = 0;
  #releaseDirectory: (() => void) | null = null;
  #aside: Aside = 'none';
  /** Where the next bytes go: the bytes written and the holes skipped so far. */
  #position = 0;
  /** The end of the bytes written; short of `#position` when the file ends in a hole. */
  #dataEnd = 0;

  /** @internal Use `FileStore.create()`. */
  constructor(plan: WriterPlan) {
    super();
    this.name = plan.name;
    this.#plan = plan;
    this.#path = plan.tmpPath;
    // the thread takes paths as text, so a name that is not UTF-8 on disk goes through the thread pool
    if (plan.durability === 'none' && !hasEscapedBytes(plan.targetPath) && commitThread.admit()) this.#buffer = [];
  }

  /**
   * Where the file is now: its temporary path until committed, then its
   * target path. A small file at durability `none` has no file at the
   * temporary path before the commit: its bytes wait in memory.
   */
  get path(): string {
    return this.#path;
  }

  override _construct(cb: Callback): void {
    if (this.#buffer !== null) return cb();
    this.#run((done) => {
      if (this.#plan.durability !== 'full') return this.#open(done);
      holdDirectory(dirname(this.#plan.targetPath), (err, release) => {
        if (err) return done(err);
        this.#releaseDirectory = release;
        this.#open(done);
      });
    }, cb);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: Callback): void {
    this.#take([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: Callback): void {
    this.#take(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  #take(buffers: Buffer[], cb: Callback): void {
    if (this.#buffer === null) return this.#run((done) => this.#put(buffers, done), cb);
    const held = withZeros(buffers, SMALL_FILE_MAX - this.#buffered);
    if (held !== null && this.#hold(held)) return cb();
    this.#spill(buffers, cb);
  }

  /** Writes `buffers` at the writer's position; a hole chunk among them moves the position on instead. */
  #put(buffers: Buffer[], done: Callback): void {
    const holeAt = buffers.findIndex((buffer) => holeSize(buffer) > 0);
    if (holeAt === -1) return this.#putData(buffers, done);
    this.#putData(buffers.slice(0, holeAt), (err) => {
      if (err) return done(err);
      this.#position += holeSize(buffers[holeAt] as Buffer);
      const rest = buffers.slice(holeAt + 1);
      if (rest.length === 0) return done(null);
      this.#put(rest, done);
    });
  }

  #putData(buffers: Buffer[], done: Callback): void {
    if (buffers.length === 0) return done(null);
    let bytes = 0;
    for (const buffer of buffers) bytes += buffer.length;
    const at = this.#position;
    writeAll(this.#fd as number, buffers, at, (err) => {
      if (!err) this.#position = this.#dataEnd = at + bytes;
      done(err);
    });
  }

  override _final(cb: Callback): void {
    if (this.#buffer === null) this.#commitFile(cb);
    else this.#commitBuffered(cb);
  }

  #open(done: Callback): void {
    open(this.#plan.tmpPath, OPEN_FLAGS, this.#plan.mode, (err, fd) => {
      if (!err) {
        this.#fd = fd;
        this.#tmpExists = true;
      }
      done(err);
    });
  }

  /** Keeps copies of `chunks` in memory; false when the file or the process-wide budget would grow too big. */
  #hold(chunks: Buffer[]): boolean {
    let bytes = 0;
    for (const chunk of chunks) bytes += chunk.length;
    if (this.#buffered + bytes > SMALL_FILE_MAX || !commitThread.reserve(bytes)) return false;
    this.#buffered += bytes;
    // copies: the caller may reuse its buffers once the write has called back
    for (const chunk of chunks) (this.#buffer as Buffer[]).push(Buffer.from(chunk));
    return true;
  }

  /** Stops buffering: gives back the buffering slot and budget, and returns what was held. */
  #release(): Buffer[] {
    const held = this.#buffer ?? [];
    commitThread.leave(this.#buffered);
    this.#buffer = null;
    this.#buffered = 0;
    return held;
  }

  /** Goes over to the file: opens it and writes what was held, then `more`. */
  #spill(more: Buffer[], cb: Callback): void {
    const chunks = [...this.#release(), ...more];
    const steps: Array<(done: Callback) => void> = [(done) => this.#open(done)];
    if (chunks.length > 0) steps.push((done) => this.#put(chunks, done));
    this.#sequence(steps, cb);
  }

  /** The whole commit on the commit thread, or through the thread pool when the thread does not take it or hands it back. */
  #commitBuffered(cb: Callback): void {
    const { tmpPath, targetPath, overwrite, mode } = this.#plan;
    const request: CommitRequest = {
      tmpPath,
      targetPath,
      overwrite,
      mode,
      chunks: this.#buffer as Buffer[],
      bytes: this.#buffered,
    };
    const throughPool = (): void => this.#spill([], (err) => (err ? cb(err) : this.#commitFile(cb)));
    this.#busy = true;
    const taken = commitThread.commit(request, (outcome) => {
      if (outcome === 'rerouted') {
        this.#settle();
        return this.destroyed ? cb(ABORTED) : throughPool();
      }
      this.#release();
      if (outcome === null) this.#path = targetPath;
      // the thread ended mid-commit and may have left its tmp file: _destroy removes it
      else if ((outcome as NodeJS.ErrnoException).code === 'ERR_COMMIT_THREAD_EXITED') this.#tmpExists = true;
      this.#settle();
      cb(outcome);
    });
    if (taken) return;
    this.#busy = false;
    throughPool();
  }

  #commitFile(cb: Callback): void {
    const { durability, tmpPath, targetPath, overwrite, asidePath } = this.#plan;
    const fd = this.#fd as number;
    const steps: Array<(done: Callback) => void> = [];
    // a file that ends in a hole: its size is set, its last bytes never written
    if (this.#position > this.#dataEnd) steps.push((done) => ftruncate(fd, this.#position, done));
    if (durability !== 'none') steps.push((done) => fsync(fd, done));
    let written: Stats | null = null;
    steps.push((done) => {
      // the file's identity, to take it back should the directory fsync fail; fstat
      // of an open descriptor answers from memory, so it skips the thread pool
      if (durability === 'full') written = identity(fd);
      this.#fd = null;
      close(fd, done);
    });
    if (asidePath !== null) steps.push((done) => this.#keepAside(done));
    if (targetPath !== tmpPath) {
      steps.push((done) =>
        place(tmpPath, targetPath, overwrite, (err) => {
          if (!err) this.#tmpExists = false;
          if ((err as NodeJS.ErrnoException | null)?.code !== 'ENOENT') return done(err);
          explainMissing(err as NodeJS.ErrnoException, tmpPath, targetPath, done);
        }),
      );
    }
    steps.push((done) => {
      this.#tmpExists = false;
      this.#path = targetPath;
      if (durability !== 'full') return done(null);
      syncDirectory(dirname(targetPath), (err) => {
        if (err) this.#undo(err, written, done);
        else this.#dropAside(() => done(null));
      });
    });
    this.#sequence(steps, cb);
  }

  /** Links the version the commit will replace to `asidePath`, if there is one. */
  #keepAside(done: Callback): void {
    link(fsPath(this.#plan.targetPath), this.#plan.asidePath as string, (err) => {
      this.#aside = err === null ? 'kept' : err.code === 'ENOENT' ? 'none' : err;
      done(null);
    });
  }

  #dropAside(cb: () => void): void {
    if (this.#aside !== 'kept') return cb();
    this.#aside = 'none';
    unlink(this.#plan.asidePath as string, () => cb());
  }

  /**
   * After a failed directory fsync: puts back the version an overwrite
   * replaced, or removes a file that replaced none; when the replaced
   * version could not be kept, leaves the new one and says so.
   */
  #undo(err: NodeJS.ErrnoException, written: Stats | null, done: Callback): void {
    const aside = this.#aside;
    const { targetPath, asidePath } = this.#plan;
    if (aside === 'none') return takeBack(targetPath, written, () => done(err));
    this.#aside = 'none';
    if (aside !== 'kept') return done(notDurable(targetPath, err, aside));
    restore(asidePath as string, targetPath, written, (restoreErr) =>
      done(restoreErr === null ? err : notDurable(targetPath, err, restoreErr)),
    );
  }

  override _destroy(err: Error | null, cb: Callback): void {
    const cleanup = (): void => {
      if (this.#buffer !== null) this.#release();
      const fd = this.#fd;
      this.#fd = null;
      const removeTmp = (): void => {
        this.#releaseDirectory?.();
        this.#releaseDirectory = null;
        if (!this.#tmpExists) return this.#dropAside(() => cb(err));
        this.#tmpExists = false;
        unlink(this.#plan.tmpPath, () => this.#dropAside(() => cb(err)));
      };
      if (fd === null) removeTmp();
      else close(fd, removeTmp);
    };
    if (this.#busy) this.#whenIdle = cleanup;
    else cleanup();
  }

  /** Runs one file-system operation, marking the writer busy until it calls back. */
  #run(op: (done: Callback) => void, cb: Callback): void {
    this.#busy = true;
    op((err) => {
      this.#settle();
      cb(err);
    });
  }

  /** Marks the writer idle, and runs a `destroy()` that waited for it. */
  #settle(): void {
    this.#busy = false;
    const idle = this.#whenIdle;
    this.#whenIdle = null;
    idle?.();
  }

  /** Runs `steps` one after another through {@link #run}; stops at the first error, or when the writer was destroyed meanwhile. */
  #sequence(steps: Array<(done: Callback) => void>, cb: Callback): void {
    let index = 0;
    const next = (err?: Error | null): void => {
      if (err) return cb(err);
      if (index > 0 && this.destroyed) return cb(ABORTED);
      const step = steps[index++];
      if (step === undefined) return cb();
      this.#run(step, next);
    };
    next();
  }
}

/** The file's stats, or null when they cannot be had (the take-back is then skipped). */
function identity(fd: number): Stats | null {
  try {
    return fstatSync(fd);
  } catch {
    return null;
  }
}

/**
 * Removes a committed file whose directory fsync failed, so a failed write
 * leaves nothing in `new/`; only while `path` still is the file written
 * (a consumer may have claimed it, another writer may have replaced it).
 */
function takeBack(path: string, written: Stats | null, cb: () => void): void {
  if (written === null) return cb();
  const { ino, dev } = written;
  lstat(fsPath(path), (err, now) => {
    if (err || now.ino !== ino || now.dev !== dev) return cb();
    unlink(fsPath(path), () => cb());
  });
}

/**
 * Puts the kept version back at `target` (replacing the new one, atomically)
 * while `target` still is the file written. When it no longer is (claimed,
 * or replaced by another writer), the kept version is only unlinked. Calls
 * back with the error of a rename that failed.
 */
function restore(
  aside: string,
  target: string,
  written: Stats | null,
  cb: (err: NodeJS.ErrnoException | null) => void,
): void {
  lstat(fsPath(target), (err, now) => {
    const ours = err === null && written !== null && now.ino === written.ino && now.dev === written.dev;
    if (!ours) return unlink(aside, () => cb(null));
    rename(aside, fsPath(target), (renameErr) => {
      if (renameErr === null) return cb(null);
      unlink(aside, () => cb(renameErr));
    });
  });
}

/** The error of a failed directory fsync after which the new version had to stay in place. */
function notDurable(path: string, cause: NodeJS.ErrnoException, keepErr: NodeJS.ErrnoException): FileStoreError {
  return new FileStoreError(
    'ERR_COMMIT_NOT_DURABLE',
    `the new version of ${path} is in place, but the fsync of its directory failed (${cause.code}) and the version it replaced could not be kept to put back (${keepErr.code} ${keepErr.syscall ?? ''}): a crash may lose the new version`,
    { path, cause },
  );
}

/**
 * The error of a commit whose source vanished: `ERR_TMP_REMOVED` when the
 * target directory is there but the writer's own tmp file is not (someone
 * removed it while it was written, e.g. `clean()` with a short `olderThan`
 * in another process); else the `ENOENT` as it is (the store is gone).
 */
function explainMissing(err: NodeJS.ErrnoException, tmpPath: string, targetPath: string, cb: Callback): void {
  lstat(dirname(targetPath), (dirErr) => {
    if (dirErr !== null) return cb(err);
    lstat(tmpPath, (tmpErr) => {
      if (tmpErr?.code !== 'ENOENT') return cb(err);
      const message = `the tmp file ${tmpPath} was removed while it was being written (by clean() with a short olderThan in another process?): nothing was committed`;
      cb(new FileStoreError('ERR_TMP_REMOVED', message, { path: tmpPath, cause: err }));
    });
  });
}

/** Writes every byte of `buffers` at `position` of the file, resuming after short writes. */
function writeAll(fd: number, buffers: Buffer[], position: number, cb: Callback): void {
  const onWritten = (err: NodeJS.ErrnoException | null, written: number): void => {
    if (err) return cb(err);
    let rest = written;
    while (buffers.length > 0 && rest >= (buffers[0] as Buffer).length) rest -= (buffers.shift() as Buffer).length;
    if (buffers.length === 0) return cb(null);
    buffers[0] = (buffers[0] as Buffer).subarray(rest);
    writeAll(fd, buffers, position + written, cb);
  };
  if (buffers.length === 1) write(fd, buffers[0] as Buffer, 0, (buffers[0] as Buffer).length, position, onWritten);
  else writev(fd, buffers, position, onWritten);
}

/**
 * `buffers` to hold in memory: each hole chunk as that many zeros; `null`
 * when that would pass `room` bytes (the file goes to disk, where a hole
 * stays a hole).
 */
function withZeros(buffers: Buffer[], room: number): Buffer[] | null {
  if (!buffers.some((buffer) => holeSize(buffer) > 0)) return buffers;
  let bytes = 0;
  for (const buffer of buffers) bytes += buffer.length + holeSize(buffer);
  if (bytes > room) return null;
  return buffers.map((buffer) => (holeSize(buffer) > 0 ? Buffer.alloc(holeSize(buffer)) : buffer));
}
