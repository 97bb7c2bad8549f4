/**
 * The commit thread: small files at durability `none` are committed by one
 * worker thread that makes the system calls (open O_EXCL, write, close, then
 * rename, or link + unlink) synchronously, in batches.
 *
 * Why a thread: on the main thread each of those calls is a round trip
 * through libuv's thread pool, and on a small machine a round trip to an idle
 * pool thread costs a futex wake and a context switch, more than the system
 * call itself (about four context switches per 1 KiB commit). A writer of a
 * small file instead keeps its bytes in memory until `_final`; the commits
 * asked for in one event-loop turn go to the thread as one message (the data
 * packed into one transferred buffer) and come back as one.
 *
 * Bounds: at most {@link BATCHES_IN_FLIGHT} batches of {@link BATCH_COMMITS}
 * are with the thread at once; at most {@link BUFFERED_WRITERS_MAX} writers
 * buffer, holding at most {@link BUFFERED_BYTES_MAX} bytes in all. A writer
 * past a cap, a file past {@link SMALL_FILE_MAX}, and every fsync mode take
 * the thread pool as before.
 *
 * Head-of-line blocking: when the thread answers nothing for {@link STALL_MS}
 * while it has work (a hung NFS or FUSE server), the watchdog takes back every
 * commit the thread has not started (a shared counter per batch, claimed by
 * the thread with a compare-and-swap before each commit) and hands it back to
 * its writer, which commits through the thread pool; new writers use the pool
 * until the thread answers again. The commit the thread is stuck in waits for
 * its system call, as it would on the pool.
 *
 * The thread closes every descriptor it opens before it answers, and removes
 * its tmp file on every failure: a failed commit leaves nothing behind. One
 * thread serves the process; it keeps the process alive only while it has
 * work, and ends after {@link IDLE_MS} without any. It is not the tar reader's
 * thread: a 1 MiB read batch in front of a commit would be head-of-line
 * blocking of its own.
 */
import { constants } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { FileStoreError } from './errors.js';

/** Files up to this size are buffered and committed by the thread. */
export const SMALL_FILE_MAX = 64 * 1024;
/** Commits one message carries at most. */
export const BATCH_COMMITS = 32;
/** Batches sent to the thread and not yet answered, at most. */
export const BATCHES_IN_FLIGHT = 2;
/** Writers that buffer at once, at most; later writers open their file at once, as with fsync. */
export const BUFFERED_WRITERS_MAX = 1024;
/** Bytes all buffering writers hold together, at most; a write past it sends the writer to its file. */
export const BUFFERED_BYTES_MAX = 8 * 1024 * 1024;
/** How long the thread may answer nothing while it has work before its waiting commits go to the thread pool. */
export const STALL_MS = 1000;
/** How long the thread waits for work before it ends. */
export const IDLE_MS = 10_000;

const OPEN_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL;
/** A batch's counter once the main thread took its unstarted commits back: no commit index equals it. */
const TAKEN_BACK = -1;

/** One commit as a buffering writer asks for it. */
export interface CommitRequest {
  tmpPath: string;
  /** Where the file goes; equal to `tmpPath` when it stays where it is written. */
  targetPath: string;
  overwrite: boolean;
  mode: number;
  /** The file's bytes, owned by the request (copies of what was written). */
  chunks: Buffer[];
  bytes: number;
}

/**
 * What became of a commit: `null` when committed, the error that failed it
 * (nothing left behind), or `'rerouted'`: the thread never touched it, and
 * the writer commits it through the thread pool.
 */
export type CommitOutcome = Error | null | 'rerouted';

/** A file-system error, as the thread saw it. */
export interface ErrorInfo {
  message: string;
  code?: string | undefined;
  errno?: number | undefined;
  syscall?: string | undefined;
  path?: string | undefined;
  dest?: string | undefined;
}

/** The synchronous calls {@link commitBatch} makes. */
export interface CommitFs {
  openSync(path: string, flags: number, mode: number): number;
  writeSync(fd: number, buffer: Uint8Array, offset: number, length: number): number;
  closeSync(fd: number): void;
  renameSync(from: string, to: string): void;
  linkSync(from: string, to: string): void;
  unlinkSync(path: string): void;
  lstatSync(path: string): unknown;
}

/** Numbers per commit in {@link BatchRequest.records}: bytes, mode, overwrite (1 or 0). */
export const RECORD_FIELDS = 3;

/** One message to the thread. */
export interface BatchRequest {
  id: number;
  /** The batch's counter in the shared control array: the commits the thread has started. */
  slot: number;
  /** Each commit's tmp path and target path (empty: no move), joined by NUL, which no path holds. */
  paths: string;
  records: Int32Array<ArrayBuffer>;
  /** Every commit's bytes, one after another. */
  data: ArrayBuffer;
  flags: number;
}

