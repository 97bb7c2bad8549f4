/** The program's name, as errors and help show it. */
export const PROGRAM = 'maildir-filestore';

/** `maildir-filestore: CODE: message` on one line. */
export function errorLine(err: unknown): string {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  let text = typeof message === 'string' ? message : String(err);
  if (text.startsWith(`${label}: `)) text = text.slice(label.length + 2);
  return `${PROGRAM}: ${label}: ${text.replace(/\s*\n\s*/g, ' ')}`;
}

const UNSAFE = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const SHORT: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A name as `ls` prints it on one line: backslash as `\\`, newline, carriage
 * return and tab as `\n`, `\r`, `\t`, and every other control character
 * (C0, DEL, C1, U+2028, U+2029) as `\uHHHH`. Unambiguous, because every
 * backslash of the name is doubled.
 */
export function escapeName(name: string): string {
  return name.replace(UNSAFE, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
