/**
 * How hard a commit works to survive a crash, and the shared directory fsync.
 *
 * A rename is durable only once its directory is fsynced. Each commit waits
 * for a directory fsync that started after its rename; commits that arrive
 * while one fsync runs all share the next one (group commit), so 64 writers
 * committing at once pay for a handful of directory fsyncs, not 64.
 */
import { close, fsync, open, constants } from 'node:fs';
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
  fsyncPath(dir, (err) => {
    for (const cb of batch) cb(err);
    if (queue.waiting.length > 0) {
      runBatch(dir, queue);
    } else {
      queue.running = false;
      queues.delete(dir);
    }
  });
}

function fsyncPath(path: string, cb: Callback): void {
  open(path, constants.O_RDONLY | constants.O_DIRECTORY, (openErr, fd) => {
    if (openErr) return cb(openErr);
    fsync(fd, (syncErr) => close(fd, (closeErr) => cb(syncErr ?? closeErr ?? null)));
  });
}
