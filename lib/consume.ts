/**
 * The consumer's claim loop behind `FileStore.consume()`.
 *
 * A pass reads `new/` through `list()` in batches of {@link CONSUME_BATCH_SIZE}
 * names, sorts each batch by name (generated names start with the creation
 * second) and claims its names one by one, yielding only the ones this caller
 * won. Memory holds one batch, however many files wait.
 *
 * A consumer that loses a claim jumps to a random later name of the batch
 * (the names it skipped come at the end), and after {@link GIVE_UP_AFTER}
 * lost claims in a row leaves the rest of the batch to the others; a second
 * pass sweeps up what they left. When every consumer went through the batch
 * in the same order, they fought for the same file at every step and 4
 * processes claimed 0.3x the files per second of one (bench scenario 6);
 * spread out, they rarely meet again, and a lone consumer still goes in
 * name order.
 *
 * Follow mode repeats the pass whenever `fs.watch` reports a change in `new/`
 * and at the latest every `pollInterval` ms, because watch events can be
 * dropped and never arrive for commits made by other hosts on a network file
 * system. Between passes it sleeps on the watcher, one timer and the abort
 * signal: an idle follower costs one directory read per interval.
 *
 * With a lease (see lease.ts for where its state lives), each yielded file
 * is renewed on a timer while the loop body runs and settled when the body
 * hands control back; before a pass, at most once per poll interval, the
 * loop sweeps `cur/` for expired leases, so recovery costs one listing of
 * `cur/` per interval, not a look at `cur/` per claim. A name that cannot be
 * claimed (a different file in `cur/`, a young pair, an entry that is not a
 * regular file) is reported and skipped: it never stops the loop.
 */
import { watch, type FSWatcher } from 'node:fs';
import { link } from 'node:fs/promises';
import { sep } from 'node:path';
import { FileStoreError } from './errors.js';
import { fsPath } from './names.js';
import {
  assertMaxDeliveries,
  deliveryState,
  finishMove,
  lstatOrNull,
  markDelivered,
  markParked,
  renewLease,
  repairIfDead,
  requeueExpired,
  sameFile,
  type LeaseAreas,
  type LeaseEvent,
} from './lease.js';
import type { Entry } from './listing.js';

/** What the claim loop needs of a store: its `new/` and `cur/` directories, listings of them and a claim. */
export interface ClaimSource extends LeaseAreas {
  /** The absolute path of `new/`, watched in follow mode. */
  readonly newDir: string;
  /** The entries of `new/`, streamed. */
  listNew(): AsyncIterable<Entry>;
  /** Claims `name`: its entry in `cur/` when this caller won, `null` when another did. */
  claim(name: string): Promise<Entry | null>;
}

/** Options of `FileStore.consume()`. */
export interface ConsumeOptions {
  /**
   * Keep waiting for new files once `new/` is drained, until `signal` aborts
   * or the loop is left with `break`. `false`: drain `new/` once, then end.
   * @default false
   */
  follow?: boolean;
  /**
   * Ends the loop quietly (no error): nothing is claimed after the abort, and
   * a waiting follower returns at once.
   */
  signal?: AbortSignal;
  /**
   * Milliseconds between the safety rescans of `new/` in follow mode, made
   * whether or not `fs.watch` reported anything. With `lease`, also the
   * interval of this loop's sweeps of `cur/` for expired leases.
   * @default 1000
   */
  pollInterval?: number;
  /**
   * Lease each yielded file to this loop for this many milliseconds,
   * renewed (every quarter lease) while the loop body runs. The body
   * acknowledges the file by removing it from `cur/` or moving it out; one
   * it leaves there is released when the body ends (back to `new/`, or
   * parked). A file whose lease expires (its consumer died or hung) goes
   * back to `new/` for any consumer of the store. Every consumer of a store
   * must then lease: a file another consumer took for good would be
   * requeued too.
   * @default undefined (no lease: a claimed file is taken for good)
   */
  lease?: number;
  /**
   * With `lease`: a file delivered this many times without an
   * acknowledgement is parked: left in `cur/`, marked, never delivered
   * again until an operator requeues it (`requeue({ names })`).
   * @default 5
   */
  maxDeliveries?: number;
  /**
   * Milliseconds after which a file found in both `new/` and `cur/` (a
   * process died between the two steps of a move) is repaired: its `cur/`
   * name is removed and it is delivered from `new/`. A younger pair may be
   * a live move and is skipped.
   * @default lease, or 60000 without lease
   */
  repairAfter?: number;
  /**
   * Called with each collision (a different file of the same name in
   * `cur/`: skipped, reported once per name), repair, requeue, parking and
   * lost lease. The loop never stops for one of those.
   * @default undefined
   */
  onEvent?: (event: LeaseEvent) => void;
}

