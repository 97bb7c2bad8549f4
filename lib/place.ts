/**
 * Putting a file at a new name in one atomic step, without replacing.
 *
 * `rename` replaces whatever holds the target name, so the no-clobber path
 * is `link` then `unlink`: `link` fails with `EEXIST` atomically when the
 * target exists. File systems without hard links (some FUSE and SMB mounts)
 * fall back to a check and a rename, which leaves a short window in which a
 * file created at the target by another process could be replaced.
 *
 * Claims are the other use of `link`: {@link claimFile} decides the winner by
 * the `unlink` of the source, not by the `link`, because on GlusterFS a
 * `link` through a stale lookup succeeds for a file another host already
 * claimed and moved away (measured: hundreds of duplicates per run before).
 */
import { link, rename } from 'node:fs';
import { link as linkAsync, lstat, rename as renameAsync, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FileStoreError } from './errors.js';
import { fsPath } from './names.js';

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
    await renameAsync(fsPath(from), fsPath(to));
    await syncBoth(from, to, sync);
    return;
  }
  try {
    await linkAsync(fsPath(from), fsPath(to));
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
  if (overwrite) return rename(fsPath(from), fsPath(to), cb);
  link(fsPath(from), fsPath(to), (err) => {
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
    await unlink(fsPath(from));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    await unlink(fsPath(to)).catch(() => {});
    throw err;
  }
}

async function renameIfAbsent(from: string, to: string, linkErr: unknown): Promise<void> {
  const exists = await lstat(fsPath(to)).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return false;
      throw err;
    },
  );
  if (exists) throw existsError(from, to, linkErr);
  await renameAsync(fsPath(from), fsPath(to));
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

/** How often a claim tries again when the file is still in `new/` but the state it saw keeps changing. */
const CLAIM_ATTEMPTS = 4;

/** Errors a network file system (GlusterFS, NFS) returns for a handle that a racing host made stale. */
const STALE = new Set(['ESTALE', 'EIO']);

type Stats = Awaited<ReturnType<typeof lstat>>;

/**
 * Claims the file at `source` by giving it the name `target`: resolves `true`
 * when this caller won, `false` when it lost the race (the file is gone or is
 * being claimed by someone else). Exactly one caller wins as long as the file
 * system's `link` fails with `EEXIST` on a taken name and its `unlink` with
 * `ENOENT` on a removed one; lookups may be stale.
 *
 * - `link` then `unlink` of the source: the `unlink` decides the winner. A
 *   `link` that went through a stale lookup (GlusterFS, after the winner
 *   unlinked the source and moved its claim away) makes a second name for a
 *   file someone else owns; that caller's `unlink` fails with `ENOENT`, and it
 *   removes its own link again (only if the target is still the file it
 *   linked) and reports `false`.
 * - `EEXIST` from `link`: a lost race when the source is gone or is the same
 *   file as the target (another claimer between its link and its unlink); a
 *   target that vanished meanwhile is tried again; a different file at the
 *   target is a real collision and rejects with `EEXIST`.
 * - A source that is not a regular file (symlink, FIFO, device, directory) is
 *   never claimed: `ERR_UNSAFE_ENTRY`, and it stays in `new/`.
 *
 * Rejects with `ENOENT` only when the source's directory itself is gone.
 */
export async function claimFile(source: string, target: string, sync?: SyncDirectory): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    try {
      await linkAsync(fsPath(source), fsPath(target));
    } catch (err) {
      const outcome = await linkFailed(err as NodeJS.ErrnoException, source, target, attempt, sync);
      if (outcome === 'retry') continue;
      return outcome;
    }
    return claimLinked(source, target, sync);
  }
}

/**
 * After our `link` succeeded: check what we linked, then take the source name
 * away. With `sync`, the target directory is synced before the source name
 * goes (a power cut then leaves the file under both names, never neither),
 * and the source directory after.
 */
async function claimLinked(source: string, target: string, sync: SyncDirectory | undefined): Promise<boolean> {
  const linked = await lstat(fsPath(target)).catch(nullIfGone);
  if (linked === null) return false; // removed by someone else already: not ours to hand out
  if (!linked.isFile()) {
    await unlinkIfSame(target, linked);
    throw unsafeEntry(source, linked);
  }
  await sync?.(dirname(target));
  try {
    await unlink(fsPath(source));
  } catch (err) {
    // ENOENT/ESTALE: the source went away after our link, so another caller owns this file.
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const sourceLeft = code !== 'ENOENT' && code !== 'ESTALE' && (await lstatOrNull(source)) !== null;
    await unlinkIfSame(target, linked);
    if (sourceLeft) throw err; // the file stays in new/, under its one name
    return false;
  }
  await sync?.(dirname(source));
  return true;
}

