/**
 * Queue depth: how many regular files an area holds and their bytes,
 * counted while the directory is streamed (a bounded number of `lstat`s in
 * flight), so memory does not grow with the area. Entries that vanish
 * between the listing and their `lstat` (claimed, removed) are not counted;
 * anything that is not a regular file is not counted.
 */
import { lstat } from 'node:fs/promises';

/** The files of an area and their total size. */
export interface AreaStats {
  files: number;
  bytes: number;
}

const IN_FLIGHT = 32;

/**
 * Counts the regular files among `entries` (paths from a streamed listing)
 * and sums their sizes; rejects with the signal's reason once it is aborted.
 */
export async function countFiles(
  entries: AsyncIterable<{ readonly path: string }>,
  signal?: AbortSignal,
): Promise<AreaStats> {
  const stats: AreaStats = { files: 0, bytes: 0 };
  const pending = new Set<Promise<void>>();
  for await (const { path } of entries) {
    signal?.throwIfAborted();
    const done: Promise<void> = add(path, stats).finally(() => pending.delete(done));
    pending.add(done);
    if (pending.size >= IN_FLIGHT) await Promise.race(pending);
  }
  await Promise.all(pending);
  return stats;
}

async function add(path: string, stats: AreaStats): Promise<void> {
  try {
    const found = await lstat(path);
    if (!found.isFile()) return;
    stats.files++;
    stats.bytes += found.size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
