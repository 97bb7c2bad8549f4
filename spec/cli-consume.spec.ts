// `maildir-filestore consume` and `clean`, run as real child processes with real commands.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { FileStore } from '../lib/index.js';
import { CLI, bash, cli, completion, errorMessage, readmeBlock } from './cli-helpers.js';
import { namesIn, put, tempDir, tempStore } from './helpers.js';

const WAIT = { timeout: 15_000, interval: 20 };

const running = new Set<ChildProcess>();

afterEach(() => {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
});

/** A `consume` child that a failing test does not leave behind; its CMD runs in `cwd`. */
function consumer(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { child: ChildProcess; done: ReturnType<typeof completion> } {
  const child = spawn(process.execPath, [CLI, 'consume', ...args], { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const done = completion(child);
  void done.finally(() => running.delete(child));
  return { child, done };
}

/** The lines a CMD appended to `log`, or none while it does not exist. */
async function lines(log: string): Promise<string[]> {
  const text = await readFile(log, 'utf8').catch(() => '');
  return text === '' ? [] : text.trimEnd().split('\n');
}

/**
 * A CMD for `consume` that appends "NAME|PATH argument|FILESTORE_PATH|FILESTORE_DIR|content|stdin"
 * to $LOG, and fails for a file named "bad".
 */
const RECORD = [
  'sh',
  '-c',
  'printf "%s|%s|%s|%s|%s|%s\\n" "$FILESTORE_NAME" "$0" "$FILESTORE_PATH" "$FILESTORE_DIR" "$(cat "$0")" "$(cat)" >> "$LOG"; [ "$FILESTORE_NAME" != bad ]',
];

describe('consume', () => {
  it('drains new/ once, running CMD on each file exactly once, in name order, with the path appended and FILESTORE_* set', async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    const names = ['c', 'a', 'e', 'b', 'd'];
    await Promise.all(names.map((name) => put(store, name, `data of ${name}`)));
    const { code, stdout, stderr } = await cli(['consume', store.root, '--', ...RECORD], {
      input: 'not for CMD',
      env: { ...process.env, LOG: log },
    });
    expect([code, stdout.length, stderr]).toEqual([0, 0, '']);
    const path = (name: string): string => join(store.root, 'cur', name);
    expect(await lines(log)).toEqual(
      names.sort().map((name) => `${name}|${path(name)}|${path(name)}|${store.root}|data of ${name}|`),
    );
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual(names.sort());
  });

  it('shares new/ between racing consumers: every file runs once overall', async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    const names = Array.from({ length: 40 }, (_, i) => `job-${String(i).padStart(2, '0')}`);
    await Promise.all(names.map((name) => put(store, name, name)));
    const env = { ...process.env, LOG: log };
    const results = await Promise.all([1, 2, 3].map(() => cli(['consume', store.root, '--', ...RECORD], { env })));
    expect(results.map((r) => [r.code, r.stderr])).toEqual([
      [0, ''],
      [0, ''],
      [0, ''],
    ]);
    expect((await lines(log)).map((line) => line.split('|')[0]).sort()).toEqual(names);
    expect(await namesIn(store, 'cur')).toEqual(names);
  });

  it('with --follow runs CMD on a file put by another process after it started, and exits 0 on SIGTERM', async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    await put(store, 'early', 'first');
    const { child, done } = consumer([store.root, '--follow', '--poll-interval', '200', '--', ...RECORD], {
      env: { ...process.env, LOG: log },
    });
    await vi.waitFor(async () => expect(await lines(log)).toHaveLength(1), WAIT);
    const putter = await cli(['put', store.root, 'late', '--durability', 'none'], { input: 'second' });
    expect(putter.code).toBe(0);
    await vi.waitFor(async () => expect(await lines(log)).toHaveLength(2), WAIT);
    child.kill('SIGTERM');
    const { code, signal, stderr } = await done;
    expect([code, signal, stderr]).toEqual([0, null, '']);
    expect((await lines(log)).map((line) => line.split('|').at(-2))).toEqual(['first', 'second']);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual(['early', 'late']);
  });

  it('on SIGTERM lets the running CMD finish, then claims nothing more and exits 0', async () => {
    const store = await tempStore();
    const work = await tempDir();
    await Promise.all(['a', 'b'].map((name) => put(store, name, name)));
    // waits for ./go, or ends when the test's directory is gone
    const cmd = [
      'sh',
      '-c',
      'echo "$FILESTORE_NAME" >> started; while [ ! -e go ] && [ -e started ]; do sleep 0.02; done; echo "$FILESTORE_NAME" >> finished',
    ];
    const { child, done } = consumer([store.root, '--', ...cmd], { cwd: work });
    await vi.waitFor(async () => expect(await lines(join(work, 'started'))).toEqual(['a']), WAIT);
    // The SIGTERM is pending before CMD can exit (kill() returned), and the SIGCHLD of that exit comes later.
    child.kill('SIGTERM');
    await writeFile(join(work, 'go'), '');
    const { code, signal, stderr } = await done;
    expect([code, signal, stderr]).toEqual([0, null, '']);
    expect(await lines(join(work, 'finished'))).toEqual(['a']);
    expect(await namesIn(store, 'cur')).toEqual(['a']);
    expect(await namesIn(store, 'new')).toEqual(['b']);
  });

  it('passes a second SIGTERM on to the running CMD: killed, it is a failure, the file stays in cur/', async () => {
    const store = await tempStore();
    const work = await tempDir();
    await put(store, 'stuck', '');
    // runs until killed, or until the test's directory is gone
    const cmd = ['sh', '-c', 'echo "$FILESTORE_NAME" >> started; while [ -e started ]; do sleep 0.02; done'];
    const { child, done } = consumer([store.root, '--follow', '--', ...cmd], { cwd: work });
    let exited = false;
    void done.then(() => (exited = true));
    await vi.waitFor(async () => expect(await lines(join(work, 'started'))).toEqual(['stuck']), WAIT);
    // The first signal stops the loop, a later one reaches CMD; signals sent close together may merge, so repeat.
    for (let i = 0; i < 100 && !exited; i++) {
      child.kill('SIGTERM');
      await Promise.race([done, sleep(100)]);
    }
    expect(exited).toBe(true);
    const { code, signal, stderr } = await done;
    expect([code, signal]).toEqual([1, null]);
    errorMessage(stderr, 'ERR_COMMAND_FAILED');
    expect(stderr).toContain('SIGTERM');
    expect(await namesIn(store, 'cur')).toEqual(['stuck']);
  });

  it('reports a failing CMD with the file name, leaves that file in cur/, goes on, and exits 1', async () => {
    const store = await tempStore();
    const log = join(await tempDir(), 'log');
    await Promise.all(['a', 'bad', 'c'].map((name) => put(store, name, name)));
    const { code, stdout, stderr } = await cli(['consume', store.root, '--', ...RECORD], {
      env: { ...process.env, LOG: log },
    });
    expect([code, stdout.length]).toEqual([1, 0]);
    errorMessage(stderr, 'ERR_COMMAND_FAILED');
    expect(stderr).toContain(' bad,');
    expect((await lines(log)).map((line) => line.split('|')[0])).toEqual(['a', 'bad', 'c']);
    expect(await namesIn(store, 'cur')).toEqual(['a', 'bad', 'c']);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('when CMD cannot be started (missing, not executable) moves the file back to new/ and stops, exit 1', async () => {
    const store = await tempStore();
    await Promise.all(['a', 'b'].map((name) => put(store, name, name)));
    const missing = await cli(['consume', store.root, '--', join(store.root, 'no-such-command')]);
    expect([missing.code, missing.stdout.length]).toEqual([1, 0]);
    errorMessage(missing.stderr, 'ENOENT');
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
    expect(await namesIn(store, 'cur')).toEqual([]);

    const script = join(await tempDir(), 'script.sh');
    await writeFile(script, '#!/bin/sh\nexit 0\n');
    await chmod(script, 0o644);
    const denied = await cli(['consume', store.root, '--follow', '--', script]);
    expect(denied.code).toBe(1);
    errorMessage(denied.stderr, 'EACCES');
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
  });

  it('exits 0 without running anything when new/ is empty, and 1 with ENOENT when the store is missing', async () => {
    const store = await tempStore();
    const empty = await cli(['consume', store.root, '--', join(store.root, 'never-run')]);
    expect([empty.code, empty.stdout.length, empty.stderr]).toEqual([0, 0, '']);
    const missing = await cli(['consume', join(store.root, 'nope'), '--', 'true']);
    expect(missing.code).toBe(1);
    errorMessage(missing.stderr, 'ENOENT');
  });

  it('runs the README consume example', async () => {
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
${await readmeBlock('readme-cli-consume')}`;
    const { code, stdout, stderr } = await bash(script, {
      cwd,
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout.toString()).toBe('five: 5 bytes\nthree: 3 bytes\n');
    const store = new FileStore(join(cwd, 'queue'));
    expect([await namesIn(store, 'new'), await namesIn(store, 'cur')]).toEqual([[], []]);
  });
});

describe('clean', () => {
  it('removes the tmp/ files older than --older-than (default 36h) and prints their escaped names; never new/ or cur/', async () => {
    const store = await tempStore();
    const age = async (area: 'tmp' | 'new' | 'cur', name: string, seconds: number): Promise<void> => {
      await put(store, name, '', area);
      const when = new Date(Date.now() - seconds * 1000);
      await utimes(join(store.root, area, name), when, when);
    };
    await age('tmp', 'ancient', 3 * 86400);
    await age('tmp', 'day', 30 * 3600);
    await age('tmp', 'hour\nly', 2 * 3600);
    await age('tmp', 'minutes', 100);
    await age('new', 'ancient', 3 * 86400);
    await age('cur', 'ancient', 3 * 86400);
    await put(store, 'fresh', '', 'tmp');
    const runs: Array<[string[], string]> = [
      [[], 'ancient\n'],
      [['--older-than', '1d'], 'day\n'],
      [['--older-than', String(90 * 60 * 1000)], 'hour\\nly\n'],
      [['--older-than', '2m'], ''],
      [['--older-than=90s'], 'minutes\n'],
      [['--older-than', '0.5h'], ''],
    ];
    for (const [options, printed] of runs) {
      const { code, stdout, stderr } = await cli(['clean', store.root, ...options]);
      expect([options, code, stdout.toString(), stderr]).toEqual([options, 0, printed, '']);
    }
    expect(await namesIn(store, 'tmp')).toEqual(['fresh']);
    expect(await namesIn(store, 'new')).toEqual(['ancient']);
    expect(await namesIn(store, 'cur')).toEqual(['ancient']);
  });

  it('fails with ENOENT, exit 1, when the store is missing', async () => {
    const { code, stderr } = await cli(['clean', join(await tempDir(), 'missing')]);
    expect(code).toBe(1);
    errorMessage(stderr, 'ENOENT');
  });
});

describe('help and usage errors', () => {
  it('lists consume and clean in the global help and prints their usage on --help', async () => {
    const global = (await cli(['--help'])).stdout.toString();
    for (const name of ['consume', 'clean']) {
      expect(global).toMatch(new RegExp(`^  ${name} `, 'm'));
      const { code, stdout } = await cli([name, '--help']);
      expect(code).toBe(0);
      expect(stdout.toString().startsWith(`Usage: maildir-filestore ${name} DIR `)).toBe(true);
    }
  });

  it('exits 2 with one error line and touches nothing for a missing CMD, extra arguments or a bad option value', async () => {
    const store = await tempStore();
    await put(store, 'kept', '');
    const marker = join(store.root, 'ran');
    const cmd = ['sh', '-c', `touch ${JSON.stringify(marker)}`];
    await put(store, 'old', '', 'tmp');
    await utimes(join(store.root, 'tmp', 'old'), new Date(0), new Date(0));
    const cases: Array<[string[], string]> = [
      [['consume', store.root], 'ERR_USAGE'],
      [['consume', store.root, '--'], 'ERR_USAGE'],
      [['consume', store.root, 'touch', marker], 'ERR_USAGE'],
      [['consume', store.root, ...cmd], 'ERR_USAGE'],
      [['consume', store.root, 'extra', '--', ...cmd], 'ERR_USAGE'],
      [['consume', '--', ...cmd], 'ERR_USAGE'],
      [['consume', store.root, '--poll-interval', '0', '--', ...cmd], 'ERR_USAGE'],
      [['consume', store.root, '--poll-interval', 'soon', '--', ...cmd], 'ERR_USAGE'],
      [['consume', store.root, '--bogus', '--', ...cmd], 'ERR_USAGE'],
      [['clean', store.root, '--older-than', '3x'], 'ERR_USAGE'],
      [['clean', store.root, '--older-than', ''], 'ERR_USAGE'],
      [['clean', store.root, '--older-than=-5s'], 'ERR_USAGE'],
      [['clean', store.root, '--older-than', '1.5.2h'], 'ERR_USAGE'],
      [['clean', store.root, 'extra'], 'ERR_USAGE'],
    ];
    const results = await Promise.all(cases.map(([args]) => cli(args)));
    for (const [i, { code, stdout, stderr }] of results.entries()) {
      expect([cases[i]?.[0], code, stdout.length]).toEqual([cases[i]?.[0], 2, 0]);
      errorMessage(stderr, cases[i]?.[1] as string);
    }
    expect(await namesIn(store, 'new')).toEqual(['kept']);
    expect(await namesIn(store, 'tmp')).toEqual(['old']);
    expect((await namesIn(store, 'cur')).length).toBe(0);
    await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
