/**
 * Leases on claimed files: who holds a file in `cur/`, how long, and how
 * often it was delivered, kept in the file's own timestamps.
 *
 * - The lease clock is the file's ctime. The kernel sets it on every link,
 *   unlink and rename, so the claim itself (new/ -> cur/) starts the lease
 *   atomically: a just-claimed file never looks expired. The owner renews by
 *   `utimes`, which sets ctime (and atime) to now; a lease whose ctime is
 *   older than `olderThan` has an owner that went silent that long.
 * - The delivery count lives in the mtime, as whole seconds after the Unix
 *   epoch: a file delivered `d` times has mtime `d` s (1970-01-01T00:00:0d),
 *   a parked one `86400 + d` s (1970-01-02). One `utimes` changes it, so it
 *   survives SIGKILL at any point; it moves with the file between areas and
 *   hosts, needs no sidecar to clean up and leaves the name alone. Any other
 *   mtime (a producer's) means "never delivered". The count is also the
 *   delivery's token: a redelivery raises it, so an owner whose lease was
 *   taken sees a different mtime at its next renewal.
 * - Requeueing moves a file cur/ -> new/ by `link` then `unlink`. Between the
 *   two the file is in both areas, where no claim can take it (a claim's link
 *   fails with EEXIST on the same inode), and a second look at the atime
 *   (which renewals set, and a link does not) undoes the move when the owner
 *   renewed meanwhile.
 * - A pair (one inode in new/ and cur/) whose ctime is older than the
 *   threshold was left by a process that died between link and unlink; the
 *   cur/ name is removed and the file waits in new/. A younger pair may be a
 *   live move and is left alone.
 */
import type { Stats } from 'node:fs';
import { link, lstat, unlink, utimes } from 'node:fs/promises';
import { sep } from 'node:path';
import { FileStoreError } from './errors.js';
import { fsPath } from './names.js';
import type { Entry } from './listing.js';

/** Seconds added to the delivery count in the mtime of a parked file. */
const PARKED_BASE = 86_400;

/** What the mtime of a file says about its deliveries. */
export interface DeliveryState {
  /** How often a leased consumer was handed the file. */
  readonly deliveries: number;
  /** Delivered too often: no consumer takes it until an operator requeues it. */
  readonly parked: boolean;
}

/** Reads the delivery state out of a file's mtime. */
export function deliveryState(stats: Stats): DeliveryState {
  const seconds = Math.floor(stats.mtimeMs / 1000);
  if (seconds >= 1 && seconds < PARKED_BASE) return { deliveries: seconds, parked: false };
  if (seconds >= PARKED_BASE && seconds < 2 * PARKED_BASE) return { deliveries: seconds - PARKED_BASE, parked: true };
  return { deliveries: 0, parked: false };
}

/** Something the lease machinery did or found, for a log line. */
export type LeaseEvent =
  /** A different file of this name is in cur/: the one in new/ waits (and is skipped). */
  | { readonly type: 'collision'; readonly name: string }
  /**
   * The entry of this name in new/ is not a regular file (a symlink, FIFO,
   * device node or directory): never claimed, left in new/; `error` is the
   * claim's `ERR_UNSAFE_ENTRY`.
   */
  | { readonly type: 'unsafe'; readonly name: string; readonly error: FileStoreError }
  /** A file left in both new/ and cur/ by a dead process: the cur/ name was removed. */
  | { readonly type: 'repaired'; readonly name: string }
  /** A lease expired: the file went back to new/. */
  | { readonly type: 'requeued'; readonly name: string; readonly deliveries: number }
  /** Delivered `deliveries` times without an acknowledgement: left in cur/, marked parked. */
  | { readonly type: 'parked'; readonly name: string; readonly deliveries: number }
  /** This consumer's lease on a file it was processing was taken (it renewed too late). */
  | { readonly type: 'lease-lost'; readonly name: string };

/** The `new/` and `cur/` directories of a store and a listing of `cur/`. */
export interface LeaseAreas {
  readonly newDir: string;
  readonly curDir: string;
  listCur(): AsyncIterable<Entry>;
  /** Makes a directory's changes durable (durability `full`); absent otherwise. */
  readonly sync?: ((dir: string) => Promise<void>) | undefined;
}