/** The answer to one batch: commits `[0, started)` were made, each committed unless listed in `failures`. */
export interface BatchReply {
  id: number;
  started: number;
  failures: Array<[index: number, error: ErrorInfo]>;
}

/**
 * Commits a batch, in order. Before each commit it claims the commit's index
 * in `control[slot]`; it stops at the first it cannot claim (the main thread
 * took the rest back). It runs in the worker from its source text, so it uses
 * nothing but its parameters and globals (RECORD_FIELDS is written as 3).
 * Every descriptor it opens is closed, and every tmp file it made but could
 * not put in place is removed, before it returns.
 */
export function commitBatch(fs: CommitFs, request: BatchRequest, control: Int32Array<ArrayBufferLike>): BatchReply {
  const paths = request.paths.split('\0');
  const { records, flags, slot } = request;
  const data = new Uint8Array(request.data);
  const count = records.length / 3;
  const failures: Array<[number, ErrorInfo]> = [];
  const unsupported = ['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'];
  let offset = 0;
  let index = 0;
  for (; index < count; index++) {
    if (Atomics.compareExchange(control, slot, index, index + 1) !== index) break;
    const bytes = records[index * 3] as number;
    const mode = records[index * 3 + 1] as number;
    const overwrite = records[index * 3 + 2] === 1;
    const tmp = paths[index * 2] as string;
    const target = paths[index * 2 + 1] || tmp;
    const at = offset;
    offset += bytes;
    let fd = -1;
    let made = false;
    try {
      fd = fs.openSync(tmp, flags, mode);
      made = true;
      for (let written = 0; written < bytes; ) written += fs.writeSync(fd, data, at + written, bytes - written);
      const open = fd;
      fd = -1;
      fs.closeSync(open);
      if (target === tmp) continue;
      if (overwrite) {
        fs.renameSync(tmp, target);
        continue;
      }
      try {
        fs.linkSync(tmp, target);
      } catch (err) {
        if (!unsupported.includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
        // no hard links here: check, then rename (the window place.ts describes)
        let exists = true;
        try {
          fs.lstatSync(target);
        } catch (statErr) {
          if ((statErr as NodeJS.ErrnoException).code !== 'ENOENT') throw statErr;
          exists = false;
        }
        if (exists) {
          const message = `EEXIST: file already exists, link '${tmp}' -> '${target}'`;
          throw { message, code: 'EEXIST', errno: -17, syscall: 'link', path: tmp, dest: target };
        }
        fs.renameSync(tmp, target);
        continue;
      }
      try {
        fs.unlinkSync(tmp);
      } catch (err) {
        // gone already (another process removed it): the file is at its target all the same
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          try {
            fs.unlinkSync(target);
          } catch {}
          throw err;
        }
      }
    } catch (err) {
      if (fd !== -1) {
        try {
          fs.closeSync(fd);
        } catch {}
      }
      if (made) {
        try {
          fs.unlinkSync(tmp);
        } catch {}
      }
      const { message, code, errno, syscall, path, dest } = err as NodeJS.ErrnoException & { dest?: string };
      failures.push([index, { message: String(message), code, errno, syscall, path, dest }]);
    }
  }
  return { id: request.id, started: index, failures };
}

interface ControlMessage {
  control: SharedArrayBuffer;
}

interface StallMessage {
  stall: SharedArrayBuffer;
}

/** The thread's program. Like {@link commitBatch}, it uses only its parameters and globals. */
function serve(port: import('node:worker_threads').MessagePort, fs: CommitFs, commit: typeof commitBatch): void {
  let control: Int32Array<ArrayBufferLike> = new Int32Array(0);
  port.on('message', (message: BatchRequest | ControlMessage | StallMessage) => {
    if ('control' in message) control = new Int32Array(message.control);
    else if ('stall' in message) Atomics.wait(new Int32Array(message.stall), 0, 0);
    else port.postMessage(commit(fs, message, control));
  });
}

// Dynamic imports, so the source runs both as a script and as a module (a
// process started with --input-type=module evaluates its workers' source as one).
const SOURCE = `Promise.all([import('node:worker_threads'), import('node:fs')]).then(([threads, fs]) =>
  (${serve.toString()})(threads.parentPort, fs, ${commitBatch.toString()}));
`;

interface Waiting {
  request: CommitRequest;
  done(outcome: CommitOutcome): void;
}

interface InFlight {
  slot: number;
  commits: Waiting[];
  /** Commits from this index on were taken back and rerouted. */
  takenFrom: number;
}

/** Figures for specs and the bench. */
export interface CommitThreadStats {
  /** Batches sent to the thread so far. */
  batches: number;
  /** Commits sent to the thread so far. */
  commits: number;
  /** Commits handed back to their writers (stall, or the thread ended). */
  rerouted: number;
  /** Writers buffering now, and the bytes they hold. */
  bufferingWriters: number;
  bufferedBytes: number;
  /** Commits waiting to be sent, and batches with the thread. */
  queued: number;
  inFlight: number;
  /** Whether the watchdog found the thread stuck and it has not answered since. */
  stalled: boolean;
}

