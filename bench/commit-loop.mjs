/**
 * The commit loop shared by scenarios 1-3: `writers` concurrent loops, each
 * committing 1 KiB files one after another through one contender, for a
 * time (after an uncounted warm-up) or up to a count. Runs inside a child.
 */
import { spawn } from 'node:child_process';
import { close, constants, fsync, mkdirSync, open, rename, write } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { peakRssMB } from './harness.mjs';

const require = createRequire(import.meta.url);
const LIB = 'maildir-filestore'; // the built package, through the exports map (self-reference)

/** Contender name -> (dir, durability) -> async commit(data, tag). */
const CONTENDERS = {
  async 'maildir-filestore'(dir, durability) {
    const { FileStore } = await import(LIB);
    const store = new FileStore(dir, { durability });
    await store.prepare();
    return (data) =>
      new Promise((resolve, reject) => {
        const writer = store.create();
        writer.on('error', reject);
        writer.on('finish', resolve);
        writer.end(data);
      });
  },

  // The library with every commit on libuv's thread pool (the commit thread refused), as before the commit thread.
  async 'maildir-filestore, thread pool'(dir, durability) {
    const { commitThread } = await import(new URL('../dist/commit-thread.js', import.meta.url).href);
    commitThread.admit = () => false;
    return CONTENDERS['maildir-filestore'](dir, durability);
  },

  // The same syscalls by hand with the callback API: open tmp exclusively, write, close, rename.
  async 'callback fs'(dir) {
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    mkdirSync(join(dir, 'new'), { recursive: true });
    const prefix = `${Date.now()}.P${process.pid}Q`;
    let counter = 0;
    return (data) =>
      new Promise((resolve, reject) => {
        const name = `${prefix}${++counter}`;
        const tmp = join(dir, 'tmp', name);
        open(tmp, 'wx', (err, fd) => {
          if (err) return reject(err);
          write(fd, data, 0, data.length, null, (writeErr) => {
            close(fd, (closeErr) => {
              if (writeErr || closeErr) return reject(writeErr ?? closeErr);
              rename(tmp, join(dir, 'new', name), (renameErr) => (renameErr ? reject(renameErr) : resolve()));
            });
          });
        });
      });
  },

  // Durable by hand: open tmp exclusively, write, fsync, close, rename, then fsync the directory.
  async 'callback fs, file + directory fsync'(dir) {
    mkdirSync(join(dir, 'tmp'), { recursive: true });
    mkdirSync(join(dir, 'new'), { recursive: true });
    const prefix = `${Date.now()}.P${process.pid}Q`;
    const newDir = join(dir, 'new');
    let counter = 0;
    const fsyncDir = (cb) =>
      open(newDir, constants.O_RDONLY | constants.O_DIRECTORY, (err, fd) => {
        if (err) return cb(err);
        fsync(fd, (syncErr) => close(fd, (closeErr) => cb(syncErr ?? closeErr)));
      });
    return (data) =>
      new Promise((resolve, reject) => {
        const name = `${prefix}${++counter}`;
        const tmp = join(dir, 'tmp', name);
        open(tmp, 'wx', (err, fd) => {
          if (err) return reject(err);
          write(fd, data, 0, data.length, null, (writeErr) => {
            if (writeErr) return close(fd, () => reject(writeErr));
            fsync(fd, (syncErr) => {
              close(fd, (closeErr) => {
                if (syncErr || closeErr) return reject(syncErr ?? closeErr);
                rename(tmp, join(newDir, name), (renameErr) =>
                  renameErr ? reject(renameErr) : fsyncDir((dirErr) => (dirErr ? reject(dirErr) : resolve())),
                );
              });
            });
          });
        });
      });
  },

  async 'write-file-atomic'(dir, durability) {
    const writeFileAtomic = require('write-file-atomic');
    mkdirSync(join(dir, 'new'), { recursive: true });
    const prefix = `${Date.now()}.P${process.pid}Q`;
    let counter = 0;
    const fsync = durability !== 'none';
    return (data) => writeFileAtomic(join(dir, 'new', `${prefix}${++counter}`), data, { fsync });
  },

  async 'fs-write-stream-atomic'(dir) {
    const WriteStreamAtomic = require('fs-write-stream-atomic');
    mkdirSync(join(dir, 'new'), { recursive: true });
    const prefix = `${Date.now()}.P${process.pid}Q`;
    let counter = 0;
    return (data) =>
      new Promise((resolve, reject) => {
        const stream = new WriteStreamAtomic(join(dir, 'new', `${prefix}${++counter}`));
        stream.on('error', reject);
        stream.on('finish', resolve);
        stream.end(data);
      });
  },
};

