/**
 * `consume DIR [--follow] [--lease AGE] ... -- CMD ...`: `store.consume()` with a command per file.
 *
 * Every file the loop claims is handed to exactly one run of CMD, one at a
 * time, even when the claim had already succeeded as the stop signal came:
 * an interruption never leaves a claimed file unprocessed. Without a lease
 * a file whose CMD fails stays in cur/ (it was handed over; the caller
 * decides); with one, the library releases it for another delivery or
 * parks it. A CMD that cannot be started at all (ENOENT, EACCES) would fail
 * for every file, so the file goes back to new/ and the loop stops at once.
 *
 * Each CMD runs in a process group of its own: a timeout, a lost lease or a
 * passed-on signal reaches CMD and whatever it started, SIGKILL follows
 * after the grace period, and a watchdog (reaper.ts) kills the groups that
 * are left should consume itself be killed.
 */
import { spawn } from 'node:child_process';
import { FileStore, type Entry, type LeasedEntry } from '../../index.js';
import { hasEscapedBytes, nameToBytes } from '../../names.js';
import { UsageError, defineCommand, type Io, type ValueSpec } from '../command.js';
import { leaseEventLine } from '../lease-events.js';
import { PROGRAM, errorLine, escapeName } from '../output.js';
import { Reaper, signalGroup } from '../reaper.js';
import { dir, duration, flag, integer, parseDuration } from '../specs.js';

const USAGE =
  'DIR [--follow] [--poll-interval MS] [--lease AGE] [--retries N] [--timeout AGE] [--kill-after AGE] -- CMD [ARGS...]';

/** Default of `--kill-after`: ms between the SIGTERM and the SIGKILL of a CMD. */
const DEFAULT_KILL_AFTER = 5000;

/** Default of `--retries` with `--lease` (5 deliveries in all, the library's default). */
const DEFAULT_LEASED_RETRIES = 4;

/** `--retries N`: `undefined` when absent (the default depends on `--lease`). */
const retries: ValueSpec<number | undefined> = {
  kind: 'value',
  read: (value, option) => (value === undefined ? undefined : integer(0).read(value, option)),
};

/** A duration that must be more than 0 ms. */
function positiveDuration(): ValueSpec<number | undefined> {
  return {
    kind: 'value',
    read(value, option) {
      if (value === undefined) return undefined;
      const ms = parseDuration(value, option);
      if (!(ms >= 1 && ms <= 2 ** 31 - 1)) {
        throw new UsageError(`--${option} must be between 1ms and 24d, got ${JSON.stringify(value)}`);
      }
      return ms;
    },
  };
}

/**
 * Node hands a child its arguments and environment as UTF-8 text, so a name
 * holding bytes that are not UTF-8 cannot reach CMD as it is: for such a
 * file /bin/sh puts the bytes back (`printf %b` of octal escapes, an `x`
 * kept against the trailing-newline cut of `$(...)`) and execs CMD, in the
 * same process and group.
 */
const BYTES_BY_SHELL =
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not a template
  'n=$(printf "%bx" "$1"); p=$(printf "%bx" "$2"); FILESTORE_NAME=${n%x}; FILESTORE_PATH=${p%x}; ' +
  'export FILESTORE_NAME FILESTORE_PATH; shift 2; exec "$@" "$FILESTORE_PATH"';

/** The bytes of a path as `printf %b` reads them back: a backslash, a control byte or one over 0x7f as `\0NNN`. */
function octalEscaped(path: string): string {
  let text = '';
  for (const byte of nameToBytes(path))
    text +=
      byte < 0x20 || byte === 0x5c || byte > 0x7e
        ? `\\0${byte.toString(8).padStart(3, '0')}`
        : String.fromCharCode(byte);
  return text;
}

