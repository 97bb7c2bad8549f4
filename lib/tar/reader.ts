/**
 * The small-file reader of `exportTar`: a worker thread that opens, stats
 * and reads whole a batch of files with synchronous calls, and answers with
 * one message holding every file's bytes in one transferred buffer.
 *
 * Why a thread: on the main thread each `open` and `read` is a round trip
 * through libuv's thread pool, which for a 1 KiB file costs far more than the
 * syscalls themselves; a batch of synchronous calls on a thread of its own
 * costs only the syscalls, and never blocks the event loop on a slow disk.
 *
 * The thread closes every descriptor it opens before it answers: Node counts
 * a worker's descriptors as the worker's own and closes them when it exits,
 * so none is ever handed to the main thread. Files too big for a batch are
 * answered as {@link Kind.Large}, and the main thread opens and streams them.
 *
 * One thread serves every export of the process. It keeps the process alive
 * only while a batch is being read, and ends after {@link IDLE_MS} without work.
 */
import { constants, type Stats } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FileStoreError } from '../errors.js';
import { hasEscapedBytes, nameToBytes } from '../names.js';

/** Files up to this size are read whole by the thread. */
export const SMALL_FILE_MAX = 64 * 1024;
/** Bytes of file data one batch holds at most. */
export const BATCH_BYTES = 1024 * 1024;
/** Names one batch asks for at most. */
export const BATCH_NAMES = 64;
/** How long the thread waits for work before it ends. */
export const IDLE_MS = 10_000;

/** What the thread made of one file of a batch: the first field of its record. */
export const Kind = {
  /** Vanished (`ENOENT`), a symlink (`ELOOP` under `O_NOFOLLOW`), or not a regular file. */
  Skip: 0,
  /** A regular file too big for the batch: the main thread reads it. */
  Large: 1,
  /** Read whole: `size` bytes at `offset` of the batch's data. */
  Read: 2,
  /** Its size grew between the fstat and the read. */
  Grew: 3,
  /** Its size shrank between the fstat and the read. */
  Shrank: 4,
  /** Any other failure, in the batch's `error`; the batch ends with it. */
  Failed: 5,
} as const;

/** Numbers per file in {@link Batch.records}: kind, offset, size, mode, mtimeMs. */
export const RECORD_FIELDS = 5;

/** A file-system error, as the thread saw it. */
export interface ErrorInfo {
  message: string;
  code?: string | undefined;
  errno?: number | undefined;
  syscall?: string | undefined;
  path?: string | undefined;
}

/**
 * The answer to one batch: a record of {@link RECORD_FIELDS} numbers per
 * name, in order, up to and including the first failure. Flat numbers in one
 * transferred buffer cost the message far less than an object per file.
 */
export interface Batch {
  records: Float64Array<ArrayBuffer>;
  data: ArrayBuffer;
  error?: ErrorInfo;
}

/** The synchronous calls {@link readBatch} makes. */
export interface SyncFs {
  openSync(path: string | Buffer, flags: number): number;
  fstatSync(fd: number): Stats;
  readSync(fd: number, buffer: Uint8Array, offset: number, length: number, position: number): number;
  closeSync(fd: number): void;
}

/** The limits of one batch, sent with each request. */
export interface BatchLimits {
  flags: number;
  smallFileMax: number;
  batchBytes: number;
}

interface Request {
  id: number;
  dir: string;
  /**
   * The names, joined by NUL (which no name holds): one string is cheaper to
   * send than many. A name that is not UTF-8 on disk is sent as `/` (which
   * no name holds either) and its bytes as latin1, one character a byte.
   */
  names: string;
  limits: BatchLimits;
}

interface Reply {
  id: number;
  batch: Batch;
}

/** A name as a request carries it: itself, or `/` and its bytes as latin1 when it is not UTF-8 on disk. */
function sendable(name: string): string {
  return hasEscapedBytes(name) ? `/${nameToBytes(name).toString('latin1')}` : name;
}

/**
 * Reads a batch: opens and stats each file, then reads those that fit whole
 * into one buffer. It runs in the worker from its source text, so it uses
 * nothing but its parameters: kinds and RECORD_FIELDS (5) are written as
 * numbers. Every descriptor it opens is closed before it returns or throws.
 */
export function readBatch(fs: SyncFs, dir: string, names: string[], limits: BatchLimits): Batch {
  const records = new Float64Array(names.length * 5);
  const toRead: Array<{ fd: number; at: number }> = [];
  let count = 0;
  let error: ErrorInfo | undefined;
  const fail = (err: unknown): void => {
    const { message, code, errno, syscall, path } = err as NodeJS.ErrnoException;
    error = { message: String(message), code, errno, syscall, path };
    records[count++ * 5] = 5; // Kind.Failed
  };
  let total = 0;
  let data = new ArrayBuffer(0);
  try {
    for (const name of names) {
      let fd: number;
      try {
        const path =
          name.charCodeAt(0) === 0x2f
            ? Buffer.concat([Buffer.from(`${dir}/`), Buffer.from(name.slice(1), 'latin1')])
            : `${dir}/${name}`;
        fd = fs.openSync(path, limits.flags);
      } catch (err) {
        const { code } = err as NodeJS.ErrnoException;
        if (code !== 'ENOENT' && code !== 'ELOOP') {
          fail(err);
          break;
        }
        records[count++ * 5] = 0; // Kind.Skip
        continue;
      }
      let stats: Stats;
      try {
        stats = fs.fstatSync(fd);
      } catch (err) {
        fs.closeSync(fd);
        fail(err);
        break;
      }
      const at = count++ * 5;
      if (!stats.isFile() || stats.size > limits.smallFileMax || total + stats.size > limits.batchBytes) {
        fs.closeSync(fd);
        records[at] = stats.isFile() ? 1 : 0; // Kind.Large, Kind.Skip
        continue;
      }
      records[at] = 2; // Kind.Read
      records[at + 1] = total;
      records[at + 2] = stats.size;
      records[at + 3] = stats.mode;
      records[at + 4] = stats.mtimeMs;
      toRead.push({ fd, at });
      total += stats.size;
    }
    // Each file is read with one byte more than its size: a file that grew is
    // noticed without another fstat. That byte lands on the next file's first
    // byte, which the next read overwrites, or on the one spare byte at the end.
    const bytes = new Uint8Array(total + 1);
    for (const { fd, at } of toRead) {
      const offset = records[at + 1] as number;
      const size = records[at + 2] as number;
      let got = 0;
      try {
        for (let n = -1; n !== 0 && got <= size; got += n)
          n = fs.readSync(fd, bytes, offset + got, size + 1 - got, got);
      } catch (err) {
        count = at / 5;
        fail(err);
        break;
      }
      if (got !== size) {
        records[at] = got > size ? 3 : 4; // Kind.Grew, Kind.Shrank
        count = at / 5 + 1;
        break;
      }
    }
    data = bytes.buffer;
  } finally {
    for (const { fd } of toRead) fs.closeSync(fd);
  }
  const batch: Batch = { records: records.slice(0, count * 5), data };
  if (error !== undefined) batch.error = error;
  return batch;
}

