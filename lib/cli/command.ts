/**
 * What every command of the command line is: its positionals and options,
 * each with the function that turns its text into a typed value, help text
 * and a `run` function that receives those values. The command table is
 * typed end to end: `defineCommand` infers the types `run` sees from the
 * argument and option specs, so no command casts a parsed value. The
 * dispatcher in `run.ts` answers `--help` and turns errors into exit codes,
 * so a command only does its job.
 *
 * Adding an option: list it in the command's `options` with a reader from
 * `specs.ts` (`flag()`, `text()`, `integer(fallback, min, max)`,
 * `duration()`, `durability`, `json`) or your own `ValueSpec`; `run` then
 * gets `options.name` with the reader's type. With `json` in the options,
 * print through `jsonLine`/`printNames` (`output.ts`); errors turn into
 * JSON on stderr by themselves.
 */
import type { Readable, Writable } from 'node:stream';

/** The process's streams and environment, as a command sees them. */
export interface Io {
  /** Standard input; `isTTY` and `fd` as `process.stdin` has them, to refuse a terminal or a device. */
  readonly stdin: Readable & { readonly isTTY?: boolean; readonly fd?: number };
  /** Standard output; `isTTY` as `process.stdout` has it, to refuse writing an archive to a terminal. */
  readonly stdout: Writable & { readonly isTTY?: boolean };
  /** Standard error; progress lines are drawn only when `isTTY`. */
  readonly stderr: Writable & { readonly isTTY?: boolean };
  readonly env: NodeJS.ProcessEnv;
  /**
   * Aborted on the first SIGINT or SIGTERM, with an {@link Interrupted} as
   * its reason: commands stop cleanly and remove partial files.
   */
  readonly signal: AbortSignal;
}

/** The reason of `Io.signal` when a signal stopped the command: the exit code is then 128 + its number. */
export class Interrupted extends Error {
  /** Node's code for an aborted operation, as the library's own errors carry it. */
  readonly code = 'ABORT_ERR';
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'AbortError';
    this.signal = signal;
  }
}

/** A wrong command line: exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An option without a value, e.g. `--overwrite`: `true` when given. */
export interface FlagSpec {
  readonly kind: 'flag';
  /** A one-letter alias, e.g. `0` for `-0`. */
  readonly short?: string;
}

/** An option with a value, e.g. `--port 8080`, read into a `T`. */
export interface ValueSpec<T> {
  readonly kind: 'value';
  readonly short?: string;
  /** The value's text (`undefined` when the option is absent) to its value; throws {@link UsageError}. */
  read(text: string | undefined, flag: string): T;
}

/** Any option. */
export type OptionSpec = FlagSpec | ValueSpec<unknown>;

/** A command's options, by long name. */
export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** The typed values of `O`'s options. */
export type OptionValues<O extends OptionSpecs> = {
  readonly [K in keyof O]: O[K] extends ValueSpec<infer T> ? T : boolean;
};

/** A positional argument, read into a `T`. */
export interface ArgSpec<T> {
  /** As the usage line shows it: `DIR`, `AREA`, `NAME`. */
  readonly label: string;
  /** Whether the command line may leave it out (then `read` gets `undefined`). */
  readonly optional: boolean;
  /** Whether it names the store: a missing store then says to run `prepare`. */
  readonly store?: boolean;
  /** The argument's text to its value; throws {@link UsageError} or `ERR_INVALID_*`. */
  read(text: string | undefined): T;
}

/** The typed values of the positionals `A`, in order. */
export type ArgValues<A extends readonly ArgSpec<unknown>[]> = {
  readonly [I in keyof A]: A[I] extends ArgSpec<infer T> ? T : never;
};

/** What a command's `run` receives: the parsed command line. */
export interface Invocation<A extends readonly ArgSpec<unknown>[], O extends OptionSpecs> {
  /** The positionals, read by their specs. */
  readonly args: ArgValues<A>;
  /** The options, read by their specs. */
  readonly options: OptionValues<O>;
  /** With `command: true`, the words after `--`: a command to run and its arguments. */
  readonly command: readonly string[];
}

