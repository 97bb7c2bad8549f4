/**
 * Command-line arguments as bytes. Node decodes `process.argv` as UTF-8 and
 * turns a byte that is not UTF-8 into U+FFFD, so a file name made by another
 * maildir writer (`latin1-\xe9`) would reach the command as another name. On
 * Linux the kernel keeps the exact bytes in `/proc/self/cmdline`; an argument
 * that holds U+FFFD is read again from there and spelled as a store name
 * spells it (`nameFromBytes`: each such byte as U+DC00 + byte).
 */
import { readFileSync } from 'node:fs';
import { nameFromBytes } from '../names.js';

/**
 * `args` (the user's arguments, `process.argv.slice(2)`) with each one that
 * holds U+FFFD replaced by its bytes' name, when `cmdline` (NUL-separated,
 * the whole command line) ends with arguments that decode to `args`; else
 * `args` as they are.
 */
export function byteArguments(args: readonly string[], cmdline: () => Buffer = readCmdline): string[] {
  if (!args.some((arg) => arg.includes('\uFFFD'))) return [...args];
  let raw: Buffer[];
  try {
    raw = splitNul(cmdline()).slice(-args.length);
  } catch {
    return [...args];
  }
  const matches = raw.length === args.length && raw.every((bytes, i) => bytes.toString('utf8') === args[i]);
  return matches
    ? raw.map((bytes, i) => (args[i]?.includes('\uFFFD') ? nameFromBytes(bytes) : (args[i] as string)))
    : [...args];
}

function readCmdline(): Buffer {
  return readFileSync('/proc/self/cmdline');
}

function splitNul(bytes: Buffer): Buffer[] {
  const parts: Buffer[] = [];
  let from = 0;
  for (let at = bytes.indexOf(0); at !== -1; at = bytes.indexOf(0, from)) {
    parts.push(bytes.subarray(from, at));
    from = at + 1;
  }
  if (from < bytes.length) parts.push(bytes.subarray(from));
  return parts;
}