/** An entry yielded by a leased consumer. */
export interface LeasedEntry extends Entry {
  /** This delivery's number: 1 the first time the file is handed to a leased consumer. */
  readonly deliveries: number;
  /** Aborted when this consumer lost its lease on the file (another consumer may now hold it). */
  readonly signal: AbortSignal;
}

/** Default of {@link ConsumeOptions.pollInterval}, in milliseconds. */
export const DEFAULT_POLL_INTERVAL = 1000;

/** Default of {@link ConsumeOptions.maxDeliveries}. */
export const DEFAULT_MAX_DELIVERIES = 5;

/** Default of {@link ConsumeOptions.repairAfter} without a lease, in milliseconds. */
export const DEFAULT_REPAIR_AFTER = 60_000;

/** How many names of `new/` a pass reads, sorts and claims at a time. */
export const CONSUME_BATCH_SIZE = 1024;

const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Lost claims in a row after which a consumer leaves the rest of its batch
 * to the others: they are ahead of it there.
 */
const GIVE_UP_AFTER = 8;

/** How a batch ended: all tried, stopped by the signal, or left to other consumers. */
type BatchEnd = 'done' | 'aborted' | 'left';

/** Collision names remembered (to report each once) before the memory starts over. */
const MAX_REPORTED = 10_000;

/** The validated options and the state of one loop. */
interface Loop {
  readonly source: ClaimSource;
  readonly signal: AbortSignal | undefined;
  readonly pollInterval: number;
  readonly lease: number | undefined;
  readonly maxDeliveries: number;
  readonly repairAfter: number;
  readonly onEvent: ((event: LeaseEvent) => void) | undefined;
  readonly reported: Set<string>;
  lastSweep: number;
}

/**
 * Claims the files of `source`'s `new/` one by one and yields each file this
 * caller won, already moved to `cur/`. Validates the options synchronously.
 * @throws FileStoreError `ERR_INVALID_OPTION`, synchronously.
 */
export function consumeStore(source: ClaimSource, options: ConsumeOptions = {}): AsyncIterableIterator<Entry> {
  if (options === null || typeof options !== 'object') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'consume options must be an object');
  }
  const { follow = false, signal, pollInterval = DEFAULT_POLL_INTERVAL, lease, onEvent } = options;
  if (typeof follow !== 'boolean') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option follow must be a boolean');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option signal must be an AbortSignal');
  }
  assertDelay(pollInterval, 'pollInterval');
  if (lease !== undefined) assertDelay(lease, 'lease');
  if (lease === undefined && options.maxDeliveries !== undefined) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option maxDeliveries needs option lease');
  }
  const { maxDeliveries = DEFAULT_MAX_DELIVERIES, repairAfter = lease ?? DEFAULT_REPAIR_AFTER } = options;
  assertMaxDeliveries(maxDeliveries);
  if (typeof repairAfter !== 'number' || !Number.isFinite(repairAfter) || repairAfter < 0) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option repairAfter must be a non-negative number of milliseconds');
  }
  if (onEvent !== undefined && typeof onEvent !== 'function') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option onEvent must be a function');
  }
  const loop: Loop = {
    source,
    signal,
    pollInterval,
    lease,
    maxDeliveries,
    repairAfter,
    onEvent,
    reported: new Set(),
    lastSweep: Number.NEGATIVE_INFINITY,
  };
  return follow ? followNew(loop) : drainNew(loop);
}

function assertDelay(value: unknown, option: string): void {
  if (typeof value !== 'number' || !(value > 0 && value <= MAX_TIMER_DELAY)) {
    throw new FileStoreError(
      'ERR_INVALID_OPTION',
      `option ${option} must be a number of milliseconds in (0, ${MAX_TIMER_DELAY}]`,
    );
  }
}

/**
 * One pass over `new/` (after a sweep of `cur/` when leased and due):
 * batches in directory order, each in name order. When a batch was left to
 * other consumers, a second pass sweeps up whatever they did not take,
 * without leaving anything.
 */
async function* drainNew(loop: Loop): AsyncGenerator<Entry> {
  await sweepIfDue(loop);
  const end = yield* passOverNew(loop, GIVE_UP_AFTER);
  if (end === 'left') yield* passOverNew(loop, Number.POSITIVE_INFINITY);
}