/** `consume DIR ... -- CMD ...`: runs CMD per claimed file. */
export const consume = defineCommand({
  name: 'consume',
  usage: USAGE,
  summary: 'claim the files in new/ one by one and run CMD on each',
  help: `Claims the files of DIR/new/ one by one (new/ -> cur/, each file by exactly
one of any number of consumers) and runs CMD ARGS... PATH for each, one
after the other. PATH, the file's absolute path in cur/, is appended as the
last argument. CMD runs without a shell, in a process group of its own,
with stdin from /dev/null, this command's stdout and stderr, and the
environment plus FILESTORE_DIR (the store), FILESTORE_NAME (the file's
name), FILESTORE_PATH (= PATH) and, with --lease, FILESTORE_DELIVERY (1 on
the first delivery).

Two modes. Without --lease a claimed file is taken for good: consume never
removes it (CMD, or a later step, removes it or moves it out of cur/), and
when CMD fails it stays in cur/ (after --retries more runs, default 0).
With --lease AGE the file is leased while CMD runs (renewed every quarter
AGE): CMD exiting 0 acknowledges it (consume removes the file if CMD left
it in cur/); CMD failing releases it to new/ for another delivery, by any
consumer, until it was delivered --retries + 1 times (default 5): then it
is parked in cur/, where 'ls DIR cur' shows it and 'requeue DIR NAME'
retries it. If consume dies, its file comes back to new/ once the lease
expires. Every consumer of a leased store must use --lease.

Without --follow it drains new/ once and exits. With --follow it then waits
for new files until SIGINT or SIGTERM; a signal stops the loop after the
running CMD has finished (a second signal is passed on to CMD's process
group, and SIGKILL follows --kill-after later).

A CMD that runs longer than --timeout gets SIGTERM, SIGKILL --kill-after
later, and counts as failed. When CMD fails (exits non-zero, is killed or
times out) an error line names the file and the loop goes on; the exit
code is then 1. When CMD cannot be started (not found, not executable),
the file goes back to new/ and consume stops with exit code 1. Processes
CMD leaves running in its group are killed when consume ends, and when
consume is killed, by a small watchdog process.

Options:
  --follow             keep waiting for new files after draining new/
  --poll-interval MS   with --follow, rescan new/ at least every MS
                       milliseconds, whatever fs.watch reports (default: 1000);
                       with --lease, also how often expired leases are swept
  --lease AGE          lease each file for AGE (90s, 15m, 500ms ...)
  --retries N          runs of CMD after a failure: with --lease, further
                       deliveries (default 4); without, runs in place (default 0)
  --timeout AGE        stop a CMD that runs longer than AGE (default: none)
  --kill-after AGE     SIGKILL a CMD this long after its SIGTERM (default: 5s)

Exit codes: 0 every file's last run of CMD here succeeded (or there was no
file), 1 a file's last run failed or timed out, CMD could not be started,
or the store failed, 2 usage error (e.g. no CMD). A signal ends consume
with one of those, never 128+N.`,
  args: [dir],
  options: {
    follow: flag(),
    'poll-interval': integer(1000, 1),
    lease: positiveDuration(),
    retries,
    timeout: positiveDuration(),
    'kill-after': duration(),
  },
  command: true,
  async run({ args: [root], options, command }, io) {
    const [file, ...args] = command;
    if (file === undefined) {
      throw new UsageError(`consume takes DIR, then -- and the command to run (usage: ${PROGRAM} consume ${USAGE})`);
    }
    const store = new FileStore(root);
    const { follow, lease, timeout } = options;
    const pollInterval = options['poll-interval'];
    const killAfter = options['kill-after'] ?? DEFAULT_KILL_AFTER;
    const runner = new Runner({ file, args, store, io, timeout, killAfter });
    try {
      if (lease === undefined) {
        const runs = (options.retries ?? 0) + 1;
        for await (const entry of store.consume({ follow, signal: io.signal, pollInterval })) {
          if (!(await runner.processTakenForGood(entry, runs))) return 1;
        }
      } else {
        const maxDeliveries = (options.retries ?? DEFAULT_LEASED_RETRIES) + 1;
        const onEvent = runner.report;
        for await (const entry of store.consume({
          follow,
          signal: io.signal,
          pollInterval,
          lease,
          maxDeliveries,
          onEvent,
        })) {
          if (!(await runner.processLeased(entry, maxDeliveries))) return 1;
        }
      }
    } finally {
      runner.close();
    }
    return runner.failed ? 1 : 0;
  },
});

