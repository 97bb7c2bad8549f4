/**
 * Files and bytes per area, for `/metrics`, `/stats` and the page, without
 * reading a directory on every request.
 *
 * A count walks each area with `opendir` (entries stream in batches, the
 * directory is never held whole) and `lstat`s the entries, so it costs
 * time in proportion to the store. Counts are therefore cached: a request
 * gets the last count when it is younger than `interval`, and a new count
 * starts at most once per `interval`, whatever the number of requests
 * (concurrent requests share one walk). The newest files of `new` and `cur`
 * (by modification time) are kept on the way, a few dozen at most.
 */
import { opendir, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { AREAS, fsPath, nameFromLatin1, type Area } from '../names.js';

/** Files and bytes of one area. */
export interface AreaCount {
  readonly files: number;
  readonly bytes: number;
}

/** A recent file of `new` or `cur`. */
export interface RecentFile {
  readonly name: string;
  readonly area: Area;
  readonly size: number;
  /** Modification time, in milliseconds since the epoch. */
  readonly mtime: number;
}

/** One count of the store. */
export interface StoreCount {
  readonly areas: Readonly<Record<Area, AreaCount>>;
  /** The newest files of `new` and `cur`, newest first. */
  readonly newest: readonly RecentFile[];
  /** When the count was taken, in milliseconds since the epoch. */
  readonly countedAt: number;
  /** Milliseconds the count took. */
  readonly tookMs: number;
}

const STAT_BATCH = 64;

/** A cached count of a store's areas, refreshed at most once per `interval` milliseconds. */
export class AreaStats {
  readonly #root: string;
  readonly #interval: number;
  readonly #keep: number;
  #last: StoreCount | null = null;
  #running: Promise<StoreCount> | null = null;

  constructor(root: string, interval: number, keep = 20) {
    this.#root = root;
    this.#interval = interval;
    this.#keep = keep;
  }

  /** The last count when it is young enough, else a fresh one (shared with concurrent callers). */
  get(): Promise<StoreCount> {
    const last = this.#last;
    if (last !== null && Date.now() - last.countedAt < this.#interval) return Promise.resolve(last);
    if (this.#running === null) {
      this.#running = this.#count().finally(() => {
        this.#running = null;
      });
    }
    return this.#running;
  }

  async #count(): Promise<StoreCount> {
    const started = Date.now();
    const newest: RecentFile[] = [];
    const areas = {} as Record<Area, AreaCount>;
    for (const area of AREAS) areas[area] = await this.#countArea(area, area === 'tmp' ? null : newest);
    newest.sort((a, b) => b.mtime - a.mtime);
    const count: StoreCount = { areas, newest, countedAt: Date.now(), tookMs: Date.now() - started };
    this.#last = count;
    return count;
  }

  async #countArea(area: Area, newest: RecentFile[] | null): Promise<AreaCount> {
    const dir = join(this.#root, area);
    let files = 0;
    let bytes = 0;
    let batch: string[] = [];
    const flush = async (): Promise<void> => {
      const stats = await Promise.all(batch.map((name) => lstat(fsPath(join(dir, name))).catch(() => null)));
      for (const [i, stat] of stats.entries()) {
        if (stat === null || !stat.isFile()) continue;
        files++;
        bytes += stat.size;
        if (newest !== null)
          keepNewest(newest, { name: batch[i] as string, area, size: stat.size, mtime: stat.mtimeMs }, this.#keep);
      }
      batch = [];
    };
    // latin1 keeps every byte of a name; nameFromBytes spells one that is not UTF-8 as the store does
    for await (const entry of await opendir(dir, { bufferSize: STAT_BATCH, encoding: 'latin1' })) {
      // lstat decides (some file systems report no entry types), and it gives the size anyway
      if (entry.name.startsWith('.')) continue;
      batch.push(nameFromLatin1(entry.name));
      if (batch.length === STAT_BATCH) await flush();
    }
    await flush();
    return { files, bytes };
  }
}

/** Keeps the `keep` newest files in `list` (unsorted until the end; `keep` is small). */
function keepNewest(list: RecentFile[], file: RecentFile, keep: number): void {
  if (list.length < keep) {
    list.push(file);
    return;
  }
  let oldest = 0;
  for (let i = 1; i < list.length; i++)
    if ((list[i] as RecentFile).mtime < (list[oldest] as RecentFile).mtime) oldest = i;
  if ((list[oldest] as RecentFile).mtime < file.mtime) list[oldest] = file;
}