async function* passOverNew(loop: Loop, giveUpAfter: number): AsyncGenerator<Entry, BatchEnd> {
  let batch: string[] = [];
  let left = false;
  for await (const { name } of loop.source.listNew()) {
    batch.push(name);
    if (batch.length === CONSUME_BATCH_SIZE) {
      const end = yield* claimEach(loop, batch, giveUpAfter);
      if (end === 'aborted') return end;
      left ||= end === 'left';
      batch = [];
    }
  }
  const end = yield* claimEach(loop, batch, giveUpAfter);
  return end === 'done' && left ? 'left' : end;
}

/** With a lease, requeues the expired files of `cur/`, at most once per poll interval. */
async function sweepIfDue(loop: Loop): Promise<void> {
  if (loop.lease === undefined || Date.now() - loop.lastSweep < loop.pollInterval) return;
  loop.lastSweep = Date.now();
  await requeueExpired(loop.source, loop.lease, loop.maxDeliveries, (event) => report(loop, event));
}

/**
 * Claims `names` in name order. After a claim it did not win it jumps to a
 * random name further on (the names jumped over come last), and after
 * `giveUpAfter` of them in a row it leaves the rest of the batch.
 */
async function* claimEach(loop: Loop, names: string[], giveUpAfter: number): AsyncGenerator<Entry, BatchEnd> {
  let queue = names.sort();
  let lostInARow = 0;
  while (queue.length > 0) {
    let lostAt = -1;
    for (const [i, name] of queue.entries()) {
      if (loop.signal?.aborted) return 'aborted';
      const claimed = await claimOrSkip(loop, name);
      if (claimed === null) {
        lostAt = i;
        break;
      }
      lostInARow = 0;
      if (loop.lease === undefined) yield claimed;
      else yield* deliver(loop, loop.lease, claimed);
    }
    if (lostAt < 0) break;
    if (++lostInARow >= giveUpAfter) return 'left';
    queue = jumpAhead(queue, lostAt + 1);
  }
  return loop.signal?.aborted ? 'aborted' : 'done';
}

/** The names from `from` on, rotated to start at a random one of them. */
function jumpAhead(queue: string[], from: number): string[] {
  const start = from + Math.floor(Math.random() * (queue.length - from));
  return [...queue.slice(start), ...queue.slice(from, start)];
}

/**
 * Claims `name`; `null` when another consumer won, when `cur/` holds a
 * different file of that name (reported once, skipped), or when the file is
 * in both areas and too young to repair. An older pair is repaired and
 * claimed.
 */
async function claimOrSkip(loop: Loop, name: string): Promise<Entry | null> {
  const claimed = await claimOrNull(loop, name);
  if (claimed !== null) return claimed;
  const curPath = loop.source.curDir + sep + name;
  const waiting = await lstatOrNull(loop.source.newDir + sep + name);
  if (waiting === null) return null; // the usual lost race
  const taken = await lstatOrNull(curPath);
  if (taken === null) return null;
  if (!sameFile(taken, waiting)) {
    report(loop, { type: 'collision', name });
    return null;
  }
  if (!(await repairIfDead(curPath, waiting, Date.now() - loop.repairAfter))) return null;
  report(loop, { type: 'repaired', name });
  return claimOrNull(loop, name);
}

/**
 * A claim whose `EEXIST` (a different file in `cur/`) is an answer, `null`,
 * like a lost race; so is `ERR_UNSAFE_ENTRY` (not a regular file: reported,
 * left in `new/`).
 */
async function claimOrNull(loop: Loop, name: string): Promise<Entry | null> {
  try {
    return await loop.source.claim(name);
  } catch (err) {
    if (err instanceof FileStoreError && err.code === 'ERR_UNSAFE_ENTRY') {
      report(loop, { type: 'unsafe', name, error: err });
      return null;
    }
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return null;
    throw err;
  }
}

function report(loop: Loop, event: LeaseEvent): void {
  if (event.type === 'collision' || event.type === 'unsafe') {
    if (loop.reported.has(event.name)) return;
    if (loop.reported.size >= MAX_REPORTED) loop.reported.clear();
    loop.reported.add(event.name);
  }
  loop.onEvent?.(event);
}

/**
 * Hands a claimed file to the loop body under a lease: counts the delivery
 * (or parks the file when it had its share), renews while the body runs,
 * and releases the file when the body leaves it in `cur/`.
 */
