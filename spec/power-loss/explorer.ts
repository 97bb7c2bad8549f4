// The power-loss explorer: records a workload's system calls under strace,
// replays them through the crash model, rebuilds every crash state it yields
// in a scratch store and checks the guarantees there (spec/power-loss.spec.ts).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { promisify } from 'node:util';
import { FileStore } from '../../lib/index.js';
import { verifiesSelf } from '../reliability.js';
import { CrashModel, type CrashState } from './crash-model.js';
import { selfChecking } from './self-checking.mjs';
import { type JournalRecord, parseTrace, TRACED_CALLS, type TraceEvent } from './trace.js';

const run = promisify(execFile);
const AREAS = ['tmp', 'new', 'cur'];
const WORKLOAD = new URL('./workload.mjs', import.meta.url).pathname;

/** What a recorded run yields: the events, and the store's files when the trace began. */
export interface Recording {
  events: TraceEvent[];
  initial: CrashState;
  root: string;
}

/** One broken guarantee in one crash state. */
export interface Violation {
  /** Index of the first event not persisted: the crash came right before it. */
  point: number;
  rule: 'partial' | 'lost' | 'wrong-version' | 'resurrected';
  file: string;
  /** The trace up to the crash point, one line per event, for the report. */
  prefix: string[];
}

/**
 * Runs the workload with `durability` against the library at `libraryUrl`
 * under strace, in `dir`, and parses the trace.
 */
export async function record(dir: string, durability: string, libraryUrl: string): Promise<Recording> {
  const root = join(dir, 'store');
  const store = new FileStore(root, { durability: 'full' });
  await store.prepare();
  const initial: CrashState = new Map([
    ['new/pre-1', selfChecking(1, 1200)],
    ['cur/pre-1', selfChecking(2, 900)],
    ['new/pre-2', selfChecking(3, 1500)],
  ]);
  for (const [key, data] of initial) await writeFile(join(root, key), data);
  const source = join(dir, 'archive');
  await mkdir(source);
  for (const [i, bytes] of [10, 3000, 30000].entries()) {
    await writeFile(join(source, `imported-${i}`), selfChecking(50 + i, bytes));
  }
  const archive = join(dir, 'archive.tar');
  await run('tar', ['-cf', archive, '-C', source, 'imported-0', 'imported-1', 'imported-2']);
  await run('sync', []);
  const journal = join(dir, 'journal');
  const trace = join(dir, 'trace');
  await run(
    'strace',
    [
      '-f',
      '-qq',
      '-xx',
      '-s',
      '1048576',
      '-o',
      trace,
      '-e',
      `trace=${TRACED_CALLS}`,
      process.execPath,
      WORKLOAD,
      libraryUrl,
      root,
      durability,
      journal,
      archive,
    ],
    { env: { ...process.env, UV_USE_IO_URING: '0' }, maxBuffer: 1 << 24 },
  );
  const prefix = root + sep;
  const events = parseTrace(await readFile(trace, 'latin1'), (p) => p.startsWith(prefix), journal);
  return { events, initial, root };
}

/** Explores every crash point of `recording`, at most `perPoint` states each; resolves with the count and the violations. */
export async function explore(
  recording: Recording,
  scratch: string,
  perPoint: number,
): Promise<{ states: number; points: number; violations: Violation[] }> {
  const model = new CrashModel(AREAS, recording.initial);
  const expectations = new Expectations(recording.initial);
  const locate = locator(recording.root);
  const random = seeded(1);
  const violations: Violation[] = [];
  let states = 0;
  let points = 0;
  for (const [index, event] of recording.events.entries()) {
    if (event.kind !== 'journal') {
      points++;
      for (const state of model.states(perPoint, random)) {
        states++;
        for (const broken of await check(state, expectations, scratch)) {
          violations.push({ point: index, ...broken, prefix: describe(recording.events.slice(0, index)) });
        }
      }
      model.apply(event, locate);
    } else expectations.note(event.record);
  }
  return { states, points, violations };
}

/** What the journal has acknowledged so far, and which operations are still in flight. */
class Expectations {
  /** `area/name` -> the SHA-256 its content must have (null: any whole self-checking file). */
  readonly homes = new Map<string, string | null>();
  /** `area/name` keys an acknowledged remove took away. */
  readonly removed = new Set<string>();
  /** Operations begun and not yet acknowledged. */
  readonly inFlight: JournalRecord[] = [];

  constructor(initial: CrashState) {
    for (const [key, data] of initial) this.homes.set(key, sha(data));
  }

  note(record: JournalRecord): void {
    if (record.phase === 'begin') {
      this.inFlight.push(record);
      for (const key of targets(record)) this.removed.delete(key);
      return;
    }
    const begun = this.inFlight.findIndex((r) => r.id === record.id);
    if (begun >= 0) this.inFlight.splice(begun, 1);
    const { op, name = '' } = record;
    if (op === 'commit') this.homes.set(`${record.area}/${name}`, record.sha ?? null);
    if (op === 'import') for (const n of record.names ?? []) this.homes.set(`${record.area}/${n}`, null);
    if (op === 'claim' && record.won) this.#moved(name, 'new', 'cur');
    if (op === 'move') this.#moved(name, record.from ?? '', record.to ?? '');
    if (op === 'copy') this.homes.set(`${record.to}/${name}`, this.homes.get(`${record.from}/${name}`) ?? null);
    if (op === 'remove') {
      this.homes.delete(`${record.area}/${name}`);
      this.removed.add(`${record.area}/${name}`);
    }
  }

