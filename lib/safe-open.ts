/**
 * Opening a store entry to read it, refusing anything but a regular file.
 *
 * Anyone who may write to an area can plant a symlink (to `/etc/shadow`), a
 * FIFO (whose `open` blocks a thread-pool thread until a writer comes), a
 * device node (`/dev/zero` streams forever) or a directory there. The entry
 * is opened with `O_NOFOLLOW` (a symlink fails with `ELOOP`) and `O_NONBLOCK`
 * (a FIFO opens at once), and `fstat` of the descriptor, not of the path,
 * decides before a byte is read, so a swap between a check and the open
 * cannot slip anything through.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { FileStoreError } from './errors.js';
import { fsPath } from './names.js';

const FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** An open regular file and its stats, taken from the descriptor. */
export interface OpenedEntry {
  handle: FileHandle;
  stats: Stats;
}

/**
 * Opens the store entry at `path` for reading. Rejects with `ERR_UNSAFE_ENTRY`
 * when it is a symlink, FIFO, socket, device node or directory (nothing is
 * read), and with the file system's error otherwise (`ENOENT`, `EACCES` ...).
 */
export async function openEntry(path: string): Promise<OpenedEntry> {
  const handle = await open(fsPath(path), FLAGS).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ELOOP' ? unsafe(path, 'a symlink') : err;
  });
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw unsafe(path, kind(stats));
    return { handle, stats };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

function kind(stats: Stats): string {
  if (stats.isDirectory()) return 'a directory';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isSocket()) return 'a socket';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device node';
  return 'not a regular file';
}

function unsafe(path: string, what: string): FileStoreError {
  return new FileStoreError('ERR_UNSAFE_ENTRY', `refused to read ${path}: ${what}, not a regular file`, { path });
}
