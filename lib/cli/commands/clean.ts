import { FileStore } from '../../index.js';
import { UsageError, type Command } from '../command.js';
import { writeOut } from '../../write-out.js';
import { escapeName } from '../output.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `clean DIR [--older-than 36h]`: removes what dead writers left in tmp/. */
export const clean: Command = {
  name: 'clean',
  usage: 'DIR [--older-than 36h]',
  summary: 'remove the files in tmp/ left by crashed writers, print their names',
  help: `Removes the files in DIR/tmp/ last modified longer ago than --older-than
(what crashed or abandoned writers left behind) and prints their names, one
per line, escaped as ls prints them. Never touches new/ or cur/.

Options:
  --older-than AGE   minimum age of the last modification: a number with a
                     unit, ms, s, m, h or d (90s, 15m, 36h, 2d), or plain
                     milliseconds (default: 36h, maildir's rule)`,
  options: { 'older-than': { type: 'string' } },
  args: { min: 1, max: 1 },
  async run({ positionals: [dir], values }, io) {
    const olderThan = durationOption(values['older-than'], 'older-than');
    const removed = await new FileStore(dir as string).clean({ olderThan });
    if (removed.length > 0) await writeOut(io.stdout, removed.map((name) => `${escapeName(name)}\n`).join(''));
    return 0;
  },
};

/**
 * Parses a duration option (`90s`, `15m`, `36h`, `2d`, `1.5h`, `500ms` or
 * plain milliseconds) into milliseconds, or throws {@link UsageError};
 * `undefined` when the option is absent.
 */
export function durationOption(value: string | boolean | undefined, option: string): number | undefined {
  if (value === undefined) return undefined;
  const match = typeof value === 'string' ? /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value) : null;
  const ms = match === null ? NaN : Number(match[1]) * (UNITS[match[2] ?? 'ms'] as number);
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      `--${option} must be a duration like 90s, 15m, 36h, 2d or milliseconds, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}
