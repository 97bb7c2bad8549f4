// Shared by the reliability specs (crash, enospc, races, model, hostile,
// permissions): self-checking file bodies, child processes, tmpfs mounts,
// descriptor counts, and the soak switch.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fsPath, nameFromLatin1 } from '../lib/names.js';

/** `FILESTORE_SOAK=1` turns the fast defaults of `npm test` into a long soak. */
export const SOAK = process.env.FILESTORE_SOAK === '1';

/** `fast` in `npm test`, `soak` with `FILESTORE_SOAK=1`. */
export function rounds(fast: number, soak: number): number {
  return SOAK ? soak : fast;
}

/** Per-test timeout of the long specs: 3 minutes (room for a loaded CI machine), or 30 minutes for a soak. */
export const TIMEOUT = SOAK ? 30 * 60_000 : 180_000;

/** Whether this process runs as root (mounts, namespaces, setpriv). */
export const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/** The worker script every child process of the reliability specs runs. */
export const WORKER = new URL('./fixtures/store-worker.mjs', import.meta.url).pathname;

const MAGIC = 'FSCK';
const HEADER_BYTES = 4 + 8 + 32;

/** A body that says its own length and SHA-256 in a 44-byte header. */
export function selfCheckingBody(payloadBytes: number): Buffer {
  const payload = randomBytes(payloadBytes);
  const header = Buffer.alloc(HEADER_BYTES);
  header.write(MAGIC, 0, 'latin1');
  header.writeBigUInt64BE(BigInt(payloadBytes), 4);
  createHash('sha256').update(payload).digest().copy(header, 12);
  return Buffer.concat([header, payload]);
}

/** Whether `data` is a whole self-checking body: header intact, length and checksum right. */
export function verifiesSelf(data: Buffer): boolean {
  if (data.length < HEADER_BYTES || data.toString('latin1', 0, 4) !== MAGIC) return false;
  const length = data.readBigUInt64BE(4);
  if (BigInt(data.length - HEADER_BYTES) !== length) return false;
  const digest = createHash('sha256').update(data.subarray(HEADER_BYTES)).digest();
  return digest.equals(data.subarray(12, HEADER_BYTES));
}

/** Every file of an area with its content. */
export async function contentsOf(root: string, area: string): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  for (const name of await readdir(join(root, area))) found.set(name, await readFile(join(root, area, name)));
  return found;
}

/**
 * Everything under `dir`, recursively, as sorted relative paths (directories
 * end in `/`); a name that is not UTF-8 spelled as the store spells it.
 */
export async function tree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(fsPath(dir), { withFileTypes: true, encoding: 'latin1' })) {
    const rel = `${prefix}${nameFromLatin1(entry.name)}`;
    if (entry.isDirectory()) out.push(`${rel}/`, ...(await tree(join(dir, nameFromLatin1(entry.name)), `${rel}/`)));
    else out.push(rel);
  }
  return out.sort();
}

/** A running worker: its lines of output as they come, and its exit. */
export interface Worker {
  child: ChildProcess;
  lines: string[];
  /** Resolves with the first line equal to `line`. */
  waitFor(line: string): Promise<void>;
  /** Sends one line to the worker's stdin. */
  send(line: string): void;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/**
 * Starts `spec/fixtures/store-worker.mjs` in `mode` with a JSON config.
 * `wrap` prefixes the command (e.g. `['unshare', '--pid', '--fork']`);
 * `worker` is the script to run (a copy, for a child run as another user).
 */
export function startWorker(
  mode: string,
  config: Record<string, unknown>,
  wrap: string[] = [],
  worker = WORKER,
): Worker {
  const argv = [...wrap, process.execPath, worker, mode, JSON.stringify(config)];
  const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters: Array<{ line: string; resolve: () => void }> = [];
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    lines.push(line);
    for (const w of waiters.filter((w) => w.line === line)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  child.stdin?.on('error', () => {});
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  return {
    child,
    lines,
    waitFor: (line) =>
      lines.includes(line)
        ? Promise.resolve()
        : Promise.race([
            new Promise<void>((resolve) => waiters.push({ line, resolve })),
            exit.then((e) => {
              throw new Error(`worker ${mode} exited (${e.code ?? e.signal}) before "${line}": ${e.stderr}`);
            }),
          ]),
    send: (line) => child.stdin?.write(`${line}\n`),
    exit,
  };
}

/** Runs workers that each print `ready`, then releases them together with `go` and waits for all to exit 0. */
export async function runTogether(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.waitFor('ready')));
  for (const w of workers) w.send('go');
  const exits = await Promise.all(workers.map((w) => w.exit));
  for (const e of exits) {
    if (e.code !== 0) throw new Error(`worker failed (${e.code ?? e.signal}): ${e.stderr}`);
  }
}

/** The lines of a worker that start with `prefix`, without it. */
export function reported(worker: Worker, prefix: string): string[] {
  return worker.lines.filter((l) => l.startsWith(prefix)).map((l) => l.slice(prefix.length));
}

/** The outcome of trying to mount a tmpfs. */
export type Mount = { ok: true; dir: string } | { ok: false; reason: string };

/** Mounts a tmpfs at `dir` (created) with `options`; says why when it cannot. */
export async function mountTmpfs(dir: string, options: string): Promise<Mount> {
  if (!IS_ROOT) return { ok: false, reason: 'needs root to mount tmpfs' };
  await mkdir(dir, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'pipe' });
    return { ok: true, dir };
  } catch (err) {
    return {
      ok: false,
      reason: `mount -t tmpfs refused: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
    };
  }
}

/** Unmounts what {@link mountTmpfs} mounted. */
export function unmount(mount: Mount): void {
  if (mount.ok) execFileSync('umount', [mount.dir], { stdio: 'pipe' });
}

/** Whether a command runs here (e.g. `unshare --pid --fork true`), and why not. */
export function probe(argv: string[]): { ok: boolean; reason: string } {
  try {
    execFileSync(argv[0] as string, argv.slice(1), { stdio: 'pipe' });
    return { ok: true, reason: '' };
  } catch (err) {
    return {
      ok: false,
      reason: `${argv.join(' ')} failed: ${String((err as { stderr?: Buffer }).stderr ?? err).trim()}`,
    };
  }
}
