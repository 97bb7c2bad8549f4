import { hostname as osHostname } from 'node:os';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cleanTmp, type CleanOptions } from './clean.js';
import { consumeStore, type ConsumeOptions, type LeasedEntry } from './consume.js';
import { assertDurability, type Durability, syncDirectoryAsync } from './durability.js';
import { requeueExpired, requeueLimits, requeueNames, type LeaseAreas, type RequeueOptions } from './lease.js';
import { FileStoreError } from './errors.js';
import { AREAS, assertArea, assertName, escapeHostname, fsPath, uniqueName, type Area } from './names.js';
import { exportTar, type ExportTarOptions } from './tar/export.js';
import type { ImportTarOptions } from './tar/import.js';
import { claimFile, placeFile, type SyncDirectory } from './place.js';
import { makeDirectory } from './make-directory.js';
import { assertOptionKeys, type OptionKeys } from './options.js';
import { openEntry } from './safe-open.js';
import { FileWriter } from './writer.js';
import { AreaListing, type Entry } from './listing.js';

export type { Entry } from './listing.js';

/** Options of {@link FileStore}. */
export interface FileStoreOptions {
  /**
   * How hard a commit works to survive a crash: `full` fsyncs the file before
   * the commit and the target directory after it (concurrent commits share
   * directory fsyncs), `file` fsyncs the file only, `none` never fsyncs.
   * At `none`, files up to 64 KiB wait in memory and are committed in
   * batches by a commit thread (errors of opening arrive at `end()`).
   * @default 'full'
   */
  durability?: Durability;
  /**
   * The host part of generated names.
   * @default os.hostname()
   */
  hostname?: string;
  /**
   * Mode of created files, before the process umask is applied (as with `open(2)`).
   * @default 0o666
   */
  fileMode?: number;
}

/** Options of {@link FileStore.create}. */
export interface CreateOptions {
  /**
   * On `'finish'`, move the file from `tmp` to `new`. With `false` the file
   * stays in `tmp` under its name, for an explicit `move` later.
   * @default true
   */
  commit?: boolean;
  /**
   * Replace an existing file of the same name instead of failing with `EEXIST`.
   * @default false
   */
  overwrite?: boolean;
}

/** Options of {@link FileStore.move} and {@link FileStore.copy}. */
export interface TransferOptions {
  /**
   * Replace an existing file of the same name in the target area instead of
   * failing with `EEXIST`.
   * @default false
   */
  overwrite?: boolean;
}

/** The `tmp/` paths of this process's writers that are not closed yet: `clean()` spares them. */
const liveTmpPaths = new Set<string>();

/**
 * A maildir-style store: a directory with `tmp/`, `new/` and `cur/` through
 * which many processes hand files to each other without locks.
 */
export class FileStore {
  /** The store's directory, absolute. */
  readonly root: string;
  readonly #durability: Durability;
  readonly #host: string;
  readonly #fileMode: number;
  /** At durability `full`, how moves, claims and removes make their directory changes durable. */
  readonly #sync: SyncDirectory | undefined;
  /** The area directories, joined once: names are validated, so a file's path is `dir + sep + name`. */
  readonly #areaDirs: Record<Area, string>;

  constructor(root: string, options: FileStoreOptions = {}) {
    if (typeof root !== 'string' || root === '') {
      throw new FileStoreError('ERR_INVALID_OPTION', 'root must be a non-empty string');
    }
    assertOptionKeys(options, STORE_KEYS, 'new FileStore()');
    const { durability = 'full', hostname = osHostname(), fileMode = 0o666 } = options;
    assertDurability(durability);
    if (typeof hostname !== 'string' || hostname === '') {
      throw new FileStoreError('ERR_INVALID_OPTION', 'hostname must be a non-empty string');
    }
    if (!Number.isInteger(fileMode) || fileMode < 0 || fileMode > 0o7777) {
      throw new FileStoreError('ERR_INVALID_OPTION', `invalid fileMode: ${String(fileMode)}`);
    }
    this.root = resolve(root);
    this.#durability = durability;
    this.#sync = durability === 'full' ? syncDirectoryAsync : undefined;
    this.#host = escapeHostname(hostname);
    this.#fileMode = fileMode;
    this.#areaDirs = { tmp: join(this.root, 'tmp'), new: join(this.root, 'new'), cur: join(this.root, 'cur') };
  }

