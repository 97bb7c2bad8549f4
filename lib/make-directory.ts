/**
 * `mkdir -p` with bounded retries.
 *
 * Node's `mkdir(path, { recursive: true })` retries for as long as the parent
 * exists and the child's `mkdir` fails with `ENOENT`, so on a file system
 * that refuses new entries that way (`/proc`, some FUSE mounts) it never
 * returns and burns a CPU. Here each directory is tried a few times (a
 * parent removed by a racing process is made again), then the error stands.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** How often one directory's `mkdir` is tried after its parent was made. */
const ATTEMPTS = 4;

/** Creates `path` and its missing parents; resolves when `path` is a directory (following symlinks, as `mkdir -p`). */
export async function makeDirectory(path: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    const err = await mkdir(path).then(
      () => null,
      (e: NodeJS.ErrnoException) => e,
    );
    if (err === null) return;
    if (err.code === 'EEXIST') return assertDirectory(path, err);
    const parent = dirname(path);
    if (err.code !== 'ENOENT' || parent === path) throw err;
    if (attempt === ATTEMPTS) throw refused(err, parent);
    await makeDirectory(parent);
  }
}

async function assertDirectory(path: string, existsErr: NodeJS.ErrnoException): Promise<void> {
  const stats = await stat(path);
  if (!stats.isDirectory()) {
    throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`, { cause: existsErr }), {
      code: 'ENOTDIR',
      errno: -20,
      syscall: 'mkdir',
      path,
    });
  }
}

/** The `ENOENT` of a directory whose parent exists but keeps refusing it, saying so. */
function refused(err: NodeJS.ErrnoException, parent: string): NodeJS.ErrnoException {
  err.message = `${err.message} (its parent ${parent} exists but the file system refuses the new directory; tried ${ATTEMPTS} times)`;
  return err;
}
