/**
 * Removal of the files that crashed or abandoned writers left in `tmp/`.
 *
 * maildir's rule: a file in `tmp/` untouched for 36 hours belongs to no live
 * writer. Within this process the store also knows which `tmp/` files its
 * writers still have open and never removes those, however old their mtime.
 * A writer of another process is protected by the mtime rule alone.
 */
import { lstat, unlink } from 'node:fs/promises';
import { FileStoreError } from './errors.js';
import { fsPath } from './names.js';
import { assertOptionKeys } from './options.js';
import type { Entry } from './listing.js';

/** Options of `FileStore.clean()`. */
export interface CleanOptions {
  /**
   * Remove files in `tmp/` whose last modification is more than this many
   * milliseconds ago.
   * @default 129_600_000 (36 hours)
   */
  olderThan?: number;
}

/** Default of {@link CleanOptions.olderThan}: maildir's 36 hours, in milliseconds. */
export const DEFAULT_CLEAN_AGE = 36 * 60 * 60 * 1000;

/**
 * Removes the files of `tmp/` (listed by `entries`) last modified more than `olderThan`
 * ms ago, except the paths in `live`, and resolves with their names.
 * Rejects with `ERR_INVALID_OPTION` for a bad option, before touching a file.
 */
export async function cleanTmp(
  entries: AsyncIterable<Entry>,
  live: ReadonlySet<string>,
  options: CleanOptions = {},
): Promise<string[]> {
  if (options === null || typeof options !== 'object') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'clean options must be an object');
  }
  assertOptionKeys(options, { olderThan: true }, 'clean()');
  const { olderThan = DEFAULT_CLEAN_AGE } = options;
  if (typeof olderThan !== 'number' || !Number.isFinite(olderThan) || olderThan < 0) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option olderThan must be a non-negative number of milliseconds');
  }
  const cutoff = Date.now() - olderThan;
  const removed: string[] = [];
  for await (const { name, path } of entries) {
    if (live.has(path)) continue;
    const stats = await lstat(fsPath(path)).catch(ignoreMissing);
    if (stats === null || stats.isDirectory() || stats.mtimeMs >= cutoff) continue;
    if ((await unlink(fsPath(path)).then(() => true, ignoreMissing)) === true) removed.push(name);
  }
  return removed;
}

/** `null` for `ENOENT` (another cleaner or the file's writer got there first); rethrows the rest. */
function ignoreMissing(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}