/** The one commit thread of the process, started on first use. */
class CommitThread {
  #worker: Worker | null = null;
  #refused = false;
  readonly #control = new Int32Array(new SharedArrayBuffer(4 * BATCHES_IN_FLIGHT));
  readonly #freeSlots: number[] = Array.from({ length: BATCHES_IN_FLIGHT }, (_, slot) => slot);
  #queue: Waiting[] = [];
  readonly #inFlight = new Map<number, InFlight>();
  #lastId = 0;
  #flushing = false;
  #stalled = false;
  #watchdog: NodeJS.Timeout | undefined;
  #idle: NodeJS.Timeout | undefined;
  #writers = 0;
  #bytes = 0;
  #batches = 0;
  #commits = 0;
  #rerouted = 0;

  /**
   * Lets a new writer buffer: true when the thread runs (it starts it on first
   * use) and the writers' cap leaves room. False, for good, where this process
   * may not start threads (Node's permission model without `--allow-worker`).
   * A writer let in calls {@link leave} when it stops buffering.
   */
  admit(): boolean {
    if (this.#stalled || this.#writers >= BUFFERED_WRITERS_MAX || !this.#start()) return false;
    this.#writers++;
    return true;
  }

  /** Takes `bytes` of the buffering budget; false when it would go past {@link BUFFERED_BYTES_MAX}. */
  reserve(bytes: number): boolean {
    if (this.#bytes + bytes > BUFFERED_BYTES_MAX) return false;
    this.#bytes += bytes;
    return true;
  }

  /** A writer stops buffering and gives back its `bytes`. */
  leave(bytes: number): void {
    this.#writers--;
    this.#bytes -= bytes;
  }

  /**
   * Queues a commit for the next batch; `done` is called once with its outcome.
   * False (and `done` is never called) when the thread is not taking work.
   */
  commit(request: CommitRequest, done: (outcome: CommitOutcome) => void): boolean {
    // the thread may have ended while the writer was buffering (idle for IDLE_MS): start it again
    if (this.#stalled || !this.#start()) return false;
    this.#queue.push({ request, done });
    this.#schedule();
    return true;
  }

  get stats(): CommitThreadStats {
    return {
      batches: this.#batches,
      commits: this.#commits,
      rerouted: this.#rerouted,
      bufferingWriters: this.#writers,
      bufferedBytes: this.#bytes,
      queued: this.#queue.length,
      inFlight: this.#inFlight.size,
      stalled: this.#stalled,
    };
  }

  /**
   * Blocks the thread, as a hung system call would, until the returned
   * function is called. For specs.
   */
  stall(): () => void {
    if (!this.#start() || this.#worker === null) throw new Error('this process may not start threads');
    const worker = this.#worker;
    const gate = new Int32Array(new SharedArrayBuffer(4));
    worker.postMessage({ stall: gate.buffer } satisfies StallMessage);
    return () => {
      Atomics.store(gate, 0, 1);
      Atomics.notify(gate, 0);
    };
  }

  /** Ends the thread now; its unanswered commits fail with `ERR_COMMIT_THREAD_EXITED`. For specs. */
  async stop(): Promise<void> {
    await this.#worker?.terminate();
  }

  #start(): boolean {
    if (this.#worker !== null) return true;
    if (this.#refused) return false;
    try {
      this.#rest(this.#spawn());
      return true;
    } catch {
      this.#refused = true;
      return false;
    }
  }

  #spawn(): Worker {
    const worker = new Worker(SOURCE, { eval: true, name: 'maildir-filestore commit' });
    worker.postMessage({ control: this.#control.buffer } satisfies ControlMessage);
    worker.on('message', (reply: BatchReply) => this.#answered(worker, reply));
    worker.on('error', (err) => this.#fail(worker, err));
    worker.on('exit', (code) =>
      this.#fail(
        worker,
        new FileStoreError('ERR_COMMIT_THREAD_EXITED', `the commit thread exited with code ${code} during a commit`),
      ),
    );
    this.#worker = worker;
    return worker;
  }

  #schedule(): void {
    if (this.#flushing || this.#freeSlots.length === 0) return;
    this.#flushing = true;
    // after the I/O callbacks of this turn: every commit they ask for joins the batch
    setImmediate(this.#flush);
  }

  readonly #flush = (): void => {
    this.#flushing = false;
    while (this.#queue.length > 0 && this.#freeSlots.length > 0 && !this.#stalled && this.#worker !== null) {
      this.#send(this.#worker, this.#queue.splice(0, BATCH_COMMITS));
    }
  };

  #send(worker: Worker, commits: Waiting[]): void {
    const slot = this.#freeSlots.pop() as number;
    let total = 0;
    for (const { request } of commits) total += request.bytes;
    const data = new Uint8Array(total);
    const records = new Int32Array(commits.length * RECORD_FIELDS);
    const paths: string[] = [];
    let at = 0;
    commits.forEach(({ request }, index) => {
      for (const chunk of request.chunks) {
        data.set(chunk, at);
        at += chunk.length;
      }
      records[index * RECORD_FIELDS] = request.bytes;
      records[index * RECORD_FIELDS + 1] = request.mode;
      records[index * RECORD_FIELDS + 2] = request.overwrite ? 1 : 0;
      paths.push(request.tmpPath, request.targetPath === request.tmpPath ? '' : request.targetPath);
    });
    Atomics.store(this.#control, slot, 0);
    const id = ++this.#lastId;
    this.#inFlight.set(id, { slot, commits, takenFrom: commits.length });
    this.#batches++;
    this.#commits += commits.length;
    if (this.#inFlight.size === 1) {
      clearTimeout(this.#idle);
      worker.ref();
      if (this.#watchdog === undefined) this.#watchdog = setTimeout(this.#stall, STALL_MS).unref();
      else this.#watchdog.refresh();
    }
    const request: BatchRequest = { id, slot, paths: paths.join('\0'), records, data: data.buffer, flags: OPEN_FLAGS };
    worker.postMessage(request, [records.buffer, data.buffer]);
  }

  #answered(worker: Worker, reply: BatchReply): void {
    const batch = this.#inFlight.get(reply.id);
    if (batch === undefined || this.#worker !== worker) return;
    this.#inFlight.delete(reply.id);
    this.#freeSlots.push(batch.slot);
    if (this.#inFlight.size > 0) {
      this.#watchdog?.refresh();
    } else {
      this.#stalled = false;
      clearTimeout(this.#watchdog);
      this.#watchdog = undefined;
      this.#rest(worker);
    }
    const failed = new Map(reply.failures);
    const end = Math.min(reply.started, batch.takenFrom);
    for (let index = 0; index < end; index++) {
      const info = failed.get(index);
      (batch.commits[index] as Waiting).done(info === undefined ? null : commitError(info));
    }
    if (this.#queue.length > 0) this.#schedule();
  }

  /** The watchdog: the thread answered nothing for STALL_MS; every commit it has not started goes back to its writer. */
  readonly #stall = (): void => {
    this.#watchdog = undefined;
    if (this.#inFlight.size === 0) return;
    this.#stalled = true;
    this.#takeBack(null);
  };

  /**
   * Hands every unstarted commit back to its writer; with `err` (the thread
   * ended) the started but unanswered ones fail with it.
   */
  #takeBack(err: Error | null): void {
    const rerouted: Waiting[] = [];
    const failed: Waiting[] = [];
    for (const [id, batch] of this.#inFlight) {
      const started = Math.min(Atomics.exchange(this.#control, batch.slot, TAKEN_BACK), batch.takenFrom);
      rerouted.push(...batch.commits.slice(started, batch.takenFrom));
      batch.takenFrom = started;
      if (err !== null) {
        failed.push(...batch.commits.slice(0, started));
        this.#inFlight.delete(id);
        this.#freeSlots.push(batch.slot);
      }
    }
    rerouted.push(...this.#queue);
    this.#queue = [];
    this.#rerouted += rerouted.length;
    for (const waiting of rerouted) waiting.done('rerouted');
    for (const waiting of failed) waiting.done(err);
  }

  /** Lets the process exit while the thread waits for work, and ends it after a while. */
  #rest(worker: Worker): void {
    worker.unref();
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.#worker !== worker || this.#inFlight.size > 0) return;
      this.#worker = null;
      void worker.terminate();
    }, IDLE_MS).unref();
  }

  #fail(worker: Worker, err: Error): void {
    if (this.#worker !== worker) return;
    this.#worker = null;
    this.#stalled = false;
    clearTimeout(this.#idle);
    clearTimeout(this.#watchdog);
    this.#watchdog = undefined;
    this.#takeBack(err);
  }
}

/** The commit thread every store of this process shares. */
export const commitThread = new CommitThread();

/** The error a failed commit stands for, as the file system raised it. */
export function commitError(info: ErrorInfo): NodeJS.ErrnoException {
  const { message, code, errno, syscall, path, dest } = info;
  const err: NodeJS.ErrnoException & { dest?: string } = new Error(message);
  if (code !== undefined) err.code = code;
  if (errno !== undefined) err.errno = errno;
  if (syscall !== undefined) err.syscall = syscall;
  if (path !== undefined) err.path = path;
  if (dest !== undefined) err.dest = dest;
  return err;
}
