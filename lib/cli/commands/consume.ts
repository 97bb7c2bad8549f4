/**
 * `consume DIR [--follow] -- CMD ...`: `store.consume()` with a command per file.
 *
 * Every file the loop claims is handed to exactly one run of CMD, one at a
 * time, even when the claim had already succeeded as the stop signal came:
 * an interruption never leaves a claimed file unprocessed. A file whose CMD
 * fails stays in cur/ (it was handed over; the caller decides), the loop goes
 * on, and the exit code says that something failed. A CMD that cannot be
 * started at all (ENOENT, EACCES) would fail for every file, so the file goes
 * back to new/ and the loop stops at once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { FileStore, type Entry } from '../../index.js';
import { UsageError, defineCommand, type Io } from '../command.js';
import { PROGRAM, errorLine, escapeName } from '../output.js';
import { dir, flag, integer } from '../specs.js';

const USAGE = 'DIR [--follow] [--poll-interval MS] -- CMD [ARGS...]';

/** `consume DIR [--follow] [--poll-interval MS] -- CMD ...`: runs CMD per claimed file. */
export const consume = defineCommand({
  name: 'consume',
  usage: USAGE,
  summary: 'claim the files in new/ one by one and run CMD on each',
  help: `Claims the files of DIR/new/ one by one (new/ -> cur/, each file by exactly
one of any number of consumers) and runs CMD ARGS... PATH for each, one
after the other. PATH, the file's absolute path in cur/, is appended as the
last argument. CMD runs without a shell, with stdin from /dev/null, this
command's stdout and stderr, and the environment plus FILESTORE_DIR (the
store), FILESTORE_NAME (the file's name) and FILESTORE_PATH (= PATH).
consume never removes the file: CMD (or a later step) removes it or moves
it out of cur/.

Without --follow it drains new/ once and exits. With --follow it then waits
for new files until SIGINT or SIGTERM; a signal stops the loop after the
running CMD has finished (a second signal is passed on to CMD).

When CMD exits non-zero or is killed, an error line names the file (left
in cur/) and the loop goes on; the exit code is then 1. When CMD cannot be
started (not found, not executable), the file is moved back to new/ and
the command stops with exit code 1.

Options:
  --follow             keep waiting for new files after draining new/
  --poll-interval MS   with --follow, rescan new/ at least every MS
                       milliseconds, whatever fs.watch reports (default: 1000)

Exit codes: 0 every CMD succeeded (or there was no file), 1 a CMD failed or
could not be started, or the store failed, 2 usage error (e.g. no CMD).`,
  args: [dir],
  options: { follow: flag(), 'poll-interval': integer(1000, 1) },
  command: true,
  async run({ args: [root], options, command }, io) {
    const [file, ...args] = command;
    if (file === undefined) {
      throw new UsageError(`consume takes DIR, then -- and the command to run (usage: ${PROGRAM} consume ${USAGE})`);
    }
    const store = new FileStore(root);
    const pollInterval = options['poll-interval'];
    const follow = options.follow;
    const runner = new Runner(file, args, store, io);
    try {
      for await (const entry of store.consume({ follow, signal: io.signal, pollInterval })) {
        if (!(await runner.process(entry))) return 1;
      }
    } finally {
      runner.close();
    }
    return runner.failed ? 1 : 0;
  },
});

/** Runs CMD for one file at a time; after the stop signal, passes further signals on to it. */
class Runner {
  #failed = false;
  readonly #file: string;
  readonly #args: readonly string[];
  readonly #store: FileStore;
  readonly #io: Io;
  #child: ChildProcess | null = null;
  readonly #forward = (signal: NodeJS.Signals): void => {
    this.#child?.kill(signal);
  };
  readonly #onAbort = (): void => {
    process.on('SIGINT', this.#forward);
    process.on('SIGTERM', this.#forward);
  };

  constructor(file: string, args: readonly string[], store: FileStore, io: Io) {
    this.#file = file;
    this.#args = args;
    this.#store = store;
    this.#io = io;
    io.signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * Runs CMD on `entry` and resolves when it has ended: `true` when it ran
   * (successfully or not, a failure reported on stderr), `false` when it
   * could not be started (reported too, the file moved back to new/).
   */
  async process(entry: Entry): Promise<boolean> {
    const child = spawn(this.#file, [...this.#args, entry.path], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...this.#io.env, FILESTORE_DIR: this.#store.root, FILESTORE_NAME: entry.name, FILESTORE_PATH: entry.path },
    });
    this.#child = child;
    const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
      child.once('error', resolve);
      child.once('exit', (code, signal) => resolve({ code, signal }));
    });
    this.#child = null;
    const name = escapeName(entry.name);
    if (ended instanceof Error) {
      const where = await this.#store.move(entry.name, 'cur', 'new').then(
        () => 'moved back to new/',
        (err: NodeJS.ErrnoException) => `left in cur/ (moving it back to new/ failed: ${err.code ?? err.message})`,
      );
      const { code } = ended as NodeJS.ErrnoException;
      this.#io.stderr.write(
        `${errorLine({ code, message: `cannot run ${JSON.stringify(this.#file)} (${ended.message}); ${name} ${where}` })}\n`,
      );
      return false;
    }
    if (ended.code !== 0) {
      this.#failed = true;
      const how = ended.signal === null ? `exited with status ${ended.code}` : `was killed by ${ended.signal}`;
      this.#io.stderr.write(
        `${errorLine({ code: 'ERR_COMMAND_FAILED', message: `${this.#file} ${how} on ${name}, left in cur/` })}\n`,
      );
    }
    return true;
  }

  /** Whether a CMD exited non-zero or was killed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Stops passing signals on. */
  close(): void {
    this.#io.signal.removeEventListener('abort', this.#onAbort);
    process.off('SIGINT', this.#forward);
    process.off('SIGTERM', this.#forward);
  }
}
