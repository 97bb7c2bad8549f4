/**
 * How hard a commit works to survive a crash, and the shared directory fsync.
 *
 * A rename is durable only once its directory is fsynced. Each commit waits
 * for a directory fsync that started after its rename; commits that arrive
 * while one fsync runs all share the next one (group commit), so 64 writers
 * committing at once pay for a handful of directory fsyncs, not 64.
 *
 * The fsync runs on a descriptor of the directory that the writers hold from
 * the moment they open their file ({@link holdDirectory}) until they close:
 * under descriptor pressure a commit must not need a fresh descriptor after
 * its rename (an `EMFILE` there used to fail a commit that had already
 * replaced the old version). A writer that cannot get a descriptor fails
 * before it writes anything.
 */
import { close, closeSync, constants, fstatSync, fsync, open, stat } from 'node:fs';
import { FileStoreError } from './errors.js';

/**
 * - `full`: fsync the file before the commit and its directory after it.
 * - `file`: fsync the file only; a crash may lose the rename, never the data of a committed name.
 * - `none`: no fsync; the operating system writes back when it likes.
 */
export type Durability = 'full' | 'file' | 'none';

export function assertDurability(value: unknown): asserts value is Durability {
  if (value !== 'full' && value !== 'file' && value !== 'none') {
    throw new FileStoreError(
      'ERR_INVALID_OPTION',
      `invalid durability: ${String(value)} (expected full, file or none)`,
    );
  }
}

type Callback = (err: NodeJS.ErrnoException | null) => void;

/** An open descriptor of a directory, shared by everyone who holds it. */
interface HeldDirectory {
  fd: number;
  dev: number;
  ino: number;
  holders: number;
}

const held = new Map<string, HeldDirectory>();
const opening = new Map<string, Array<(err: NodeJS.ErrnoException | null) => void>>();

/**
 * Holds an open descriptor of `dir` (shared with every other holder of it)
 * and calls back with the function that lets go of it; the descriptor is
 * closed when its last holder lets go. While held, {@link syncDirectory}
 * of `dir` needs no new descriptor.
 */
export function holdDirectory(dir: string, cb: (err: NodeJS.ErrnoException | null, release: () => void) => void): void {
  const existing = held.get(dir);
  if (existing !== undefined) {
    existing.holders++;
    return cb(null, releaser(dir, existing));
  }
  const waiting = opening.get(dir);
  const retry = (err: NodeJS.ErrnoException | null): void => {
    if (err) return cb(err, () => {});
    holdDirectory(dir, cb);
  };
  if (waiting !== undefined) return void waiting.push(retry);
  opening.set(dir, [retry]);
  openDirectory(dir, (err) => {
    const callbacks = opening.get(dir) ?? [];
    opening.delete(dir);
    for (const callback of callbacks) callback(err);
  });
}

function openDirectory(dir: string, cb: Callback): void {
  open(dir, constants.O_RDONLY | constants.O_DIRECTORY, (err, fd) => {
    if (err) return cb(err);
    const { dev, ino } = fstatSync(fd);
    held.set(dir, { fd, dev, ino, holders: 0 });
    cb(null);
  });
}

function releaser(dir: string, entry: HeldDirectory): () => void {
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--entry.holders > 0) return;
    if (held.get(dir) === entry) held.delete(dir);
    // closed at once, not on the thread pool, so a writer's descriptors are all gone when it reports
    try {
      closeSync(entry.fd);
    } catch {}
  };
}

interface DirectoryQueue {
  running: boolean;
  waiting: Callback[];
}

const queues = new Map<string, DirectoryQueue>();

/** Calls back once an fsync of `dir` that started after this call has finished. */
export function syncDirectory(dir: string, cb: Callback): void {
  let queue = queues.get(dir);
  if (queue === undefined) {
    queue = { running: false, waiting: [] };
    queues.set(dir, queue);
  }
  queue.waiting.push(cb);
  if (!queue.running) runBatch(dir, queue);
}

/** Promise form of {@link syncDirectory}. */
export function syncDirectoryAsync(dir: string): Promise<void> {
  return new Promise((resolve, reject) => syncDirectory(dir, (err) => (err ? reject(err) : resolve())));
}

function runBatch(dir: string, queue: DirectoryQueue): void {
  const batch = queue.waiting;
  queue.waiting = [];
  queue.running = true;
  fsyncDirectory(dir, (err) => {
    for (const cb of batch) cb(err);
    if (queue.waiting.length > 0) {
      runBatch(dir, queue);
    } else {
      queue.running = false;
      queues.delete(dir);
    }
  });
}

/**
 * Fsyncs `dir` through its held descriptor, checking meanwhile that the path
 * still names that directory (it may have been removed and recreated); only
 * when it does not, or nobody holds it, is a fresh descriptor opened.
 */
function fsyncDirectory(dir: string, cb: Callback): void {
  const entry = held.get(dir);
  if (entry === undefined) return fsyncPath(dir, cb);
  entry.holders++;
  const release = releaser(dir, entry);
  let pending = 2;
  let syncErr: NodeJS.ErrnoException | null = null;
  let replaced = false;
  const settle = (): void => {
    if (--pending > 0) return;
    release();
    if (replaced) fsyncPath(dir, cb);
    else cb(syncErr);
  };
  fsync(entry.fd, (err) => {
    syncErr = err;
    settle();
  });
  stat(dir, (err, now) => {
    replaced = err !== null || now.ino !== entry.ino || now.dev !== entry.dev;
    if (replaced && held.get(dir) === entry) held.delete(dir);
    settle();
  });
}

function fsyncPath(path: string, cb: Callback): void {
  open(path, constants.O_RDONLY | constants.O_DIRECTORY, (openErr, fd) => {
    if (openErr) return cb(openErr);
    fsync(fd, (syncErr) => close(fd, (closeErr) => cb(syncErr ?? closeErr ?? null)));
  });
}
