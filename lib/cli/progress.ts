/**
 * The progress line of long exports and imports. It is drawn on a terminal
 * only: when stderr is a file or a pipe the meter stays silent, so scripts
 * and logs see nothing but errors. The line is redrawn in place with `\r`,
 * at most once per interval, and ended with a newline by `finish()`. Where a
 * total is known (the area's file count for an export, the archive's size
 * for an import from a file) the line shows it, and once an interval has
 * passed, the rate in bytes per second.
 */
import type { Writable } from 'node:stream';
import { PROGRAM } from './output.js';

/** Options of {@link ProgressMeter}. */
export interface ProgressOptions {
  /**
   * Least milliseconds between two redraws.
   * @default 250
   */
  interval?: number;
  /**
   * The clock, in milliseconds.
   * @default Date.now
   */
  now?: () => number;
  /** What the whole job is, where known; {@link ProgressMeter.setTotal} can add it later. */
  total?: ProgressTotal;
}

/** The size of the whole job, as far as it is known. */
export interface ProgressTotal {
  files?: number;
  bytes?: number;
}

/** What a progress line shows besides the counts. */
export interface ProgressExtras {
  total?: ProgressTotal;
  /** Bytes per second so far. */
  rate?: number;
}

/** A stream that may be a terminal, as `process.stderr` is. */
export type MaybeTty = Writable & { isTTY?: boolean };

/**
 * One line of progress: `exporting: 3 files, 1.5 MB`, with totals and a rate
 * where known: `exporting: 3 of 10 files, 1.5 MB, 2.0 MB/s`,
 * `importing: 3 files, 1.5 MB of 4.0 MB (37%), 2.0 MB/s`.
 */
export function progressLine(label: string, files: number, bytes: number, extras: ProgressExtras = {}): string {
  const { total = {}, rate } = extras;
  const plural = (total.files ?? files) === 1 ? '' : 's';
  const counted = total.files === undefined ? `${files} file${plural}` : `${files} of ${total.files} file${plural}`;
  const size =
    total.bytes === undefined
      ? formatBytes(bytes)
      : `${formatBytes(bytes)} of ${formatBytes(total.bytes)} (${percent(bytes, total.bytes)}%)`;
  return `${label}: ${counted}, ${size}${rate === undefined ? '' : `, ${formatBytes(Math.round(rate))}/s`}`;
}

function percent(part: number, whole: number): number {
  return whole === 0 ? 100 : Math.min(100, Math.floor((part / whole) * 100));
}

/** A byte count with a decimal unit: `512 B`, `1.5 kB`, `12.3 MB`, `4.0 GB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Draws {@link progressLine} on `stream` while it is a terminal; does nothing otherwise. */
export class ProgressMeter {
  readonly #stream: MaybeTty;
  readonly #label: string;
  readonly #interval: number;
  readonly #now: () => number;
  readonly #enabled: boolean;
  readonly #start: number;
  #total: ProgressTotal;
  #lastDraw: number;
  #finished = false;

  constructor(stream: MaybeTty, label: string, options: ProgressOptions = {}) {
    this.#stream = stream;
    this.#label = label;
    this.#interval = options.interval ?? 250;
    this.#now = options.now ?? Date.now;
    this.#enabled = stream.isTTY === true;
    this.#total = { ...options.total };
    this.#start = this.#now();
    this.#lastDraw = this.#start;
  }

  /** Adds what became known about the whole job (a count that finished after the work began). */
  setTotal(total: ProgressTotal): void {
    this.#total = { ...this.#total, ...total };
  }

  /** Whether anything is drawn: `stream` is a terminal. */
  get enabled(): boolean {
    return this.#enabled;
  }

  /** Reports the counts so far; redraws when the interval has passed since the last draw. */
  update(files: number, bytes: number): void {
    if (!this.#enabled || this.#finished) return;
    const now = this.#now();
    if (now - this.#lastDraw < this.#interval) return;
    this.#lastDraw = now;
    this.#draw(files, bytes);
  }

  /** Draws the final counts and ends the line; later calls do nothing. */
  finish(files: number, bytes: number): void {
    if (!this.#enabled || this.#finished) return;
    this.#finished = true;
    this.#draw(files, bytes);
    this.#stream.write('\n');
  }

  #draw(files: number, bytes: number): void {
    const elapsed = this.#now() - this.#start;
    const rate = elapsed >= this.#interval ? (bytes * 1000) / elapsed : undefined;
    const line = progressLine(
      this.#label,
      files,
      bytes,
      rate === undefined ? { total: this.#total } : { total: this.#total, rate },
    );
    // \r returns to the line's start, ESC [ K clears what a longer previous line left
    this.#stream.write(`\r${PROGRAM}: ${line}\x1b[K`);
  }
}
