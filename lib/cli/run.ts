/**
 * The dispatcher: picks the command, splits its arguments with
 * `node:util` parseArgs (as a tokenizer only, so every complaint about the
 * command line is in this program's words), answers `--help`, lets the
 * command's specs read the values, and turns every error into one line on
 * stderr and an exit code (`exit.ts`).
 */
import { readFileSync } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { constants } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { Interrupted, UsageError, type Command, type Io, type TokenizedLine } from './command.js';
import { commands } from './commands.js';
import { EXIT_DONE, EXIT_FAILED, EXIT_SIGNAL_BASE, EXIT_USAGE } from './exit.js';
import { PROGRAM, errorLine, errorJson, escapeName } from './output.js';

/** Error codes that mean the command line was wrong: exit code 2. */
const USAGE_CODES = new Set(['ERR_USAGE', 'ERR_INVALID_NAME', 'ERR_INVALID_AREA']);

/** Runs the command line `argv` (without `node` and the script) and resolves to the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  let store: string | undefined;
  try {
    const [first, ...rest] = argv;
    if (first === undefined) throw new UsageError(`missing command (see '${PROGRAM} --help')`);
    if (first === '--help' || first === '-h' || first === 'help') {
      const command = rest[0] === undefined ? undefined : lookup(rest[0]);
      io.stdout.write(command === undefined ? globalHelp() : commandHelp(command));
      return EXIT_DONE;
    }
    if (first === '--version') {
      io.stdout.write(`${version()}\n`);
      return EXIT_DONE;
    }
    const command = lookup(first);
    if (beforeDashes(rest).some((arg) => arg === '--help' || arg === '-h')) {
      io.stdout.write(commandHelp(command));
      return EXIT_DONE;
    }
    const prepared = command.prepare(tokenize(command, rest), io);
    store = prepared.store;
    return await prepared.run(io);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return EXIT_FAILED;
    const reported = await explain(err, store, io.signal);
    io.stderr.write(`${wantsJson(argv) ? errorJson(reported) : errorLine(reported)}\n`);
    return exitCode(reported, io.signal);
  }
}

/** Splits `args` into positionals and option texts, checking every option against the command's. */
function tokenize(command: Command, args: string[]): TokenizedLine {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean', short: 'h' } };
  for (const [key, spec] of Object.entries(command.options)) {
    options[key] = { type: spec.kind === 'flag' ? 'boolean' : 'string', ...(spec.short ? { short: spec.short } : {}) };
  }
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  const positionals: string[] = [];
  const given = new Map<string, string | true>();
  const after: string[] = [];
  let terminated = false;
  for (const token of tokens) {
    if (token.kind === 'option-terminator') terminated = true;
    else if (token.kind === 'positional') (terminated && command.takesCommand ? after : positionals).push(token.value);
    else {
      const text = optionText(command, token.name, token.rawName, token.value, token.inlineValue);
      const before = given.get(token.name);
      if (typeof before === 'string') {
        // last-wins would silently drop a value (--allow-host a --allow-host b)
        throw new UsageError(
          `--${token.name} is given twice (${JSON.stringify(before)} and ${JSON.stringify(text)}): give it once`,
        );
      }
      given.set(token.name, text);
    }
  }
  return { positionals, given, command: after };
}

function optionText(
  command: Command,
  name: string,
  raw: string,
  value: string | undefined,
  inline: boolean | undefined,
): string | true {
  const spec = name === 'help' ? ({ kind: 'flag' } as const) : command.options[name];
  if (spec === undefined) {
    throw new UsageError(
      `${command.name} has no option ${raw} (see '${PROGRAM} ${command.name} --help'); an argument that starts with - goes after --, as in: ${PROGRAM} ${command.name} -- ${raw}`,
    );
  }
  if (spec.kind === 'flag') {
    if (value !== undefined) throw new UsageError(`${raw} takes no value, got ${raw}=${value}`);
    return true;
  }
  if (value === undefined) throw new UsageError(`${raw} needs a value`);
  if (inline !== true && value.startsWith('-') && value !== '-') {
    throw new UsageError(`${raw} needs a value, got the option ${value} (write ${raw}=${value} if that is the value)`);
  }
  return value;
}

/** Says what a missing store means, and a signal's interruption in plain words. */
async function explain(err: unknown, store: string | undefined, signal: AbortSignal): Promise<unknown> {
  // whatever failed after the signal failed because of it (an aborted pipeline, a destroyed input)
  if (signal.aborted && signal.reason instanceof Interrupted) return signal.reason;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ENOENT' && store !== undefined) {
    const missing = await missingAreas(store);
    if (missing.length > 0) {
      const where = escapeName(store);
      return {
        code,
        message: `no store at ${where} (${missing.map((area) => `${area}/`).join(', ')} missing): create it with '${PROGRAM} prepare ${where}'`,
      };
    }
  }
  return err;
}

async function missingAreas(root: string): Promise<string[]> {
  const missing: string[] = [];
  for (const area of ['tmp', 'new', 'cur']) {
    const found = await lstat(join(root, area)).then(
      () => true,
      (err: NodeJS.ErrnoException) => err.code !== 'ENOENT' && err.code !== 'ENOTDIR',
    );
    if (!found) missing.push(area);
  }
  return missing;
}

function exitCode(err: unknown, signal: AbortSignal): number {
  if (err instanceof Interrupted && signal.reason === err) {
    return EXIT_SIGNAL_BASE + (constants.signals[err.signal] ?? 0);
  }
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && USAGE_CODES.has(code) ? EXIT_USAGE : EXIT_FAILED;
}

/** Whether `--json` was given before any `--`: errors are then JSON too. */
function wantsJson(argv: readonly string[]): boolean {
  return beforeDashes(argv).includes('--json');
}

function beforeDashes(argv: readonly string[]): readonly string[] {
  const end = argv.indexOf('--');
  return end === -1 ? argv : argv.slice(0, end);
}

function lookup(name: string): Command {
  const command = commands.get(name);
  if (command === undefined) throw new UsageError(`unknown command ${JSON.stringify(name)} (see '${PROGRAM} --help')`);
  return command;
}

function globalHelp(): string {
  const width = Math.max(...[...commands.keys()].map((name) => name.length));
  const lines = [...commands.values()].map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: ${PROGRAM} COMMAND [ARGS...]

Hand files between processes through a maildir-style store: DIR holds
tmp/, new/ and cur/; AREA is one of tmp, new, cur. Arguments go in one
order: DIR, then the area(s), then the name.

Errors are one line on stderr: "${PROGRAM}: CODE: message" (with --json:
{"error":{"code":"CODE","message":"..."}}).

Exit codes:
  0    done
  1    failed (the error line says why)
  2    usage error: unknown command or option, wrong arguments, invalid name or area
  3    claim: the file was not claimed (another caller won, or it is not in new/)
  130  interrupted by SIGINT (128 + the signal's number; 143 for SIGTERM)

Commands:
${lines.join('\n')}

Run '${PROGRAM} COMMAND --help' for a command's arguments and options.
`;
}

function commandHelp(command: Command): string {
  return `Usage: ${PROGRAM} ${command.name} ${command.usage}

${command.help}
`;
}

function version(): string {
  const pkg: unknown = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return typeof pkg === 'object' && pkg !== null && 'version' in pkg ? String(pkg.version) : 'unknown';
}