/** The thread's program: answers every request with {@link readBatch}. Like it, it uses only its parameters. */
function serve(port: import('node:worker_threads').MessagePort, fs: SyncFs, read: typeof readBatch): void {
  port.on('message', (request: Request) => {
    const batch = read(fs, request.dir, request.names.split('\0'), request.limits);
    port.postMessage({ id: request.id, batch } satisfies Reply, [batch.records.buffer, batch.data]);
  });
}

// Dynamic imports, so the source runs both as a script and as a module (a
// process started with --input-type=module evaluates its workers' source as one).
const SOURCE = `Promise.all([import('node:worker_threads'), import('node:fs')]).then(([threads, fs]) =>
  (${serve.toString()})(threads.parentPort, fs, ${readBatch.toString()}));
`;

/** The limits of every batch an export asks for. */
export const LIMITS: BatchLimits = {
  flags: constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
  smallFileMax: SMALL_FILE_MAX,
  batchBytes: BATCH_BYTES,
};

interface Waiter {
  resolve(batch: Batch): void;
  reject(err: Error): void;
}

/** The one reader thread of the process, started on first use. */
class ReaderThread {
  #worker: Worker | null = null;
  readonly #waiting = new Map<number, Waiter>();
  #lastId = 0;
  #idle: NodeJS.Timeout | undefined;
  #refused = false;

  /**
   * Starts the thread if it is not running; false, for good, when this
   * process may not start threads (Node's permission model without
   * `--allow-worker`), and the main thread then reads every file itself.
   */
  start(): boolean {
    if (this.#worker !== null) return true;
    if (this.#refused) return false;
    try {
      this.#rest(this.#start());
      return true;
    } catch {
      this.#refused = true;
      return false;
    }
  }

  /** Batches asked for and not yet answered. */
  get pending(): number {
    return this.#waiting.size;
  }

  /** Reads a batch of `names` in `dir` on the thread. */
  read(dir: string, names: string[], limits: BatchLimits = LIMITS): Promise<Batch> {
    const worker = this.#worker ?? this.#start();
    clearTimeout(this.#idle);
    if (this.#waiting.size === 0) worker.ref();
    const id = ++this.#lastId;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      worker.postMessage({ id, dir, names: names.map(sendable).join('\0'), limits } satisfies Request);
    });
  }

  /** Ends the thread now; batches being read reject with `ERR_READER_EXITED`. For specs. */
  async stop(): Promise<void> {
    await this.#worker?.terminate();
  }

  #start(): Worker {
    const worker = new Worker(SOURCE, { eval: true, name: 'maildir-filestore tar reader' });
    worker.on('message', (reply: Reply) => {
      const waiter = this.#waiting.get(reply.id);
      this.#waiting.delete(reply.id);
      if (this.#waiting.size === 0) this.#rest(worker);
      waiter?.resolve(reply.batch);
    });
    worker.on('error', (err) => this.#fail(worker, err));
    worker.on('exit', (code) =>
      this.#fail(worker, new FileStoreError('ERR_READER_EXITED', `the tar reader thread exited with code ${code}`)),
    );
    this.#worker = worker;
    return worker;
  }

  /** Lets the process exit while the thread waits for work, and ends it after a while. */
  #rest(worker: Worker): void {
    worker.unref();
    this.#idle = setTimeout(() => {
      if (this.#worker !== worker || this.#waiting.size > 0) return;
      this.#worker = null;
      void worker.terminate();
    }, IDLE_MS).unref();
  }

  #fail(worker: Worker, err: Error): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    clearTimeout(this.#idle);
    const waiting = [...this.#waiting.values()];
    this.#waiting.clear();
    for (const waiter of waiting) waiter.reject(err);
  }
}

/** The reader thread every export of this process shares. */
export const readerThread = new ReaderThread();

/** The error a failed batch stands for, as the file system raised it. */
export function batchError(info: ErrorInfo): NodeJS.ErrnoException {
  const { message, code, errno, syscall, path } = info;
  const err: NodeJS.ErrnoException = new Error(message);
  if (code !== undefined) err.code = code;
  if (errno !== undefined) err.errno = errno;
  if (syscall !== undefined) err.syscall = syscall;
  if (path !== undefined) err.path = path;
  return err;
}
