/**
 * Codes of the errors this library raises itself. Errors from the file
 * system are never wrapped: they reach the caller with their own `code`
 * (`ENOENT`, `EEXIST`, `ENOSPC`, `EACCES` ...), `syscall` and `path`.
 */
export type FileStoreErrorCode =
  /** A file name that is not a valid store name. */
  | 'ERR_INVALID_NAME'
  /** An area other than `tmp`, `new` or `cur`. */
  | 'ERR_INVALID_AREA'
  /** An option with a value of the wrong type or range. */
  | 'ERR_INVALID_OPTION'
  /** An area directory that is a symlink or not a directory. */
  | 'ERR_UNSAFE_AREA'
  /**
   * A tar entry `importTar` refuses: not a regular file (symlink, hard link,
   * device, FIFO, directory other than the archive's root) or a name that is
   * not a valid store name (`../x`, `/etc/passwd`, `a/b`, `.hidden`, NUL, too long).
   * Also an entry of `new/` that `claim` refuses because it is not a regular
   * file (symlink, FIFO, device node, directory), and a store entry `copy`,
   * the CLI's `cat` and `GET`/`HEAD /files/AREA/NAME` refuse to read (a
   * symlink, FIFO, socket, device node or directory; nothing is read).
   */
  | 'ERR_UNSAFE_ENTRY'
  /** A tar archive `importTar` cannot parse: a bad header, or truncated. */
  | 'ERR_CORRUPT_ARCHIVE'
  /** A file that grew or shrank while `exportTar` was reading it. */
  | 'ERR_FILE_CHANGED'
  /** The thread `exportTar` reads small files on ended while it was reading. */
  | 'ERR_READER_EXITED'
  /** A leased consumer's lease on a file was taken by a requeue (its renewals came too late): the reason of `LeasedEntry.signal`. */
  | 'ERR_LEASE_LOST'
  /**
   * The thread that commits small files ended while it was committing this
   * one (it does not end by itself while it has work): whether the file made
   * it to its target is unknown; its tmp file is removed.
   */
  | 'ERR_COMMIT_THREAD_EXITED'
  /**
   * An overwrite whose directory fsync failed and whose replaced version
   * could not be kept aside to be put back (no hard links, a full disk): the
   * new version is in place, but a crash may lose it. `cause` is the fsync's error.
   */
  | 'ERR_COMMIT_NOT_DURABLE'
  /**
   * A writer's tmp file was removed by someone else before its commit (for
   * example `clean()` with a short `olderThan` in another process): nothing
   * was committed. `cause` is the commit's `ENOENT`.
   */
  | 'ERR_TMP_REMOVED';

/** An error raised by maildir-filestore itself, with a string `code`. */
export class FileStoreError extends Error {
  /** What went wrong, for callers to switch on. */
  readonly code: FileStoreErrorCode;
  /** The path concerned, when there is one. */
  readonly path?: string;

  constructor(code: FileStoreErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FileStoreError';
    this.code = code;
    if (options?.path !== undefined) this.path = options.path;
  }
}