/** How a run of CMD ended. */
type Ended =
  | { readonly kind: 'exited'; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'timed-out'; readonly signal: NodeJS.Signals | null }
  | { readonly kind: 'not-started'; readonly error: NodeJS.ErrnoException };

interface RunnerOptions {
  readonly file: string;
  readonly args: readonly string[];
  readonly store: FileStore;
  readonly io: Io;
  readonly timeout: number | undefined;
  readonly killAfter: number;
}

/** Runs CMD for one file at a time, in its own process group; after the stop signal, passes signals on to it. */
class Runner {
  /** The files whose last run here failed. */
  readonly #failedNames = new Set<string>();
  readonly #options: RunnerOptions;
  /** Started before the first CMD, so that registering a CMD is one write right after its spawn. */
  readonly #reaper: Reaper;
  /** The process group of the running CMD. */
  #group: number | null = null;
  readonly #forward = (signal: NodeJS.Signals): void => {
    if (this.#group !== null) this.#stop(this.#group, signal);
  };
  readonly #onAbort = (): void => {
    process.on('SIGINT', this.#forward);
    process.on('SIGTERM', this.#forward);
  };

  constructor(options: RunnerOptions) {
    this.#options = options;
    this.#reaper = new Reaper(options.killAfter);
    options.io.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** Writes a lease event (release, parking, collision ...) as a line on stderr. */
  readonly report = (event: Parameters<typeof leaseEventLine>[0]): void => {
    this.#options.io.stderr.write(`${leaseEventLine(event)}\n`);
  };

  /**
   * Runs CMD on a file taken for good, up to `runs` times until it
   * succeeds; `false` when CMD could not be started (the file then went
   * back to new/).
   */
  async processTakenForGood(entry: Entry, runs: number): Promise<boolean> {
    for (let run = 1; run <= runs; run++) {
      const ended = await this.#run(entry, undefined, undefined);
      if (ended.kind === 'not-started') {
        const where = await this.#options.store.move(entry.name, 'cur', 'new').then(
          () => 'moved back to new/',
          (err: NodeJS.ErrnoException) => `left in cur/ (moving it back to new/ failed: ${err.code ?? err.message})`,
        );
        this.#notStarted(ended.error, entry, where);
        return false;
      }
      if (succeeded(ended)) {
        this.#failedNames.delete(entry.name);
        return true;
      }
      this.#fail(ended, entry, run < runs ? `run ${run} of ${runs}, running it again` : 'left in cur/');
    }
    return true;
  }

  /**
   * Runs CMD on a leased file: success acknowledges it (removes it), a
   * failure leaves it to the library, which releases or parks it; `false`
   * when CMD could not be started.
   */
  async processLeased(entry: LeasedEntry, maxDeliveries: number): Promise<boolean> {
    const ended = await this.#run(entry, entry.deliveries, entry.signal);
    if (ended.kind === 'not-started') {
      this.#notStarted(ended.error, entry, 'released to new/');
      return false;
    }
    if (succeeded(ended) && !entry.signal.aborted) {
      this.#failedNames.delete(entry.name);
      await this.#options.store.remove(entry.name, 'cur').catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err; // CMD removed or moved it itself
      });
      return true;
    }
    if (entry.signal.aborted) return true; // reported as a lost lease; another consumer has the file
    const next = entry.deliveries < maxDeliveries ? 'released for another delivery' : 'parked';
    this.#fail(ended, entry, `delivery ${entry.deliveries} of ${maxDeliveries}, ${next}`);
    return true;
  }

  /** Runs CMD once on `entry` and resolves when its process has ended. */
  async #run(entry: Entry, delivery: number | undefined, leaseLost: AbortSignal | undefined): Promise<Ended> {
    const { file, args, store, io, timeout } = this.#options;
    const env: NodeJS.ProcessEnv = {
      ...io.env,
      FILESTORE_DIR: store.root,
      FILESTORE_NAME: entry.name,
      FILESTORE_PATH: entry.path,
    };
    if (delivery !== undefined) env.FILESTORE_DELIVERY = String(delivery);
    const [command, argv] = hasEscapedBytes(entry.path)
      ? ['/bin/sh', ['-c', BYTES_BY_SHELL, 'sh', octalEscaped(entry.name), octalEscaped(entry.path), file, ...args]]
      : [file, [...args, entry.path]];
    const child = spawn(command, argv, { stdio: ['ignore', 'inherit', 'inherit'], env, detached: true });
    const pid = child.pid;
    if (pid !== undefined) {
      this.#reaper.watch(pid);
      this.#group = pid;
    }
    let timedOut = false;
    const timer =
      timeout === undefined || pid === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            this.#stop(pid, 'SIGTERM');
          }, timeout);
    const onLost = (): void => {
      if (pid !== undefined) this.#stop(pid, 'SIGTERM');
    };
    leaseLost?.addEventListener('abort', onLost, { once: true });
    const ended = await new Promise<Ended>((resolve) => {
      child.once('error', (error) => resolve({ kind: 'not-started', error }));
      child.once('exit', (code, signal) =>
        resolve(timedOut ? { kind: 'timed-out', signal } : { kind: 'exited', code, signal }),
      );
    });
    clearTimeout(timer);
    leaseLost?.removeEventListener('abort', onLost);
    this.#group = null;
    if (pid !== undefined) this.#settleGroup(pid);
    return ended;
  }

  /** Sends `signal` to the group of `pgid`, and SIGKILL `--kill-after` later if any of it is left. */
  #stop(pgid: number, signal: NodeJS.Signals): void {
    if (!signalGroup(pgid, signal)) return;
    setTimeout(() => signalGroup(pgid, 'SIGKILL'), this.#options.killAfter).unref();
  }

  /** After CMD exited: an empty group is released; one with processes left stays watched, killed when consume ends. */
  #settleGroup(pgid: number): void {
    if (!signalGroup(pgid, 0)) this.#reaper.release(pgid);
  }

  #fail(ended: Ended, entry: Entry, what: string): void {
    this.#failedNames.add(entry.name);
    const { file, timeout } = this.#options;
    const how =
      ended.kind === 'timed-out'
        ? `timed out after ${timeout} ms (stopped by ${ended.signal ?? 'SIGTERM'})`
        : ended.kind === 'exited' && ended.signal === null
          ? `exited with status ${ended.code}`
          : `was killed by ${ended.kind === 'exited' ? ended.signal : 'a signal'}`;
    this.#options.io.stderr.write(
      `${errorLine({ code: 'ERR_COMMAND_FAILED', message: `${file} ${how} on ${escapeName(entry.name)}, ${what}` })}\n`,
    );
  }

  #notStarted(error: NodeJS.ErrnoException, entry: Entry, where: string): void {
    const { file, io } = this.#options;
    const message = `cannot run ${JSON.stringify(file)} (${error.message}); ${escapeName(entry.name)} ${where}`;
    io.stderr.write(`${errorLine({ code: error.code, message })}\n`);
  }

  /** Whether a file's last run of CMD here failed. */
  get failed(): boolean {
    return this.#failedNames.size > 0;
  }

  /** Stops passing signals on; the watchdog kills the groups CMDs left running (SIGTERM, then SIGKILL). */
  close(): void {
    this.#options.io.signal.removeEventListener('abort', this.#onAbort);
    process.off('SIGINT', this.#forward);
    process.off('SIGTERM', this.#forward);
    this.#reaper.close();
  }
}

function succeeded(ended: Ended): boolean {
  return ended.kind === 'exited' && ended.code === 0;
}
