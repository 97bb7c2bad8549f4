/**
 * What every command of the command line is: a usage line, help text, its
 * `node:util` parseArgs options and a `run` function. The dispatcher in
 * `run.ts` parses, handles `--help` and turns errors into exit codes, so a
 * command only does its job.
 */
import type { Readable, Writable } from 'node:stream';
import type { ParseArgsConfig } from 'node:util';

/** The process's streams and environment, as a command sees them. */
export interface Io {
  readonly stdin: Readable;
  readonly stdout: Writable;
  readonly stderr: Writable;
  readonly env: NodeJS.ProcessEnv;
  /** Aborted on the first SIGINT or SIGTERM: commands stop cleanly and remove partial files. */
  readonly signal: AbortSignal;
}

/** The parsed command line of one command. */
export interface Invocation {
  /** The arguments after the command name that are not options. */
  readonly positionals: string[];
  /** The options, by long name. */
  readonly values: Record<string, string | boolean | undefined>;
  /** The positionals that came after a `--` (also in `positionals`), e.g. a command to run. */
  readonly afterDoubleDash: string[];
}

/** One command of `maildir-filestore`. */
export interface Command {
  /** The word that selects the command. */
  readonly name: string;
  /** The arguments, as shown after the name in the usage line, e.g. `DIR [NAME]`. */
  readonly usage: string;
  /** One line for the global help. */
  readonly summary: string;
  /** The rest of the command's `--help`: what it does, its options, its exit codes. */
  readonly help: string;
  /** Options for `parseArgs`; `--help` is added to every command. */
  readonly options?: NonNullable<ParseArgsConfig['options']>;
  /** How many positionals the command takes. */
  readonly args: { readonly min: number; readonly max: number };
  /** Does the work; resolves to the exit code (0 done, 1 failed). Throws for errors. */
  run(invocation: Invocation, io: Io): Promise<number>;
}

/** A wrong command line: exit code 2. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';

  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Parses a non-negative integer option, or throws {@link UsageError}. */
export function integerOption(value: string | boolean | undefined, option: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  if (
    typeof value !== 'string' ||
    !/^\d+$/.test(value) ||
    Number(value) < min ||
    !Number.isSafeInteger(Number(value))
  ) {
    throw new UsageError(`--${option} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}
