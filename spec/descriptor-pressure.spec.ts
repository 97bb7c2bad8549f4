// Real descriptor pressure: a child under `ulimit -n` (spec/fixtures/pressure-worker.mjs)
// fills its descriptor table to a few free slots and overwrites every file of a
// store again and again, at durability full, through create, copy, importTar
// and HTTP PUT ?overwrite=true. Whatever fails, every name keeps a whole version.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { DIST, tempDir } from './helpers.js';

const WORKER = new URL('./fixtures/pressure-worker.mjs', import.meta.url).pathname;
const SERVER = new URL('../dist/server/index.js', import.meta.url).href;
const NAMES = Array.from({ length: 200 }, (_, i) => `f${i}`);

interface Child {
  /** The child's first line of output, parsed. */
  first: Promise<Record<string, unknown>>;
  exit: Promise<{ code: number | null; stderr: string }>;
  end(): void;
}

/** Runs the pressure worker under `ulimit -n limit`. */
function underLimit(limit: number, config: Record<string, unknown>): Child {
  const json = JSON.stringify({ dist: DIST, server: SERVER, ...config });
  const child = spawn('bash', ['-c', `ulimit -n ${limit} && exec "$@"`, 'bash', process.execPath, WORKER, json], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdin.on('error', () => {});
  const exit = once(child, 'close').then(([code]) => ({ code: code as number | null, stderr }));
  const lines = createInterface({ input: child.stdout });
  const first = Promise.race([
    once(lines, 'line').then(([line]) => JSON.parse(line as string) as Record<string, unknown>),
    exit.then((e) => Promise.reject(new Error(`worker exited ${e.code}: ${e.stderr}`))),
  ]);
  return { first, exit, end: () => child.stdin.end() };
}

/** A store whose new/ holds `old <name>` for every name, and cur/ the `new <name>` sources of copy. */
async function storeWithOldVersions(): Promise<string> {
  const root = join(await tempDir(), 'store');
  for (const area of ['tmp', 'new', 'cur']) await mkdir(join(root, area), { recursive: true });
  for (const name of NAMES) {
    await writeFile(join(root, 'new', name), `old ${name}`);
    await writeFile(join(root, 'cur', name), `new ${name}`);
  }
  return root;
}

/** Every name is in new/ with one whole version, old or new, and tmp/ is empty. */
async function expectEveryVersion(root: string): Promise<void> {
  expect((await readdir(join(root, 'new'))).sort()).toEqual([...NAMES].sort());
  for (const name of NAMES)
    expect(await readFile(join(root, 'new', name), 'utf8')).toMatch(new RegExp(`^(old|new) ${name}$`));
  expect(await readdir(join(root, 'tmp'))).toEqual([]);
}

describe('durable overwrites under a real descriptor shortage (ulimit -n)', () => {
  it.each([
    ['create', 16],
    ['copy', 100],
    ['import', 16],
  ])(
    '%s with overwrite keeps a version of every name (%i free descriptors)',
    async (mode, free) => {
      const root = await storeWithOldVersions();
      const child = underLimit(256, { root, mode, names: NAMES, free, ms: 2000, minOk: 20 });
      const { ok, codes } = (await child.first) as { ok: number; codes: Record<string, number> };
      expect((await child.exit).code).toBe(0);
      // the shortage is real: some overwrites fail with EMFILE, and no other way
      expect(Object.keys(codes)).toEqual(['EMFILE']);
      expect(ok).toBeGreaterThan(0);
      await expectEveryVersion(root);
    },
    60_000,
  );

  it('HTTP PUT ?overwrite=true keeps a version of every name', async () => {
    const root = await storeWithOldVersions();
    const child = underLimit(256, { root, mode: 'serve', free: 20 });
    try {
      const { port } = (await child.first) as { port: number };
      const start = Date.now();
      // 2 s, and on (30 s at most) until 10 overwrites got through
      const more = (): boolean => Date.now() < start + 2000 || (ok < 10 && Date.now() < start + 30_000);
      let ok = 0;
      // 8 clients, each overwriting its share of the names in turn
      const loop = async (client: number): Promise<void> => {
        for (let i = client; more(); i += 8) {
          const name = NAMES[i % NAMES.length] as string;
          const response = await fetch(`http://127.0.0.1:${port}/files/${name}?overwrite=true`, {
            method: 'PUT',
            body: `new ${name}`,
            // a connection the server could not accept (EMFILE) is never answered
            signal: AbortSignal.timeout(1000),
          }).catch(() => null);
          if (response?.status === 201) ok++;
          await response?.arrayBuffer().catch(() => {});
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, client) => loop(client)));
      expect(ok).toBeGreaterThanOrEqual(10);
    } finally {
      child.end();
      await child.exit;
    }
    await expectEveryVersion(root);
  }, 60_000);
});

describe('1,000 writers under ulimit -n 256', () => {
  it('fail with EMFILE the writers they cannot open, and lose nothing of the others', async () => {
    const root = join(await tempDir(), 'store');
    for (const area of ['tmp', 'new', 'cur']) await mkdir(join(root, area), { recursive: true });
    const names = Array.from({ length: 1000 }, (_, i) => `w${i}`);
    const child = underLimit(256, { root, mode: 'writers', names, free: null, ms: 0 });
    const { ok, codes, failed } = (await child.first) as {
      ok: number;
      codes: Record<string, number>;
      failed: string[];
    };
    expect((await child.exit).code).toBe(0);
    expect(ok + (codes.EMFILE ?? 0)).toBe(1000);
    const committed = (await readdir(join(root, 'new'))).sort();
    expect(committed).toEqual(names.filter((name) => !failed.includes(name)).sort());
    for (const name of committed) expect(await readFile(join(root, 'new', name), 'utf8')).toBe(`new ${name}`);
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  }, 60_000);
});
