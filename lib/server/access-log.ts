/**
 * Log lines of the server: one per request, plus the start, shutdown and
 * error lines of `serve`, as text or as JSON (one object a line).
 *
 * Everything that came from a client or a name (paths, error messages that
 * quote a file's path) is escaped before it reaches a line: a name may
 * carry ESC, BEL or CR, and written raw those would rewrite a terminal or
 * forge log lines.
 */

/** What the server reports about each request once it is over. */
export interface RequestLogEntry {
  /** When the request arrived. */
  readonly time: Date;
  readonly method: string;
  /** The request target as sent (percent-encoded path and query). */
  readonly path: string;
  /** The status answered; `0` when the connection closed before any answer. */
  readonly status: number;
  /** Bytes read from the connection for this request (headers and body). */
  readonly bytesIn: number;
  /** Bytes written to the connection for this answer (headers and body). */
  readonly bytesOut: number;
  /** Milliseconds from the request's arrival to the end of its answer. */
  readonly durationMs: number;
  /** The client's address. */
  readonly remote: string;
  /** The connection closed before the answer was complete. */
  readonly aborted: boolean;
}

/** How log lines are written: `text` for people, `json` for log collectors. */
export type LogFormat = 'text' | 'json';

const CONTROL = /[\\\x00-\x1f\x7f-\x9f\u2028\u2029]/g;
const SHORT: Readonly<Record<string, string>> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * `text` with every control character (C0, DEL, C1, U+2028, U+2029) as
 * `\n`, `\r`, `\t` or `\uHHHH`, and backslashes doubled, so it takes one
 * line and cannot drive a terminal.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => SHORT[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One access-log line (without the newline). */
export function accessLine(entry: RequestLogEntry, format: LogFormat): string {
  const time = entry.time.toISOString();
  const ms = Math.round(entry.durationMs * 10) / 10;
  if (format === 'json') {
    // JSON.stringify escapes C0 and DEL itself; C1 and U+2028/9 are escaped too, for line-based readers
    return escapeJsonText(
      JSON.stringify({
        time,
        event: 'request',
        method: entry.method,
        path: entry.path,
        status: entry.status,
        bytesIn: entry.bytesIn,
        bytesOut: entry.bytesOut,
        ms,
        remote: entry.remote,
        ...(entry.aborted ? { aborted: true } : {}),
      }),
    );
  }
  const status = entry.status === 0 ? '-' : String(entry.status);
  return `${time} ${escapeControl(entry.remote)} ${escapeControl(entry.method)} ${escapeControl(entry.path)} ${status} in=${entry.bytesIn} out=${entry.bytesOut} ${ms}ms${entry.aborted ? ' aborted' : ''}`;
}

/** A line about the server itself (`start`, `stop`, `error`, `warning`), with its fields. */
export function eventLine(
  event: string,
  message: string,
  fields: Readonly<Record<string, string | number | boolean | undefined>>,
  format: LogFormat,
  time = new Date(),
): string {
  if (format === 'json') return escapeJsonText(JSON.stringify({ time: time.toISOString(), event, message, ...fields }));
  return `maildir-filestore: ${escapeControl(message)}`;
}

function escapeJsonText(json: string): string {
  return json.replace(/[\x7f-\x9f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The code and message of an error, for an error line (the message escaped). */
export function describeForLog(err: unknown): { code: string; message: string } {
  const { code, message, name } = (err ?? {}) as { code?: unknown; message?: unknown; name?: unknown };
  const label = typeof code === 'string' ? code : typeof name === 'string' ? name : 'Error';
  let text = typeof message === 'string' ? message : String(err);
  if (text.startsWith(`${label}: `)) text = text.slice(label.length + 2);
  return { code: label, message: text };
}

/** The error line of a 5xx answer: `maildir-filestore: CODE: message (METHOD PATH)`, escaped. */
export function errorLine(err: unknown, method: string, path: string, format: LogFormat): string {
  const { code, message } = describeForLog(err);
  return eventLine('error', `${code}: ${message} (${method} ${path})`, { code, error: message, method, path }, format);
}