  #moved(name: string, from: string, to: string): void {
    this.homes.set(`${to}/${name}`, this.homes.get(`${from}/${name}`) ?? null);
    this.homes.delete(`${from}/${name}`);
    // an acknowledged claim or move does not come back to its source (a second delivery)
    this.removed.add(`${from}/${name}`);
  }
}

/** The `area/name` keys an operation may change. */
function targets(record: JournalRecord): string[] {
  const { op, name = '' } = record;
  if (op === 'claim') return [`new/${name}`, `cur/${name}`];
  if (op === 'move' || op === 'copy') return [`${record.from}/${name}`, `${record.to}/${name}`];
  if (op === 'remove') return [`${record.area}/${name}`];
  if (op === 'commit' && record.name !== undefined) return [`${record.area}/${name}`];
  return [];
}

/** Rebuilds `state` as a store in `scratch` and checks the guarantees through the library. */
async function check(
  state: CrashState,
  expected: Expectations,
  scratch: string,
): Promise<Array<Pick<Violation, 'rule' | 'file'>>> {
  await rm(scratch, { recursive: true, force: true });
  for (const area of AREAS) await mkdir(join(scratch, area), { recursive: true });
  for (const [key, data] of state) await writeFile(join(scratch, key), data);
  const store = new FileStore(scratch);
  const found = new Map<string, Buffer>();
  for (const area of ['new', 'cur'] as const) {
    for await (const entry of store.list(area)) found.set(`${area}/${entry.name}`, await readFile(entry.path));
  }
  const broken: Array<Pick<Violation, 'rule' | 'file'>> = [];
  for (const [file, data] of found) if (!verifiesSelf(data)) broken.push({ rule: 'partial', file });
  for (const [file, digest] of expected.homes) {
    const op = expected.inFlight.find((r) => targets(r).includes(file));
    const verdict = judge(file, digest, op, found);
    if (verdict !== null) broken.push({ rule: verdict, file });
  }
  for (const file of expected.removed) if (found.has(file)) broken.push({ rule: 'resurrected', file });
  return broken;
}

/** Whether an acknowledged file is where it must be, allowing for one operation in flight on it. */
function judge(
  file: string,
  digest: string | null,
  op: JournalRecord | undefined,
  found: Map<string, Buffer>,
): Violation['rule'] | null {
  const data = found.get(file);
  const matches = (d: Buffer | undefined) => d !== undefined && (digest === null || sha(d) === digest);
  if (op === undefined) return data === undefined ? 'lost' : matches(data) ? null : 'wrong-version';
  if (op.op === 'remove') return null;
  if (op.op === 'claim' || op.op === 'move') {
    // between its link and its unlink a move may show in either area or both, never in neither
    return targets(op).some((key) => matches(found.get(key))) ? null : 'lost';
  }
  // an overwrite in flight: the old version or a whole new one (another self-checking file)
  if (data === undefined) return 'lost';
  return matches(data) || verifiesSelf(data) ? null : 'wrong-version';
}

function locator(root: string): (path: string) => { dir: string; name: string | null } | null {
  return (path) => {
    const rel = path.slice(root.length + 1).split('/');
    const [dir = '', name] = rel;
    if (!AREAS.includes(dir) || rel.length > 2) return null;
    return { dir, name: name === undefined || name === '' ? null : name };
  };
}

function describe(events: TraceEvent[]): string[] {
  return events.map((e) => {
    if (e.kind === 'write') return `write fd ${e.fd} ${e.data.length} bytes`;
    if (e.kind === 'journal') return `journal ${e.record.phase} ${e.record.op} ${e.record.name ?? ''}`;
    const { kind, ...rest } = e;
    return `${kind} ${JSON.stringify(rest)}`;
  });
}

function sha(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A small deterministic generator (mulberry32), so every run explores the same states. */
function seeded(seed: number): () => number {
  let t = seed;
  return () => {
    t = (t + 0x6d2b79f5) | 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r = (r + Math.imul(r ^ (r >>> 7), 61 | r)) ^ r;
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The trace of a writer that commits before it fsyncs its data: each fsync
 * of a tmp/ file (and the close after it) moved to just after the rename or
 * link that commits the file. The explorer must catch it.
 */
export function renameBeforeFsync(events: TraceEvent[]): TraceEvent[] {
  const out = [...events];
  let fake = 1_000_000;
  for (let i = 0; i < out.length; i++) {
    const event = out[i];
    if (event?.kind !== 'fsync') continue;
    let opened = i;
    while (opened >= 0 && !(out[opened]?.kind === 'open' && (out[opened] as { fd: number }).fd === event.fd)) opened--;
    const open = out[opened];
    if (open?.kind !== 'open' || !open.path.includes(`${sep}tmp${sep}`)) continue;
    const closing = out.findIndex((e, j) => j > i && e.kind === 'close' && e.fd === event.fd);
    const commit = out.findIndex((e, j) => j > i && (e.kind === 'rename' || e.kind === 'link') && e.from === open.path);
    if (closing < 0 || commit < 0) continue;
    // a descriptor number of its own, since the real one is reused once closed
    const fd = fake++;
    for (let j = opened; j <= closing; j++) {
      const e = out[j];
      if (e !== undefined && 'fd' in e && e.fd === event.fd) out[j] = { ...e, fd } as TraceEvent;
    }
    const moved = [out[i], out[closing]] as TraceEvent[];
    out.splice(commit + 1, 0, ...moved);
    out.splice(closing, 1);
    out.splice(i, 1);
    i--;
  }
  return out;
}