  /**
   * Creates the root and its `tmp`, `new` and `cur` directories. Idempotent
   * and safe to race from many processes; recreates whatever was removed.
   * Rejects with `ERR_UNSAFE_AREA` when an area is a symlink or not a directory.
   */
  async prepare(): Promise<void> {
    await makeDirectory(this.root);
    await Promise.all(AREAS.map((area) => this.#prepareArea(area)));
  }

  async #prepareArea(area: Area): Promise<void> {
    const dir = join(this.root, area);
    await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err;
    });
    const stats = await lstat(dir);
    if (!stats.isDirectory()) {
      const what = stats.isSymbolicLink() ? 'a symlink' : 'not a directory';
      throw new FileStoreError('ERR_UNSAFE_AREA', `area ${area} of ${this.root} is ${what}`, { path: dir });
    }
  }

  /**
   * A Writable for a new file. It writes into `tmp/` and, before `'finish'`,
   * commits the file to `new/` (or, with `commit: false`, to `tmp/<name>`).
   * Without `overwrite`, committing over an existing name fails with `EEXIST`.
   * @param name The file's name; a unique maildir name is generated when omitted.
   * @throws FileStoreError `ERR_INVALID_NAME`, synchronously.
   */
  create(name?: string, options: CreateOptions = {}): FileWriter {
    if (name !== undefined) assertName(name);
    assertOptionKeys(options, CREATE_KEYS, 'create()');
    const commit = booleanOption(options.commit, 'commit', true);
    const overwrite = booleanOption(options.overwrite, 'overwrite', false);
    return this.#writer(name, commit ? 'new' : 'tmp', overwrite);
  }

  /** A writer whose file ends up in `area`; generated names go straight through `tmp` under their own name. */
  #writer(name: string | undefined, area: Area, overwrite: boolean): FileWriter {
    const generated = name === undefined;
    const fileName = name ?? uniqueName(this.#host);
    const tmpPath = this.#areaDirs.tmp + sep + (generated ? fileName : uniqueName(this.#host));
    // a chosen name that may replace a file keeps the replaced version until the commit is durable
    const asidePath =
      overwrite && !generated && this.#durability === 'full' ? this.#areaDirs.tmp + sep + uniqueName(this.#host) : null;
    const writer = new FileWriter({
      name: fileName,
      tmpPath,
      targetPath: this.#areaDirs[area] + sep + fileName,
      overwrite: overwrite || generated,
      durability: this.#durability,
      mode: this.#fileMode,
      asidePath,
    });
    liveTmpPaths.add(tmpPath);
    if (asidePath !== null) liveTmpPaths.add(asidePath);
    writer.once('close', () => {
      liveTmpPaths.delete(tmpPath);
      if (asidePath !== null) liveTmpPaths.delete(asidePath);
    });
    return writer;
  }

  /**
   * The files of an area, read from the directory as the iteration goes
   * (never the whole listing at once). Skips names starting with `.`; the
   * order is the directory's.
   * @throws FileStoreError `ERR_INVALID_AREA`, synchronously.
   */
  list(area: Area): AsyncIterableIterator<Entry> {
    assertArea(area);
    return new AreaListing(this.#areaDirs[area], area);
  }

  /**
   * Moves a file between areas in one atomic step; at durability `full` the
   * move is durable (both directories fsynced) before it resolves.
   * Rejects with `ENOENT` when the file is not (or no longer) in `from`, and
   * with `EEXIST` when `to` has a file of that name, unless `overwrite`.
   */
  async move(name: string, from: Area, to: Area, options: TransferOptions = {}): Promise<void> {
    const source = this.path(name, from);
    const target = this.path(name, to);
    assertOptionKeys(options, TRANSFER_KEYS, 'move()');
    await placeFile(source, target, booleanOption(options.overwrite, 'overwrite', false), this.#sync);
  }

  /**
   * Claims a file for this caller by moving it from `new` to `cur`. Resolves
   * `true` when this caller won, `false` when the file was not in `new` or
   * another caller claimed it first: across any number of processes, each
   * file is claimed once. A lost race is `false` whatever the interleaving.
   * At durability `full` the claim is durable before it resolves `true`.
   * Rejects with `EEXIST` when `cur` already holds a different file of that
   * name, with `ERR_UNSAFE_ENTRY` when the entry in `new` is not a regular
   * file (a symlink, FIFO, device node or directory: it stays where it is),
   * and with `ENOENT` when `new` itself is missing.
   */
  async claim(name: string): Promise<boolean> {
    return claimFile(this.path(name, 'new'), this.path(name, 'cur'), this.#sync);
  }

  /**
   * Copies a file to another (or the same) area. The copy is written through
   * `tmp/` and committed like a new file, so `to` never shows a partial copy.
   * Rejects with `ENOENT` when the source is missing, `ERR_UNSAFE_ENTRY` when
   * it is not a regular file (a symlink, FIFO, device node or directory is
   * neither followed nor read), `EEXIST` when the target exists (unless `overwrite`).
   */
  async copy(name: string, from: Area, to: Area, options: TransferOptions = {}): Promise<void> {
    const source = this.path(name, from);
    assertArea(to);
    assertOptionKeys(options, TRANSFER_KEYS, 'copy()');
    const overwrite = booleanOption(options.overwrite, 'overwrite', false);
    const { handle } = await openEntry(source);
    await pipeline(handle.createReadStream(), this.#writer(name, to, overwrite));
  }

  /** Removes a file (durably at durability `full`). Rejects with `ENOENT` when it is missing. */
  async remove(name: string, area: Area): Promise<void> {
    await unlink(fsPath(this.path(name, area)));
    await this.#sync?.(this.#areaDirs[area]);
  }

  /**
   * The absolute path of `name` in `area`, after validating both.
   * @throws FileStoreError `ERR_INVALID_NAME` or `ERR_INVALID_AREA`.
   */
  path(name: string, area: Area): string {
    assertName(name);
    assertArea(area);
    return this.#areaDirs[area] + sep + name;
  }

  /**
   * A tar stream of the area's files (or of `names`), each name once, read
   * with backpressure in fixed buffers plus the set of names taken (small
   * files in batches on a shared reader thread, larger ones in chunks).
   * Vanished files and non-regular files are skipped; a file that grows or
   * shrinks while read destroys the stream with `ERR_FILE_CHANGED`, any other
   * error with that error.
   * @throws FileStoreError `ERR_INVALID_AREA` or `ERR_INVALID_OPTION`, synchronously.
   */
  exportTar(area: Area, options?: ExportTarOptions): Readable {
    assertArea(area);
    assertOptionKeys(options, EXPORT_KEYS, 'exportTar()');
    return exportTar(this.#areaDirs[area], () => new AreaListing(this.#areaDirs[area], area), options);
  }

  /**
   * Commits every regular file of a tar archive through a store writer
   * (atomically, into `new` or `cur`) and resolves with their names. Rejects
   * with `ERR_UNSAFE_ENTRY`, `ERR_CORRUPT_ARCHIVE`, `EEXIST` (unless
   * `overwrite`) or the source's error; the error's `committed` lists the
   * files committed before it, which stay.
   */
  async importTar(source: Readable, options: ImportTarOptions = {}): Promise<string[]> {
    assertOptionKeys(options, IMPORT_KEYS, 'importTar()');
    // loaded on first use: the tar parser is needed only here
    const { importTar } = await import('./tar/import.js');
    // tar/import.ts refuses unsafe entry names; the name is checked again here, where the path is made
    return importTar(source, options, (name, area, overwrite) => {
      assertName(name);
      return this.#writer(name, area, overwrite);
    });
  }

  /**
   * Claims the files waiting in `new/` and yields each one this caller won,
   * already in `cur/`; a file another consumer claims first is skipped. Reads
   * `new/` in batches of 1,024 names, each batch in name order (so generated
   * names come roughly oldest first). With `follow` it then waits for new
   * files until `signal` aborts or the loop is left; an abort ends the loop
   * quietly. A name `cur/` holds too (a different file) is skipped and
   * reported through `onEvent`, never a rejection.
   *
   * With `lease`, each file is leased to the loop while its body runs and
   * yielded as a {@link LeasedEntry}; the body acknowledges by removing the
   * file or moving it out of `cur/`. A file whose lease expires comes back
   * through `new/`, and one delivered `maxDeliveries` times is parked.
   * @throws FileStoreError `ERR_INVALID_OPTION`, synchronously.
   */
  consume(options: ConsumeOptions & { lease: number }): AsyncIterableIterator<LeasedEntry>;
  consume(options?: ConsumeOptions): AsyncIterableIterator<Entry>;
  consume(options?: ConsumeOptions): AsyncIterableIterator<Entry> {
    assertOptionKeys(options, CONSUME_KEYS, 'consume()');
    return consumeStore(
      {
        ...this.#leaseAreas(),
        listNew: () => this.list('new'),
        claim: async (name) => ((await this.claim(name)) ? { name, area: 'cur', path: this.path(name, 'cur') } : null),
      },
      options,
    );
  }

  /**
   * Moves the files in `cur/` whose lease is older than `olderThan` ms back
   * to `new/`, where any consumer takes them again, and resolves with their
   * names. Safe against their owners (a file renewed meanwhile stays) and
   * against other requeuers (each file moves once; none is lost or left in
   * two areas). Also repairs files left in both `new/` and `cur/` for longer
   * than `olderThan`, and parks expired files delivered `maxDeliveries`
   * times. With `names`, requeues those files by hand instead, parked or
   * not (a parked file's delivery count starts again).
   * Rejects with `ERR_INVALID_OPTION` for a bad option, before touching a file.
   */
  async requeue(options: RequeueOptions): Promise<string[]> {
    if (options === null || typeof options !== 'object') {
      throw new FileStoreError('ERR_INVALID_OPTION', 'requeue options must be an object');
    }
    assertOptionKeys(options, REQUEUE_KEYS, 'requeue()');
    if (options.names !== undefined) {
      const names = [...options.names];
      for (const name of names) assertName(name);
      return requeueNames(this.#leaseAreas(), names);
    }
    const { olderThan, maxDeliveries } = requeueLimits(options);
    return requeueExpired(this.#leaseAreas(), olderThan, maxDeliveries, options.onEvent);
  }

  #leaseAreas(): LeaseAreas {
    return {
      newDir: this.#areaDirs.new,
      curDir: this.#areaDirs.cur,
      listCur: () => this.list('cur'),
      sync: this.#sync,
    };
  }

  /**
   * Removes the files in `tmp/` last modified more than `olderThan` ms ago
   * (default 36 hours), except those a writer of this process still has open,
   * and resolves with their names. Never touches `new/` or `cur/`. Rejects
   * with `ERR_INVALID_OPTION` for a bad option, before touching a file.
   */
  clean(options?: CleanOptions): Promise<string[]> {
    return cleanTmp(this.list('tmp'), liveTmpPaths, options);
  }
}

const STORE_KEYS = { durability: true, hostname: true, fileMode: true } satisfies OptionKeys<FileStoreOptions>;
const CREATE_KEYS = { commit: true, overwrite: true } satisfies OptionKeys<CreateOptions>;
const TRANSFER_KEYS = { overwrite: true } satisfies OptionKeys<TransferOptions>;
const EXPORT_KEYS = { names: true } satisfies OptionKeys<ExportTarOptions>;
const IMPORT_KEYS = { area: true, overwrite: true } satisfies OptionKeys<ImportTarOptions>;
const CONSUME_KEYS = {
  follow: true,
  signal: true,
  pollInterval: true,
  lease: true,
  maxDeliveries: true,
  repairAfter: true,
  onEvent: true,
} satisfies OptionKeys<ConsumeOptions>;
const REQUEUE_KEYS = {
  olderThan: true,
  maxDeliveries: true,
  names: true,
  onEvent: true,
} satisfies OptionKeys<RequeueOptions>;

function booleanOption(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw new FileStoreError('ERR_INVALID_OPTION', `option ${option} must be a boolean`);
  }
  return value;
}
