/**
 * The consumer's claim loop behind `FileStore.consume()`.
 *
 * A pass reads `new/` through `list()` in batches of {@link CONSUME_BATCH_SIZE}
 * names, sorts each batch by name (generated names start with the creation
 * second) and claims its names one by one, yielding only the ones this caller
 * won. Memory holds one batch, however many files wait.
 *
 * Follow mode repeats the pass whenever `fs.watch` reports a change in `new/`
 * and at the latest every `pollInterval` ms, because watch events can be
 * dropped and never arrive for commits made by other hosts on a network file
 * system. Between passes it sleeps on the watcher, one timer and the abort
 * signal: an idle follower costs one directory read per interval.
 */
import { watch, type FSWatcher } from 'node:fs';
import { FileStoreError } from './errors.js';
import type { Entry } from './listing.js';

/** What the claim loop needs of a store: its `new/` directory, a listing of it and a claim. */
export interface ClaimSource {
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
   * whether or not `fs.watch` reported anything.
   * @default 1000
   */
  pollInterval?: number;
}

/** Default of {@link ConsumeOptions.pollInterval}, in milliseconds. */
export const DEFAULT_POLL_INTERVAL = 1000;

/** How many names of `new/` a pass reads, sorts and claims at a time. */
export const CONSUME_BATCH_SIZE = 1024;

const MAX_TIMER_DELAY = 2 ** 31 - 1;

/**
 * Claims the files of `source`'s `new/` one by one and yields each file this
 * caller won, already moved to `cur/`. Validates the options synchronously.
 * @throws FileStoreError `ERR_INVALID_OPTION`, synchronously.
 */
export function consumeStore(source: ClaimSource, options: ConsumeOptions = {}): AsyncIterableIterator<Entry> {
  if (options === null || typeof options !== 'object') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'consume options must be an object');
  }
  const { follow = false, signal, pollInterval = DEFAULT_POLL_INTERVAL } = options;
  if (typeof follow !== 'boolean') {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option follow must be a boolean');
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new FileStoreError('ERR_INVALID_OPTION', 'option signal must be an AbortSignal');
  }
  if (typeof pollInterval !== 'number' || !(pollInterval > 0 && pollInterval <= MAX_TIMER_DELAY)) {
    throw new FileStoreError(
      'ERR_INVALID_OPTION',
      `option pollInterval must be a number of milliseconds in (0, ${MAX_TIMER_DELAY}]`,
    );
  }
  return follow ? followNew(source, signal, pollInterval) : drainNew(source, signal);
}

/** One pass over `new/`: batches in directory order, each batch in name order. */
async function* drainNew(source: ClaimSource, signal: AbortSignal | undefined): AsyncGenerator<Entry> {
  let batch: string[] = [];
  for await (const { name } of source.listNew()) {
    batch.push(name);
    if (batch.length === CONSUME_BATCH_SIZE) {
      if (!(yield* claimEach(source, batch, signal))) return;
      batch = [];
    }
  }
  yield* claimEach(source, batch, signal);
}

/** Claims `names` in name order; returns false when `signal` stopped it. */
async function* claimEach(
  source: ClaimSource,
  names: string[],
  signal: AbortSignal | undefined,
): AsyncGenerator<Entry, boolean> {
  names.sort();
  for (const name of names) {
    if (signal?.aborted) return false;
    const claimed = await source.claim(name);
    if (claimed !== null) yield claimed;
  }
  return !signal?.aborted;
}

async function* followNew(
  source: ClaimSource,
  signal: AbortSignal | undefined,
  pollInterval: number,
): AsyncGenerator<Entry> {
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
      yield* drainNew(source, signal);
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