/** Options of `FileStore.requeue()`. */
export interface RequeueOptions {
  /**
   * Requeue the files in `cur/` whose lease was last renewed (or that were
   * claimed) more than this many milliseconds ago. Required unless `names`
   * is given.
   */
  olderThan?: number;
  /**
   * An expired file already delivered this many times is parked instead
   * (left in `cur/`, marked, never requeued by age again).
   * @default Infinity (never park)
   */
  maxDeliveries?: number;
  /**
   * Requeue these files by hand instead, whatever their age and even when
   * parked; the delivery count of a parked file starts again at 0. Rejects with `ENOENT`
   * for a name not in `cur/` and `EEXIST` for one that `new/` holds too.
   */
  names?: Iterable<string>;
  /** Called for each file requeued, repaired, parked or skipped as a collision. */
  onEvent?: (event: LeaseEvent) => void;
}

/** Checks the options of a requeue by age; the values in milliseconds. */
export function requeueLimits(options: RequeueOptions): { olderThan: number; maxDeliveries: number } {
  const { olderThan, maxDeliveries = Number.POSITIVE_INFINITY } = options;
  if (typeof olderThan !== 'number' || !Number.isFinite(olderThan) || olderThan < 0) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option olderThan must be a non-negative number of milliseconds');
  }
  assertMaxDeliveries(maxDeliveries);
  return { olderThan, maxDeliveries };
}

/** Throws `ERR_INVALID_OPTION` unless `value` is a whole number >= 1 or Infinity. */
export function assertMaxDeliveries(value: unknown): asserts value is number {
  if (
    typeof value !== 'number' ||
    !(value === Number.POSITIVE_INFINITY || (Number.isInteger(value) && value >= 1 && value < PARKED_BASE))
  ) {
    throw new FileStoreError(
      'ERR_INVALID_OPTION',
      `option maxDeliveries must be a whole number in [1, ${PARKED_BASE - 1}] or Infinity`,
    );
  }
}

/**
 * One pass over `cur/`: every file whose lease is older than `olderThan` goes
 * back to `new/` (or is parked once delivered `maxDeliveries` times), every
 * dead pair is repaired. Resolves with the names moved to `new/`.
 */
export async function requeueExpired(
  areas: LeaseAreas,
  olderThan: number,
  maxDeliveries: number,
  onEvent?: (event: LeaseEvent) => void,
): Promise<string[]> {
  const requeued: string[] = [];
  for await (const { name } of areas.listCur()) {
    const event = await requeueIfExpired(areas, name, Date.now() - olderThan, maxDeliveries);
    if (event === null) continue;
    if (event.type === 'requeued' || event.type === 'repaired') requeued.push(name);
    onEvent?.(event);
  }
  return requeued;
}

/** Requeues, parks or repairs `name` when its lease is older than `cutoff`; `null` when it is left as it is. */
export async function requeueIfExpired(
  areas: LeaseAreas,
  name: string,
  cutoff: number,
  maxDeliveries: number,
): Promise<LeaseEvent | null> {
  const curPath = areas.curDir + sep + name;
  const newPath = areas.newDir + sep + name;
  const stats = await lstatOrNull(curPath);
  if (stats === null || !stats.isFile() || stats.ctimeMs >= cutoff) return null;
  const { deliveries, parked } = deliveryState(stats);
  if (parked) return null;
  if (deliveries >= maxDeliveries) {
    await markParked(curPath, deliveries);
    return { type: 'parked', name, deliveries };
  }
  try {
    await link(fsPath(curPath), fsPath(newPath));
  } catch (err) {
    return linkFailed(err as NodeJS.ErrnoException, name, stats, curPath, newPath, cutoff);
  }
  const again = await lstatOrNull(curPath);
  if (again === null || again.ino !== stats.ino || again.atimeMs !== stats.atimeMs || again.mtimeMs !== stats.mtimeMs) {
    // renewed, parked, acknowledged or redelivered since the first look: the move is undone
    await unlink(fsPath(newPath)).catch(ignoreMissing);
    return null;
  }
  await finishMove(areas, curPath);
  return { type: 'requeued', name, deliveries };
}

