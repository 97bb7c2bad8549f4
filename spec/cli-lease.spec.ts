// `consume --lease/--retries/--timeout/--kill-after` as real processes: leases, poison files,
// timeouts, SIGTERM-ignoring commands and no orphan CMD after consume ends or is killed.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { CLI, bash, completion, readmeBlock } from './cli-helpers.js';
import { namesIn, tempDir, tempStore } from './helpers.js';

// generous: nine agents share two cores, and a node start can take seconds
const WAIT = { timeout: 25_000, interval: 20 };

const running = new Set<ChildProcess>();
const pidFiles: string[] = [];

afterEach(async () => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
  for (const file of pidFiles.splice(0)) {
    const pid = Number(await readFile(file, 'utf8').catch(() => '0'));
    if (pid > 0) killGroup(pid);
  }
});

function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {}
  }
}

/** Whether `pid` runs (a zombie waiting for init to reap it counts as ended). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

function consume(args: string[], env: NodeJS.ProcessEnv = {}, cwd?: string) {
  const child = spawn(process.execPath, [CLI, 'consume', ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const done = completion(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  void done.finally(() => running.delete(child));
  return { child, done, stderr: () => stderr };
}

async function put(store: FileStore, name: string, data = name): Promise<void> {
  await writeFile(join(store.root, 'new', name), data);
}

async function lines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text === '' ? [] : text.trimEnd().split('\n');
}

/** A file CMDs write their shell's pid into; its process (group) is killed after the test. */
async function pidFile(): Promise<string> {
  const file = join(await tempDir(), 'pid');
  pidFiles.push(file);
  return file;
}

describe('consume --lease', () => {
  it('acknowledges a file whose CMD exits 0 (removes it); a failing one is delivered --retries + 1 times, then parked', {
    timeout: 30_000,
  }, async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    await put(store, 'good');
    await put(store, 'poison');
    const cmd = ['sh', '-c', 'echo "$FILESTORE_NAME $FILESTORE_DELIVERY" >> "$LOG"; [ "$FILESTORE_NAME" = good ]'];
    const run = consume(
      [store.root, '--follow', '--poll-interval', '50', '--lease', '2s', '--retries', '2', '--', ...cmd],
      {
        LOG: log,
      },
    );
    await vi.waitFor(() => expect(run.stderr()).toContain('parked: poison'), WAIT);
    run.child.kill('SIGTERM');
    const { code } = await run.done;

    expect(code).toBe(1);
    expect(await lines(log)).toEqual(['good 1', 'poison 1', 'poison 2', 'poison 3']);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual(['poison']);
    const errors = run
      .stderr()
      .split('\n')
      .filter((line) => line.includes('ERR_COMMAND_FAILED'));
    expect(errors).toHaveLength(3);
    expect(errors[2]).toContain('delivery 3 of 3, parked');
  });

  it('a killed consume: its CMD is killed too, and another consume gets the file once the lease expires', {
    timeout: 90_000,
  }, async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    const pid = await pidFile();
    await put(store, 'job');
    const cmd = [
      'sh',
      '-c',
      'echo "$FILESTORE_DELIVERY" >> "$LOG"; if [ "$FILESTORE_DELIVERY" = 1 ]; then echo $$ > "$PID"; exec sleep 60; fi; rm "$0"',
    ];
    const env = { LOG: log, PID: pid };
    const first = consume([store.root, '--follow', '--poll-interval', '50', '--lease', '600ms', '--', ...cmd], env);
    await vi.waitFor(async () => expect(Number(await readFile(pid, 'utf8').catch(() => '0'))).toBeGreaterThan(0), WAIT);
    const cmdPid = Number(await readFile(pid, 'utf8'));
    first.child.kill('SIGKILL');
    await first.done;
    const killedAt = Date.now();
    await vi.waitFor(() => expect(alive(cmdPid)).toBe(false), WAIT);
    const orphanGoneAfter = Date.now() - killedAt;

    const second = consume([store.root, '--follow', '--poll-interval', '50', '--lease', '600ms', '--', ...cmd], env);
    await vi.waitFor(async () => expect(await namesIn(store, 'cur')).toEqual([]), WAIT);
    await vi.waitFor(async () => expect(await namesIn(store, 'new')).toEqual([]), WAIT);
    second.child.kill('SIGTERM');
    expect((await second.done).code).toBe(0);
    expect(await lines(log)).toEqual(['1', '2']);
    expect(orphanGoneAfter).toBeLessThan(5000); // SIGTERM from the watchdog at once
  });
});

