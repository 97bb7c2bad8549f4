/**
 * The progress line of long exports and imports. It is drawn on a terminal
 * only: when stderr is a file or a pipe the meter stays silent, so scripts
 * and logs see nothing but errors. The line is redrawn in place with `\r`,
 * at most once per interval, and ended with a newline by `finish()`.
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
}

/** A stream that may be a terminal, as `process.stderr` is. */
export type MaybeTty = Writable & { isTTY?: boolean };

/** One line of progress: `exporting: 3 files, 1.5 MB`. */
export function progressLine(label: string, files: number, bytes: number): string {
  return `${label}: ${files} file${files === 1 ? '' : 's'}, ${formatBytes(bytes)}`;
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
  #lastDraw: number;
  #finished = false;

  constructor(stream: MaybeTty, label: string, options: ProgressOptions = {}) {
    this.#stream = stream;
    this.#label = label;
    this.#interval = options.interval ?? 250;
    this.#now = options.now ?? Date.now;
    this.#enabled = stream.isTTY === true;
    this.#lastDraw = this.#now();
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
    // \r returns to the line's start, ESC [ K clears what a longer previous line left
    this.#stream.write(`\r${PROGRAM}: ${progressLine(this.#label, files, bytes)}\x1b[K`);
  }
}
