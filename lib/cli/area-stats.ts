/**
 * Queue depth: how many regular files an area holds and their bytes,
 * counted while the directory is streamed, so memory does not grow with the
 * area. Entries that vanish between the listing and their `lstat` (claimed,
 * removed) are not counted; anything that is not a regular file is not
 * counted.
 *
 * Each `lstat` is synchronous: over 100,000 files in one area that took
 * 0.42 s of CPU, against 0.95 s for callback `lstat`s 32 at a time and
 * 2.5 s for `fs.promises.lstat` 32 at a time (load 11 on 2 cores). The event
 * loop still runs between the listing's batches, so a signal is seen; code
 * that serves requests on its event loop (the HTTP server) should count
 * elsewhere or cache.
 */
import { lstatSync } from 'node:fs';
import { fsPath } from '../names.js';

/** The files of an area and their total size. */
export interface AreaStats {
  files: number;
  bytes: number;
}

/**
 * Counts the regular files among `entries` (paths from a streamed listing)
 * and sums their sizes; rejects with the signal's reason once it is aborted.
 */
export async function countFiles(
  entries: AsyncIterable<{ readonly path: string }>,
  signal?: AbortSignal,
): Promise<AreaStats> {
  const stats: AreaStats = { files: 0, bytes: 0 };
  for await (const { path } of entries) {
    signal?.throwIfAborted();
    const found = lstatSync(fsPath(path), { throwIfNoEntry: false });
    if (found?.isFile() !== true) continue;
    stats.files++;
    stats.bytes += found.size;
  }
  return stats;
}
