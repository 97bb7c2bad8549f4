// For specs that run a child as another user (`nobody` through setpriv): the
// checkout may sit under a 0700 directory that user cannot enter, so the
// child gets a copy of what it needs in a directory every user may read.
import { chmodSync, cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll } from 'vitest';
import { WORKER } from './reliability.js';

/** A copy of the built package and the store worker that every user may read. */
export interface ReadableCopy {
  /** The worker script (`store-worker.mjs`) inside the copy. */
  worker: string;
  /** The copy's `dist/index.js`, as a file URL to import. */
  dist: string;
}

let copy: { dir: string; paths: ReadableCopy } | undefined;

afterAll(() => {
  if (copy !== undefined) rmSync(copy.dir, { recursive: true, force: true });
  copy = undefined;
});

/**
 * The built package (package.json for its exports map, dist/) and
 * `spec/fixtures/store-worker.mjs`, copied once per spec file into a fresh
 * directory (mode 0755) under the system's temporary directory; removed after
 * the file's tests.
 */
export function readableCopy(): ReadableCopy {
  if (copy !== undefined) return copy.paths;
  const dir = mkdtempSync(join(tmpdir(), 'filestore-pkg-'));
  const checkout = fileURLToPath(new URL('..', import.meta.url));
  cpSync(join(checkout, 'package.json'), join(dir, 'package.json'));
  cpSync(join(checkout, 'dist'), join(dir, 'dist'), { recursive: true });
  cpSync(WORKER, join(dir, 'spec', 'fixtures', 'store-worker.mjs'));
  for (const sub of ['', 'spec', 'spec/fixtures']) chmodSync(join(dir, sub), 0o755);
  const paths = {
    worker: join(dir, 'spec', 'fixtures', 'store-worker.mjs'),
    dist: pathToFileURL(join(dir, 'dist', 'index.js')).href,
  };
  copy = { dir, paths };
  return paths;
}