/** How a command is declared; see {@link defineCommand}. */
export interface CommandSpec<A extends readonly ArgSpec<unknown>[], O extends OptionSpecs> {
  /** The word that selects the command. */
  readonly name: string;
  /** The arguments, as shown after the name in the usage line, e.g. `DIR [NAME] < FILE`. */
  readonly usage: string;
  /** One line for the global help. */
  readonly summary: string;
  /** The rest of the command's `--help`: what it does, its options, its exit codes. */
  readonly help: string;
  /** The positionals, in order; optional ones last. */
  readonly args: A;
  /** The options; `--help` is added to every command. */
  readonly options: O;
  /** Whether the words after `--` are a command to run (consume). */
  readonly command?: boolean;
  /**
   * Rewrites the positionals before they are read, e.g. to accept a
   * deprecated argument order; may write a warning on `io.stderr`.
   */
  readonly reorder?: (positionals: string[], io: Io) => string[];
  /** Does the work; resolves to the exit code (0 done). Throws for errors. */
  run(invocation: Invocation<A, O>, io: Io): Promise<number>;
}

/** A parsed command line, ready to run. */
export interface Prepared {
  /** The text of the store argument, when the command has one. */
  readonly store: string | undefined;
  run(io: Io): Promise<number>;
}

/** One command of `maildir-filestore`, with its types erased for the table. */
export interface Command {
  readonly name: string;
  readonly usage: string;
  readonly summary: string;
  readonly help: string;
  /** The options by long name, for the tokenizer. */
  readonly options: OptionSpecs;
  /** Whether the words after `--` are a command to run. */
  readonly takesCommand: boolean;
  /**
   * Reads the tokenized command line into typed values: throws
   * {@link UsageError} (or `ERR_INVALID_NAME`, `ERR_INVALID_AREA`) for a wrong one.
   */
  prepare(line: TokenizedLine, io: Io): Prepared;
}

/** A command line split into positionals and option texts, before the specs read them. */
export interface TokenizedLine {
  readonly positionals: string[];
  /** Each option's text by long name: `true` for a flag given, the last text for a value. */
  readonly given: ReadonlyMap<string, string | true>;
  /** The words after `--`, when the command takes a command. */
  readonly command: string[];
}

/** Declares a command; `run` sees the values of `args` and `options` with their inferred types. */
export function defineCommand<const A extends readonly ArgSpec<unknown>[], const O extends OptionSpecs>(
  spec: CommandSpec<A, O>,
): Command {
  const required = spec.args.filter((arg) => !arg.optional).length;
  const storeAt = spec.args.findIndex((arg) => arg.store === true);
  return {
    name: spec.name,
    usage: spec.usage,
    summary: spec.summary,
    help: spec.help,
    options: spec.options,
    takesCommand: spec.command === true,
    prepare(line, io) {
      const positionals = spec.reorder?.(line.positionals, io) ?? line.positionals;
      if (positionals.length < required || positionals.length > spec.args.length) {
        const max = spec.args.length;
        const expected = required === max ? `${max}` : `${required} to ${max}`;
        throw new UsageError(
          `${spec.name} takes ${expected} argument${max === 1 ? '' : 's'}, got ${positionals.length} (usage: maildir-filestore ${spec.name} ${spec.usage})`,
        );
      }
      const args = spec.args.map((arg, i) => arg.read(positionals[i])) as unknown as ArgValues<A>;
      const options = Object.fromEntries(
        Object.entries(spec.options).map(([key, option]) => {
          const text = line.given.get(key);
          return [key, option.kind === 'flag' ? text === true : option.read(text === true ? undefined : text, key)];
        }),
      ) as OptionValues<O>;
      return {
        store: storeAt === -1 ? undefined : positionals[storeAt],
        run: (runIo) => spec.run({ args, options, command: line.command }, runIo),
      };
    },
  };
}
