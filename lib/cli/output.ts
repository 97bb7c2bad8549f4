/** How the command line prints: error lines, escaped names, JSON lines. */
import type { Writable } from 'node:stream';
import { writeOut } from '../write-out.js';

/** The program's name, as errors and help show it. */
export const PROGRAM = 'maildir-filestore';

function describeError(err: unknown): { code: string; message: string } {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  let text = typeof message === 'string' ? message : String(err);
  if (text.startsWith(`${label}: `)) text = text.slice(label.length + 2);
  return { code: label, message: text.replace(/\s*\n\s*/g, ' ') };
}

/** `maildir-filestore: CODE: message` on one line. */
export function errorLine(err: unknown): string {
  const { code, message } = describeError(err);
  return `${PROGRAM}: ${code}: ${message}`;
}

/** `{"error":{"code":"CODE","message":"..."}}` on one line, what `--json` prints on stderr. */
export function errorJson(err: unknown): string {
  return JSON.stringify({ error: describeError(err) });
}

const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029]|(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/g;
const SHORT: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A name as `ls` prints it on one line: backslash as `\\`, newline, carriage
 * return and tab as `\n`, `\r`, `\t`, every other control character (C0,
 * DEL, C1, U+2028, U+2029) as `\uHHHH`, and a byte that is not UTF-8 (an
 * escaped byte of the name) as `\xHH`. Unambiguous, because every backslash
 * of the name is doubled.
 */
export function escapeName(name: string): string {
  return name.replace(UNSAFE, (c) => {
    const unit = c.charCodeAt(0);
    if (unit >= 0xdc80 && unit <= 0xdcff) return `\\x${(unit - 0xdc00).toString(16)}`;
    return SHORT[c] ?? `\\u${unit.toString(16).padStart(4, '0')}`;
  });
}

const JSON_RAW = /[\x7f-\x9f\u2028\u2029]/g;

/**
 * One JSON value on one line (JSON Lines). `JSON.stringify` escapes C0
 * controls; DEL, C1 controls and U+2028/U+2029, which it leaves raw (they
 * can only occur inside strings), are escaped too, so no name moves a terminal.
 */
export function jsonLine(value: unknown): string {
  const text = JSON.stringify(value).replace(JSON_RAW, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  return `${text}\n`;
}

const BATCH = 256;

/**
 * Writes lines to a stream in batches of 256, honouring backpressure, so a
 * long listing streams with bounded memory.
 */
export class LineWriter {
  readonly #out: Writable;
  #batch = '';
  #count = 0;

  constructor(out: Writable) {
    this.#out = out;
  }

  /** Adds one line (with its newline or NUL); writes the batch when it is full. Bytes go out as they are. */
  async add(line: string | Buffer): Promise<void> {
    if (typeof line !== 'string') {
      await this.flush();
      await writeOut(this.#out, line);
      return;
    }
    this.#batch += line;
    if (++this.#count % BATCH === 0) await this.flush();
  }

  /** Writes what is left. */
  async flush(): Promise<void> {
    if (this.#batch === '') return;
    const batch = this.#batch;
    this.#batch = '';
    await writeOut(this.#out, batch);
  }
}

/** Prints `names`, one per line: escaped, or as JSON lines `{"name","area"}` with `json`. */
export async function printNames(out: Writable, names: Iterable<string>, area: string, json: boolean): Promise<void> {
  const lines = new LineWriter(out);
  for (const name of names) await lines.add(json ? jsonLine({ name, area }) : `${escapeName(name)}\n`);
  await lines.flush();
}
