/**
 * The dispatcher: picks the command, parses its arguments with
 * `node:util` parseArgs, answers `--help`, and turns every error into one
 * line on stderr and an exit code: 0 done, 1 failed, 2 usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { UsageError, type Command, type Io } from './command.js';
import { commands } from './commands.js';
import { PROGRAM, errorLine } from './output.js';

/** Error codes that mean the command line was wrong: exit code 2. */
const USAGE_CODES = new Set(['ERR_USAGE', 'ERR_INVALID_NAME', 'ERR_INVALID_AREA']);

/** Runs the command line `argv` (without `node` and the script) and resolves to the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  try {
    const [first, ...rest] = argv;
    if (first === undefined) throw new UsageError(`missing command (see '${PROGRAM} --help')`);
    if (first === '--help' || first === '-h' || first === 'help') {
      const command = rest[0] === undefined ? undefined : lookup(rest[0]);
      io.stdout.write(command === undefined ? globalHelp() : commandHelp(command));
      return 0;
    }
    if (first === '--version') {
      io.stdout.write(`${version()}\n`);
      return 0;
    }
    const command = lookup(first);
    const { values, positionals, tokens } = parseArgs({
      args: rest,
      options: { ...command.options, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
      tokens: true,
    });
    if (values.help === true) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    const { min, max } = command.args;
    if (positionals.length < min || positionals.length > max) {
      const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
      throw new UsageError(
        `${command.name} takes ${expected} argument${max === 1 ? '' : 's'}, got ${positionals.length} (usage: ${PROGRAM} ${command.name} ${command.usage})`,
      );
    }
    const dashes = tokens.findIndex((token) => token.kind === 'option-terminator');
    const afterDoubleDash =
      dashes === -1
        ? []
        : tokens.slice(dashes + 1).flatMap((token) => (token.kind === 'positional' ? [token.value] : []));
    return await command.run(
      { positionals, values: values as Record<string, string | boolean | undefined>, afterDoubleDash },
      io,
    );
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return 1;
    io.stderr.write(`${errorLine(err)}\n`);
    return exitCode(err);
  }
}

function exitCode(err: unknown): number {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (USAGE_CODES.has(code) || code.startsWith('ERR_PARSE_ARGS_')) ? 2 : 1;
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
tmp/, new/ and cur/; AREA is one of tmp, new, cur.

Commands:
${lines.join('\n')}

Run '${PROGRAM} COMMAND --help' for a command's arguments and options.
Exit codes: 0 done, 1 failed (or claim lost), 2 usage error.
Errors are one line on stderr: "${PROGRAM}: CODE: message".
`;
}

function commandHelp(command: Command): string {
  return `Usage: ${PROGRAM} ${command.name} ${command.usage}

${command.help}
`;
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}