async function* deliver(loop: Loop, lease: number, entry: Entry): AsyncGenerator<LeasedEntry> {
  const stats = await lstatOrNull(entry.path);
  if (stats === null) return;
  const state = deliveryState(stats);
  // a parked file found in new/ was requeued by hand: its count starts again
  const previous = state.parked ? 0 : state.deliveries;
  if (previous >= loop.maxDeliveries) {
    await markParked(entry.path, previous);
    report(loop, { type: 'parked', name: entry.name, deliveries: previous });
    return;
  }
  const deliveries = previous + 1;
  await markDelivered(entry.path, deliveries);
  const held = new LeaseHolder(entry, stats.ino, deliveries, lease / 4, () =>
    report(loop, { type: 'lease-lost', name: entry.name }),
  );
  try {
    yield { ...entry, deliveries, signal: held.signal };
  } finally {
    await held.release(loop);
  }
}

/** Renews one lease on a timer and settles the file when the body is done with it. */
class LeaseHolder {
  readonly #entry: Entry;
  readonly #ino: number;
  readonly #deliveries: number;
  readonly #controller = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #onLost: () => void;
  #renewing: Promise<void> | null = null;

  constructor(entry: Entry, ino: number, deliveries: number, every: number, onLost: () => void) {
    this.#entry = entry;
    this.#ino = ino;
    this.#deliveries = deliveries;
    this.#onLost = onLost;
    this.#timer = setInterval(() => this.#renew(), every).unref();
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  #renew(): void {
    if (this.#renewing !== null) return;
    this.#renewing = renewLease(this.#entry.path, this.#ino, this.#deliveries)
      .then(
        (renewal) => {
          if (renewal === 'renewed') return;
          clearInterval(this.#timer);
          if (renewal === 'lost') this.#lost();
        },
        () => {}, // a failed renewal is retried at the next tick; expiry is the owner's risk
      )
      .finally(() => {
        this.#renewing = null;
      });
  }

  #lost(): void {
    if (this.#controller.signal.aborted) return;
    this.#onLost();
    this.#controller.abort(new FileStoreError('ERR_LEASE_LOST', `lease on ${this.#entry.name} lost`));
  }

  /** Stops renewing; a file still in `cur/` under this delivery goes back to `new/`, or is parked. */
  async release(loop: Loop): Promise<void> {
    clearInterval(this.#timer);
    await this.#renewing;
    if (this.#controller.signal.aborted) return;
    const { name, path } = this.#entry;
    const stats = await lstatOrNull(path);
    if (stats === null || stats.ino !== this.#ino) return; // acknowledged
    const state = deliveryState(stats);
    if (state.parked || state.deliveries !== this.#deliveries) return; // no longer ours
    if (this.#deliveries >= loop.maxDeliveries) {
      await markParked(path, this.#deliveries);
      report(loop, { type: 'parked', name, deliveries: this.#deliveries });
      return;
    }
    try {
      await link(fsPath(path), fsPath(loop.source.newDir + sep + name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      report(loop, { type: 'collision', name }); // stays in cur/; requeued when the lease expires
      return;
    }
    await finishMove(loop.source, path);
    report(loop, { type: 'requeued', name, deliveries: this.#deliveries });
  }
}

async function* followNew(loop: Loop): AsyncGenerator<Entry> {
  const { source, signal, pollInterval } = loop;
  let changed = true;
  let wake: (() => void) | null = null;
  let timer: NodeJS.Timeout | undefined;
  const notify = (): void => {
    changed = true;
    const resolve = wake;
    wake = null;
    resolve?.();
  };
  let watcher = watchDirectory(source.newDir, notify, () => {
    watcher = null;
  });
  // Released at once on abort, so an iterator abandoned after the abort keeps nothing alive.
  const release = (): void => {
    watcher?.close();
    watcher = null;
    clearTimeout(timer);
    notify();
  };
  signal?.addEventListener('abort', release, { once: true });
  try {
    while (!signal?.aborted) {
      changed = false;
      yield* drainNew(loop);
      if (changed || signal?.aborted) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(notify, pollInterval);
      });
      clearTimeout(timer);
    }
  } finally {
    signal?.removeEventListener('abort', release);
    release();
  }
}

/**
 * Watches `dir`, calling `onChange` on every event. A watcher that cannot be
 * started (no inotify watches left, a file system without notifications) or
 * that fails later is dropped: the rescans still deliver every file.
 */
function watchDirectory(dir: string, onChange: () => void, onDropped: () => void): FSWatcher | null {
  let watcher: FSWatcher;
  try {
    watcher = watch(dir, onChange);
  } catch {
    return null;
  }
  watcher.on('error', () => {
    watcher.close();
    onDropped();
    onChange();
  });
  return watcher;
}
