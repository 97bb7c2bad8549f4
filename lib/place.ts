/**
 * Putting a file at a new name in one atomic step, without replacing.
 *
 * `rename` replaces whatever holds the target name, so the no-clobber path
 * is `link` then `unlink`: `link` fails with `EEXIST` atomically when the
 * target exists. File systems without hard links (some FUSE and SMB mounts)
 * fall back to a check and a rename, which leaves a short window in which a
 * file created at the target by another process could be replaced.
 */
import { link, rename } from 'node:fs';
import { dirname } from 'node:path';
import { link as linkAsync, lstat, rename as renameAsync, unlink } from 'node:fs/promises';

const LINK_UNSUPPORTED = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/** Whether `err` says the file system cannot make hard links. */
export function isLinkUnsupported(err: unknown): boolean {
  return LINK_UNSUPPORTED.has((err as NodeJS.ErrnoException).code ?? '');
}

/** Makes a directory's entries durable (an fsync of the directory). */
export type SyncDirectory = (dir: string) => Promise<void>;

/**
 * Moves `from` to `to`. With `overwrite` an existing `to` is replaced;
 * without, the move fails with `EEXIST` and `from` stays where it was.
 * With `sync`, the move is durable before it resolves: the target directory
 * is synced before the source name goes (so a power cut between the two
 * leaves the file under both names, never under neither), then the source
 * directory.
 */
export async function placeFile(from: string, to: string, overwrite: boolean, sync?: SyncDirectory): Promise<void> {
  if (sync === undefined) {
    return new Promise((resolve, reject) => place(from, to, overwrite, (err) => (err ? reject(err) : resolve())));
  }
  if (overwrite) {
    await renameAsync(from, to);
    await syncBoth(from, to, sync);
    return;
  }
  try {
    await linkAsync(from, to);
  } catch (err) {
    if (!isLinkUnsupported(err)) throw err;
    await renameIfAbsent(from, to, err);
    await syncBoth(from, to, sync);
    return;
  }
  await sync(dirname(to));
  await unlinkSource(from, to);
  await sync(dirname(from));
}

/** Syncs the directory of `to`, then that of `from` when it is another one. */
export async function syncBoth(from: string, to: string, sync: SyncDirectory): Promise<void> {
  await sync(dirname(to));
  if (dirname(from) !== dirname(to)) await sync(dirname(from));
}

/**
 * {@link placeFile} with a callback. The commit path of every writer runs
 * through here, so the common cases (`rename`, or `link` + `unlink`) stay on
 * the callback API, which costs the event loop less than `fs/promises`.
 */
export function place(from: string, to: string, overwrite: boolean, cb: (err: Error | null) => void): void {
  if (overwrite) return rename(from, to, cb);
  link(from, to, (err) => {
    const done = (): void => cb(null);
    if (err === null) return void unlinkSource(from, to).then(done, cb);
    if (!isLinkUnsupported(err)) return cb(err);
    renameIfAbsent(from, to, err).then(done, cb);
  });
}

/**
 * Removes the source name after a successful `link`. When it is already gone
 * (another process removed it), the file is still at `to`. Any other failure
 * undoes the link, so the file never stays under both names.
 */
export async function unlinkSource(from: string, to: string): Promise<void> {
  try {
    await unlink(from);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    await unlink(to).catch(() => {});
    throw err;
  }
}

async function renameIfAbsent(from: string, to: string, linkErr: unknown): Promise<void> {
  const exists = await lstat(to).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  if (exists) throw existsError(from, to, linkErr);
  await renameAsync(from, to);
}

/** An `EEXIST` error shaped like the one `link` would have raised. */
export function existsError(from: string, to: string, cause: unknown): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException & { dest?: string } = new Error(
    `EEXIST: file already exists, link '${from}' -> '${to}'`,
    { cause },
  );
  err.code = 'EEXIST';
  err.errno = -17;
  err.syscall = 'link';
  err.path = from;
  err.dest = to;
  return err;
}