async function linkFailed(
  err: NodeJS.ErrnoException,
  name: string,
  stats: Stats,
  curPath: string,
  newPath: string,
  cutoff: number,
): Promise<LeaseEvent | null> {
  if (err.code === 'ENOENT') return null; // acknowledged or requeued by another meanwhile
  if (err.code !== 'EEXIST') throw err;
  const waiting = await lstatOrNull(newPath);
  if (waiting === null) return null;
  if (!sameFile(waiting, stats)) return { type: 'collision', name };
  return (await repairIfDead(curPath, waiting, cutoff)) ? { type: 'repaired', name } : null;
}

/**
 * Removes the `cur/` name of a pair (the same file in `new/` and `cur/`)
 * whose ctime is older than `cutoff`, so the file waits in `new/` alone.
 * `stats` are the `new/` name's. Resolves `true` when it did.
 */
export async function repairIfDead(curPath: string, stats: Stats, cutoff: number): Promise<boolean> {
  if (stats.ctimeMs >= cutoff || stats.nlink < 2) return false;
  const claimed = await lstatOrNull(curPath);
  if (claimed === null || !sameFile(claimed, stats) || claimed.ctimeMs >= cutoff) return false;
  await unlink(fsPath(curPath)).catch(ignoreMissing);
  return true;
}

/**
 * Moves named files from `cur/` back to `new/` by hand, parked or not; a
 * parked file's delivery count starts again. Rejects with `ENOENT` or `EEXIST` at
 * the first file that cannot be moved.
 */
export async function requeueNames(areas: LeaseAreas, names: Iterable<string>): Promise<string[]> {
  const requeued: string[] = [];
  for (const name of names) {
    const curPath = areas.curDir + sep + name;
    const stats = await lstat(fsPath(curPath));
    if (deliveryState(stats).parked) {
      // no consumer holds a parked file: its count can start again
      const now = new Date();
      await utimes(fsPath(curPath), now, now);
    }
    await link(fsPath(curPath), fsPath(areas.newDir + sep + name));
    await finishMove(areas, curPath);
    requeued.push(name);
  }
  return requeued;
}

/**
 * The second half of a move cur/ -> new/ whose `link` is done: with
 * durability `full`, `new/` is synced before the `cur/` name goes, so a
 * power cut leaves the file in one area or both (a pair, repaired later),
 * never in neither.
 */
export async function finishMove(areas: LeaseAreas, curPath: string): Promise<void> {
  await areas.sync?.(areas.newDir);
  await unlink(fsPath(curPath)).catch(ignoreMissing);
  await areas.sync?.(areas.curDir);
}

/** Records the start of delivery number `deliveries` (and renews the lease). */
export async function markDelivered(path: string, deliveries: number): Promise<void> {
  await utimes(fsPath(path), new Date(), deliveries);
}

/** Marks the file parked after `deliveries` deliveries. */
export async function markParked(path: string, deliveries: number): Promise<void> {
  await utimes(fsPath(path), new Date(), PARKED_BASE + deliveries);
}

/** What a renewal found. */
export type Renewal = 'renewed' | 'lost' | 'gone';

/**
 * Renews the lease on `path` when the file there is still delivery number
 * `deliveries` of inode `ino`: `'lost'` when another delivery of it holds the
 * name now, `'gone'` when nothing of that name is in `cur/` (acknowledged, or
 * requeued).
 */
export async function renewLease(path: string, ino: number, deliveries: number): Promise<Renewal> {
  const stats = await lstatOrNull(path);
  if (stats === null) return 'gone';
  if (stats.ino !== ino) return 'gone';
  const state = deliveryState(stats);
  if (state.parked || state.deliveries !== deliveries) return 'lost';
  await utimes(fsPath(path), new Date(), deliveries).catch(ignoreMissing);
  return 'renewed';
}

/** Whether two stats are of the same file. */
export function sameFile(a: Stats, b: Stats): boolean {
  return a.ino === b.ino && a.dev === b.dev;
}

/** `lstat`, or `null` when the path does not exist. */
export async function lstatOrNull(path: string): Promise<Stats | null> {
  return lstat(fsPath(path)).catch(ignoreMissing);
}

function ignoreMissing(err: NodeJS.ErrnoException): null {
  if (err.code === 'ENOENT') return null;
  throw err;
}