describe('consume --timeout, --kill-after, --retries', () => {
  it('stops a CMD that runs past --timeout with SIGTERM, process group and all; the file stays in cur/, exit 1', {
    timeout: 30_000,
  }, async () => {
    const store = await tempStore();
    const pid = await pidFile();
    const work = await tempDir();
    await put(store, 'slow');
    await put(store, 'next');
    // a grandchild in CMD's group must go too
    const cmd = ['sh', '-c', '[ "$FILESTORE_NAME" = next ] && exit 0; sleep 60 & echo $! > "$PID"; wait'];
    const started = Date.now();
    const run = consume([store.root, '--timeout', '300ms', '--', ...cmd], { PID: pid }, work);
    const { code } = await run.done;

    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(run.stderr()).toMatch(
      /ERR_COMMAND_FAILED: sh timed out after 300 ms \(stopped by SIGTERM\) on slow, left in cur\//,
    );
    const grandchild = Number(await readFile(pid, 'utf8'));
    await vi.waitFor(() => expect(alive(grandchild)).toBe(false), WAIT);
    expect(await namesIn(store, 'cur')).toEqual(['next', 'slow']);
  });

  it('SIGKILLs a CMD that ignores SIGTERM --kill-after later', { timeout: 30_000 }, async () => {
    const store = await tempStore();
    const pid = await pidFile();
    await put(store, 'stubborn');
    const cmd = ['sh', '-c', 'trap "" TERM; echo $$ > "$PID"; while :; do sleep 0.05; done'];
    const started = Date.now();
    const run = consume([store.root, '--timeout', '200ms', '--kill-after', '300ms', '--', ...cmd], { PID: pid });
    const { code } = await run.done;

    expect(code).toBe(1);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(run.stderr()).toContain('timed out after 200 ms (stopped by SIGKILL) on stubborn');
    expect(alive(Number(await readFile(pid, 'utf8')))).toBe(false);
  });

  it('passes a second SIGTERM to a CMD that ignores it, then SIGKILLs it --kill-after later', {
    timeout: 30_000,
  }, async () => {
    const store = await tempStore();
    const pid = await pidFile();
    await put(store, 'stubborn');
    const cmd = ['sh', '-c', 'trap "" TERM; echo $$ > "$PID"; while :; do sleep 0.05; done'];
    const run = consume([store.root, '--follow', '--kill-after', '300ms', '--', ...cmd], { PID: pid });
    await vi.waitFor(async () => expect(Number(await readFile(pid, 'utf8').catch(() => '0'))).toBeGreaterThan(0), WAIT);
    const cmdPid = Number(await readFile(pid, 'utf8'));
    // the first signal stops the loop, a later one reaches CMD; signals sent close together may
    // merge, so repeat, until CMD is gone (not later: consume may be past its handlers by then)
    for (let i = 0; i < 50 && alive(cmdPid); i++) {
      run.child.kill('SIGTERM');
      await sleep(100);
    }
    const { code } = await run.done;

    expect(code).toBe(1);
    expect(run.stderr()).toContain('was killed by SIGKILL on stubborn');
  });

  it('--retries N without a lease runs a failing CMD up to N more times in place; exit 0 when a run succeeded', async () => {
    const store = await tempStore();
    const work = await tempDir();
    await put(store, 'flaky');
    // fails twice, then succeeds
    const cmd = ['sh', '-c', 'echo x >> runs; [ "$(wc -l < runs)" -ge 3 ]'];
    const run = consume([store.root, '--retries', '3', '--', ...cmd], {}, work);
    const { code } = await run.done;

    expect(code).toBe(0);
    expect(await lines(join(work, 'runs'))).toHaveLength(3);
    expect(run.stderr().trimEnd().split('\n')).toEqual([
      expect.stringContaining('run 1 of 4, running it again'),
      expect.stringContaining('run 2 of 4, running it again'),
    ]);
  });

  it('kills what CMD left running in its group when consume ends, and everything when consume is SIGKILLed', {
    timeout: 90_000,
  }, async () => {
    const store = await tempStore();
    const left = await pidFile();
    await put(store, 'daemonish');
    const leaver = ['sh', '-c', 'sleep 60 & echo $! > "$PID"; exit 0'];
    const ended = consume([store.root, '--', ...leaver], { PID: left });
    expect((await ended.done).code).toBe(0);
    await vi.waitFor(() => expect(alive(Number(readFileSync(left, 'utf8')))).toBe(false), WAIT);

    const stubborn = await pidFile();
    await put(store, 'stubborn');
    const cmd = ['sh', '-c', 'trap "" TERM; echo $$ > "$PID"; while :; do sleep 0.05; done'];
    const run = consume([store.root, '--follow', '--kill-after', '300ms', '--', ...cmd], { PID: stubborn });
    await vi.waitFor(
      async () => expect(Number(await readFile(stubborn, 'utf8').catch(() => '0'))).toBeGreaterThan(0),
      WAIT,
    );
    run.child.kill('SIGKILL');
    await run.done;
    const cmdPid = Number(await readFile(stubborn, 'utf8'));
    await vi.waitFor(() => expect(alive(cmdPid)).toBe(false), { timeout: 5000, interval: 20 });
  });

  it.each([
    ['--lease 0', ['--lease', '0']],
    ['--timeout soon', ['--timeout', 'soon']],
    ['--retries -1', ['--retries', '-1']],
  ])('is a usage error for %s', async (_, args) => {
    const store = await tempStore();
    const run = consume([store.root, ...args, '--', 'true']);
    expect((await run.done).code).toBe(2);
  });
});

it('runs the docs leased consume example: each file acknowledged, the store empty', async () => {
  const cwd = await tempDir();
  const bin = join(cwd, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, 'maildir-filestore'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
  );
  await chmod(join(bin, 'maildir-filestore'), 0o755);
  const script = `set -euo pipefail
maildir-filestore prepare ./queue
printf 12345 | maildir-filestore put ./queue five > /dev/null
printf 123 | maildir-filestore put ./queue three > /dev/null
${await readmeBlock('readme-cli-lease')}`;
  const { code, stdout, stderr } = await bash(script, {
    cwd,
    env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
  });
  expect([code, stderr]).toEqual([0, '']);
  expect(stdout.toString()).toBe('five: 5 bytes\nthree: 3 bytes\n');
  expect(await readdir(join(cwd, 'queue', 'new'))).toEqual([]);
  expect(await readdir(join(cwd, 'queue', 'cur'))).toEqual([]);
});