async function linkFailed(
  err: NodeJS.ErrnoException,
  source: string,
  target: string,
  attempt: number,
  sync: SyncDirectory | undefined,
): Promise<boolean | 'retry'> {
  const code = err.code ?? '';
  if (code === 'ENOENT') return storeThere(source, target);
  if (isLinkUnsupported(err)) {
    const sourceStats = await lstatOrNull(source);
    if (sourceStats === null) return sourceGone(source);
    if (!sourceStats.isFile()) throw unsafeEntry(source, sourceStats);
    return claimByRename(source, target, err, sync);
  }
  if (code !== 'EEXIST' && !STALE.has(code)) throw err;
  const sourceStats = await lstatOrNull(source);
  if (sourceStats === null) return sourceGone(source);
  if (!sourceStats.isFile()) throw unsafeEntry(source, sourceStats);
  if (STALE.has(code)) {
    if (attempt < CLAIM_ATTEMPTS) return 'retry';
    throw err;
  }
  const targetStats = await lstatOrNull(target);
  if (targetStats !== null && !sameFile(sourceStats, targetStats)) {
    // cur/ holds a different file of this name, unless the source was just claimed and replaced
    if ((await lstatOrNull(source)) === null) return false;
    throw err;
  }
  // Same file under both names: another claimer is between its link and its unlink.
  if (targetStats !== null) return false;
  // The target vanished between our link and our look: try again, a few times.
  return attempt < CLAIM_ATTEMPTS ? 'retry' : false;
}

/** The no-link fallback: `rename`, which moves the source once, after checking the target is free. */
async function claimByRename(
  source: string,
  target: string,
  linkErr: unknown,
  sync: SyncDirectory | undefined,
): Promise<boolean> {
  if ((await lstatOrNull(target)) !== null) {
    if ((await lstatOrNull(source)) === null) return sourceGone(source); // renamed there by the winner
    throw existsError(source, target, linkErr);
  }
  try {
    await renameAsync(fsPath(source), fsPath(target));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return sourceGone(source);
    throw err;
  }
  const moved = await lstatOrNull(target);
  if (moved !== null && !moved.isFile()) {
    // planted between our check and the rename: put it back and refuse it
    await renameAsync(fsPath(target), fsPath(source)).catch(() => {});
    throw unsafeEntry(source, moved);
  }
  if (sync !== undefined) await syncBoth(source, target, sync);
  return true;
}

/** After `link` said `ENOENT`: a lost race, unless an area directory itself is gone (then `ENOENT` rejects). */
async function storeThere(source: string, target: string): Promise<false> {
  await Promise.all([lstat(dirname(source)), lstat(dirname(target))]);
  return false;
}

/** A lost race, unless the source's directory itself is gone (then `ENOENT` rejects). */
async function sourceGone(source: string): Promise<false> {
  await lstat(dirname(source));
  return false;
}

/** Removes `path` if it is still the file `expected` (never someone else's file that took the name since). */
async function unlinkIfSame(path: string, expected: Stats): Promise<void> {
  const now = await lstatOrNull(path).catch(() => null);
  if (now !== null && sameFile(now, expected)) await unlink(fsPath(path)).catch(() => {});
}

function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

function nullIfGone(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT' || err.code === 'ESTALE') return null;
  throw err;
}

async function lstatOrNull(path: string): Promise<Stats | null> {
  return lstat(fsPath(path)).catch(nullIfGone);
}

function unsafeEntry(path: string, stats: Stats): FileStoreError {
  const kind = stats.isSymbolicLink()
    ? 'a symlink'
    : stats.isDirectory()
      ? 'a directory'
      : stats.isFIFO()
        ? 'a FIFO'
        : stats.isSocket()
          ? 'a socket'
          : 'a device node';
  return new FileStoreError('ERR_UNSAFE_ENTRY', `refusing to claim ${path}: it is ${kind}, not a regular file`, {
    path,
  });
}