/** The contenders scenario 1 compares, in the order each round runs them. */
export const NODE_CONTENDERS = [
  'maildir-filestore',
  'callback fs',
  'maildir-filestore, thread pool',
  'write-file-atomic',
  'fs-write-stream-atomic',
];

/**
 * Runs the loop in this process. `ms` bounds it in time (after `warmupMs`
 * uncounted), `count` in commits (each file's content then names its writer
 * and index, for arrival checks). Resolves with commits, seconds,
 * `value` (commits/s), CPU time (all threads) per commit, the error codes
 * met, and peak RSS.
 */
export async function commitLoop({
  contender,
  dir,
  writers,
  size = 1024,
  durability = 'none',
  ms,
  warmupMs = 0,
  count,
  tag = '',
}) {
  const commit = await CONTENDERS[contender](dir, durability);
  const data = Buffer.alloc(size, 0x61);
  const errors = {};
  let committed = 0;
  let issued = 0;
  let counting = warmupMs === 0;
  let deadline = Infinity;

  const loop = async () => {
    for (;;) {
      if (count !== undefined) {
        if (issued >= count) return;
        const i = issued++;
        const body = Buffer.from(`${tag}:${i}\n`);
        try {
          await commit(body);
          committed++;
        } catch (err) {
          const code = err.code ?? err.message;
          errors[code] = (errors[code] ?? 0) + 1;
        }
        continue;
      }
      if (performance.now() >= deadline) return;
      try {
        await commit(data);
        if (counting) committed++;
      } catch (err) {
        const code = err.code ?? err.message;
        errors[code] = (errors[code] ?? 0) + 1;
        return;
      }
    }
  };

  const workers = [];
  let t0 = performance.now();
  let cpu0 = process.cpuUsage();
  if (count === undefined) {
    deadline = t0 + warmupMs + ms;
    if (warmupMs > 0) {
      setTimeout(() => {
        counting = true;
        t0 = performance.now();
        cpu0 = process.cpuUsage();
      }, warmupMs);
    }
  }
  for (let i = 0; i < writers; i++) workers.push(loop());
  await Promise.all(workers);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    commits: committed,
    cpuMicrosPerCommit: (cpu.user + cpu.system) / committed,
    seconds,
    value: committed / seconds,
    errors,
    maxRssMB: peakRssMB(),
  };
}

const PYTHON = `
import json, mailbox, sys, time
box = mailbox.Maildir(sys.argv[1], factory=None, create=True)
data = b'a' * int(sys.argv[2])
ms, warmup = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
start = time.perf_counter()
while time.perf_counter() - start < warmup:
    box.add(data)
t0 = time.perf_counter()
n = 0
while time.perf_counter() - t0 < ms:
    box.add(data)
    n += 1
seconds = time.perf_counter() - t0
print(json.dumps({"commits": n, "seconds": seconds, "value": n / seconds, "errors": {}}))
`;

/** Python's `mailbox.Maildir.add` in a fresh `python3` process (one writer: it is synchronous). */
export function pythonMaildirAdd({ dir, size = 1024, ms, warmupMs = 0 }) {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', PYTHON, join(dir, 'maildir'), String(size), String(ms), String(warmupMs)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`python3 exited with ${code}`)),
    );
  });
}

/**
 * One contender through several writer counts in this process: first
 * `warmupMs` of 64 writers (uncounted, so the JIT has settled as in a
 * long-running producer), then `ms` at each count, each in its own
 * subdirectory. Resolves with `{ [writers]: commitLoop result }`.
 */
export async function commitSeries({ contender, dir, writerCounts, ms, warmupMs, durability = 'none' }) {
  await commitLoop({ contender, dir: join(dir, 'warmup'), writers: 64, ms: warmupMs, durability });
  const results = {};
  for (const writers of writerCounts) {
    results[writers] = await commitLoop({
      contender,
      dir: join(dir, `w${writers}`),
      writers,
      ms,
      warmupMs: 50,
      durability,
    });
  }
  return results;
}
