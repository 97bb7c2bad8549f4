// The `maildir-filestore` command line, run as a real child process.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { FileStore } from '../lib/index.js';
import { CLI, bash, cli, completion, errorMessage, readmeBlock, serveChild } from './cli-helpers.js';
import { namesIn, put, tempDir, tempStore } from './helpers.js';

const COMMANDS = ['prepare', 'put', 'ls', 'cat', 'mv', 'claim', 'rm', 'serve'];

describe('help and usage errors, as a process sees them', () => {
  it('prints help on stdout with exit 0, and a usage error on stderr with exit 2', async () => {
    const help = await cli(['--help']);
    expect([help.code, help.stderr]).toEqual([0, '']);
    for (const name of COMMANDS) expect(help.stdout.toString()).toMatch(new RegExp(`^  ${name} `, 'm'));
    const wrong = await cli(['ls', '/nowhere', '--bogus']);
    expect([wrong.code, wrong.stdout.length]).toEqual([2, 0]);
    errorMessage(wrong.stderr, 'ERR_USAGE');
  });
});

describe('prepare and put', () => {
  it('prepares a store, twice', async () => {
    const dir = join(await tempDir(), 'a', 'store');
    for (let i = 0; i < 2; i++) {
      const { code, stdout, stderr } = await cli(['prepare', dir]);
      expect([code, stdout.length, stderr]).toEqual([0, 0, '']);
    }
    expect((await readdir(dir)).sort()).toEqual(['cur', 'new', 'tmp']);
  });

  it('stores a pipe into new/ under a generated name and prints it', async () => {
    const store = await tempStore();
    const data = randomBytes(3 * 1024 * 1024);
    const src = join(await tempDir(), 'data.bin');
    await writeFile(src, data);
    const { code, stdout, stderr } = await bash(
      `cat ${JSON.stringify(src)} | node ${JSON.stringify(CLI)} put ${JSON.stringify(store.root)}`,
    );
    expect([code, stderr]).toEqual([0, '']);
    const name = stdout.toString().trimEnd();
    expect(name).toMatch(/^\d+\.M\d+P\d+Q\d+R[0-9a-f]{8}\./);
    expect(await namesIn(store, 'new')).toEqual([name]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect((await readFile(join(store.root, 'new', name))).equals(data)).toBe(true);
  });

  it('stores under a chosen name, and refuses to replace it without --overwrite', async () => {
    const store = await tempStore();
    const first = await cli(['put', store.root, 'greeting', '--durability', 'none'], { input: 'hello' });
    expect([first.code, first.stdout.toString(), first.stderr]).toEqual([0, 'greeting\n', '']);

    const again = await cli(['put', store.root, 'greeting'], { input: 'other' });
    expect(again.code).toBe(1);
    expect(again.stdout.length).toBe(0);
    errorMessage(again.stderr, 'EEXIST');
    expect(await readFile(join(store.root, 'new', 'greeting'), 'utf8')).toBe('hello');
    expect(await namesIn(store, 'tmp')).toEqual([]);

    const forced = await cli(['put', store.root, 'greeting', '--overwrite'], { input: 'bye' });
    expect(forced.code).toBe(0);
    expect(await readFile(join(store.root, 'new', 'greeting'), 'utf8')).toBe('bye');
  });

  it('refuses /dev/null on stdin (exit 2, nothing stored) and says how to store a file NAME names; --empty commits an empty file', async () => {
    const store = await tempStore();
    const cwd = await tempDir();
    await writeFile(join(cwd, 'report.pdf'), '%PDF');
    const run = (args: string) =>
      bash(`node ${JSON.stringify(CLI)} put ${JSON.stringify(store.root)} ${args} < /dev/null`, { cwd });
    const named = await run('report.pdf');
    expect([named.code, named.stdout.length]).toEqual([2, 0]);
    errorMessage(named.stderr, 'ERR_USAGE');
    expect(named.stderr).toContain('from a device (such as /dev/null)');
    expect(named.stderr).toContain('put DIR report.pdf < report.pdf (or --file report.pdf)');
    const generated = await run('');
    expect(generated.code).toBe(2);
    expect(generated.stderr).toContain('--empty commits an empty file');
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    const empty = await run('marker --empty');
    expect([empty.code, empty.stdout.toString(), empty.stderr]).toEqual([0, 'marker\n', '']);
    const file = await run('report.pdf --file report.pdf');
    expect([file.code, file.stderr]).toEqual([0, '']);
    expect(await readFile(join(store.root, 'new', 'report.pdf'), 'utf8')).toBe('%PDF');
  });

  it('fails with ENOENT, exit 1, when the store does not exist', async () => {
    const { code, stderr } = await cli(['put', join(await tempDir(), 'missing')], { input: 'x' });
    expect(code).toBe(1);
    errorMessage(stderr, 'ENOENT');
  });

  it.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)(
    'commits nothing and removes its tmp/ file when interrupted mid-input by %s, exit %d',
    async (signal, exit) => {
      const store = await tempStore();
      const child = spawn(process.execPath, [CLI, 'put', store.root, 'partial']);
      const done = completion(child);
      child.stdin.write(randomBytes(64 * 1024));
      await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(1), { timeout: 10_000 });
      child.kill(signal);
      const { code, stdout, stderr } = await done;
      child.stdin.destroy();
      expect(code).toBe(exit);
      expect(stdout.length).toBe(0);
      errorMessage(stderr, 'ABORT_ERR');
      expect(stderr).toBe(`maildir-filestore: ABORT_ERR: interrupted by ${signal}\n`);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      expect(await namesIn(store, 'new')).toEqual([]);
    },
  );
});

describe('ls', () => {
  it('lists new/ by default and any area on request, one name per line', async () => {
    const store = await tempStore();
    await Promise.all(['b', 'a', 'c'].map((name) => put(store, name, name)));
    await writeFile(join(store.root, 'cur', 'done'), '');
    await writeFile(join(store.root, 'new', '.hidden'), '');
    const fresh = await cli(['ls', store.root]);
    expect(fresh.code).toBe(0);
    expect(fresh.stdout.toString().split('\n').sort()).toEqual(['', 'a', 'b', 'c']);
    expect((await cli(['ls', store.root, 'cur'])).stdout.toString()).toBe('done\n');
    expect((await cli(['ls', store.root, 'tmp'])).stdout.toString()).toBe('');
  });

  it('streams a large area and stops quietly when the reader goes away', async () => {
    const store = await tempStore();
    // 122 kB of names: more than a pipe holds, so `head` leaves while ls is still writing
    const names = Array.from({ length: 2000 }, (_, i) => `file-${i}-`.padEnd(60, 'x'));
    for (let i = 0; i < names.length; i += 500)
      await Promise.all(names.slice(i, i + 500).map((name) => put(store, name, '')));
    const all = await cli(['ls', store.root]);
    expect(all.stdout.toString().trimEnd().split('\n').sort()).toEqual(names.sort());
    const head = await bash(
      `node ${JSON.stringify(CLI)} ls ${JSON.stringify(store.root)} | head -n 1; echo "ls: \${PIPESTATUS[0]}"`,
    );
    expect(head.stderr).toBe('');
    expect(head.stdout.toString()).toMatch(/^file-\d+-x+\nls: 1\n$/);
  });
});

describe('cat, mv, claim, rm', () => {
  it('cat writes the file to stdout byte for byte; a missing one is ENOENT, exit 1', async () => {
    const store = await tempStore();
    const data = randomBytes(200_000);
    await put(store, 'blob', data);
    const ok = await cli(['cat', store.root, 'new', 'blob']);
    expect(ok.code).toBe(0);
    expect(ok.stdout.equals(data)).toBe(true);
    const missing = await cli(['cat', store.root, 'cur', 'blob']);
    expect([missing.code, missing.stdout.length]).toEqual([1, 0]);
    errorMessage(missing.stderr, 'ENOENT');
  });

  it('mv moves between areas and will not replace without --overwrite', async () => {
    const store = await tempStore();
    await put(store, 'f', 'one');
    expect((await cli(['mv', store.root, 'new', 'cur', 'f'])).code).toBe(0);
    expect([await namesIn(store, 'new'), await namesIn(store, 'cur')]).toEqual([[], ['f']]);
    await put(store, 'f', 'two');
    const clash = await cli(['mv', store.root, 'new', 'cur', 'f']);
    expect(clash.code).toBe(1);
    errorMessage(clash.stderr, 'EEXIST');
    expect(await readFile(join(store.root, 'cur', 'f'), 'utf8')).toBe('one');
    expect((await cli(['mv', store.root, 'new', 'cur', 'f', '--overwrite'])).code).toBe(0);
    expect(await readFile(join(store.root, 'cur', 'f'), 'utf8')).toBe('two');
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('claim exits 0 for the one winner among racing processes and 3, silently, for the rest', async () => {
    const store = await tempStore();
    await put(store, 'job', 'work');
    const results = await Promise.all(Array.from({ length: 4 }, () => cli(['claim', store.root, 'job'])));
    expect(results.map((r) => r.code).sort()).toEqual([0, 3, 3, 3]);
    for (const { stdout, stderr } of results) expect([stdout.length, stderr]).toEqual([0, '']);
    expect(await namesIn(store, 'cur')).toEqual(['job']);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('rm removes a file; a missing one is ENOENT, exit 1', async () => {
    const store = await tempStore();
    await put(store, 'gone', '');
    expect((await cli(['rm', store.root, 'new', 'gone'])).code).toBe(0);
    expect(await namesIn(store, 'new')).toEqual([]);
    const again = await cli(['rm', store.root, 'new', 'gone']);
    expect(again.code).toBe(1);
    errorMessage(again.stderr, 'ENOENT');
  });
});

describe('serve', () => {
  it('serves ./data by default, takes the token from FILESTORE_TOKEN, and exits 0 on SIGTERM', async () => {
    const cwd = await tempDir();
    const env = { ...process.env, FILESTORE_TOKEN: 's3cret' };
    const server = await serveChild(process.execPath, [CLI, 'serve', '--port', '0', '--durability', 'none'], {
      cwd,
      env,
    });
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    const denied = await fetch(new URL('/files/x', server.url), { method: 'PUT', body: 'x' });
    expect(denied.status).toBe(401);
    const stored = await fetch(new URL('/files/x', server.url), {
      method: 'PUT',
      body: 'x',
      headers: { authorization: 'Bearer s3cret' },
    });
    expect(stored.status).toBe(201);
    const { code, signal } = await server.stop();
    expect([code, signal]).toEqual([0, null]);
    expect(await readdir(join(cwd, 'data', 'new'))).toEqual(['x']);
  });

  it('stops accepting on the first SIGTERM but keeps a running upload; the second cuts it and removes its tmp/ file', async () => {
    const dir = join(await tempDir(), 'store');
    const server = await serveChild(process.execPath, [CLI, 'serve', dir, '--port', '0', '--durability', 'none']);
    const store = new FileStore(dir);
    const socket = connect(server.port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('PUT /files/upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n');
    // past 64 KiB, so the upload has its file in tmp/ (smaller ones at durability none wait in memory)
    socket.write(randomBytes(70_000));
    await vi.waitFor(async () => expect(await namesIn(store, 'tmp')).toHaveLength(1), { timeout: 10_000 });
    server.child.kill('SIGTERM');
    const attempt = (): Promise<unknown> =>
      new Promise((resolve) => {
        const probe = connect(server.port, '127.0.0.1');
        probe.on('error', resolve).on('connect', () => {
          probe.destroy();
          resolve(null);
        });
      });
    await vi.waitFor(async () => expect(await attempt()).toMatchObject({ code: 'ECONNREFUSED' }), { timeout: 10_000 });
    expect(await namesIn(store, 'tmp')).toHaveLength(1);
    const { code } = await server.stop();
    expect(code).toBe(0);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('fails with EADDRINUSE, exit 1, when the port is taken', async () => {
    const first = await serveChild(process.execPath, [CLI, 'serve', join(await tempDir(), 's'), '--port', '0']);
    try {
      const second = await cli(['serve', join(await tempDir(), 's'), '--port', String(first.port)]);
      expect(second.code).toBe(1);
      errorMessage(second.stderr, 'EADDRINUSE');
    } finally {
      await first.stop();
    }
  });

  it('npm start serves ./data with the defaults', async () => {
    const pkg = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'));
    expect(pkg.scripts.start).toBe('node dist/cli/main.js serve ./data');
    expect(pkg.bin).toEqual({ 'maildir-filestore': 'dist/cli/main.js' });
    expect((await readFile(CLI, 'utf8')).startsWith('#!/usr/bin/env node\n')).toBe(true);
    const help = (await cli(['serve', '--help'])).stdout.toString();
    expect(help).toContain('(default: 8080)');
    expect(help).toContain('(default: 127.0.0.1');
  });
});

/** A directory with `maildir-filestore` on PATH (the built CLI), for the docs' shell examples. */
async function shellWithCli(): Promise<{ cwd: string; env: NodeJS.ProcessEnv }> {
  const cwd = await tempDir();
  const bin = join(cwd, 'bin');
  await mkdir(bin);
  await writeFile(
    join(bin, 'maildir-filestore'),
    `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`,
  );
  await chmod(join(bin, 'maildir-filestore'), 0o755);
  return { cwd, env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } };
}

/** The outputs the `# ...` comments of a shell example promise, one per line (`A, exit 3` is two). */
function promised(block: string): string[] {
  return block.split('\n').flatMap((line) => /\s# (.*)$/.exec(line)?.[1]?.split(/, (?=exit \d)/) ?? []);
}

it('runs the --json examples of docs/cli.md, each printing what its comment says', async () => {
  const { cwd, env } = await shellWithCli();
  const block = await readmeBlock('readme-cli-json');
  const { code, stdout, stderr } = await bash(`set -euo pipefail\n${block}`, { cwd, env });
  expect([code, stderr]).toEqual([0, '']);
  const root = join(cwd, 'jobs');
  expect(stdout.toString()).toBe(`${promised(block).join('\n').replace('/abs/path/jobs', root)}\n`);
});

it('runs the put example of docs/cli.md: a file given two ways, an empty one on purpose, /dev/null refused', async () => {
  const { cwd, env } = await shellWithCli();
  await writeFile(join(cwd, 'report.pdf'), '%PDF-1.4 not really');
  const store = new FileStore(join(cwd, 'queue'));
  await store.prepare();
  const block = await readmeBlock('readme-cli-put');
  const { code, stdout, stderr } = await bash(`set -euo pipefail\n${block}`, { cwd, env });
  expect(code).toBe(0);
  expect(stdout.toString()).toBe('report.pdf\ncopy.pdf\nmarker\nexit 2\n');
  expect(errorMessage(stderr, 'ERR_USAGE')).toMatch(/^refusing to read the file from a device/);
  expect(await namesIn(store, 'new')).toEqual(['copy.pdf', 'marker', 'report.pdf']);
  expect(await readFile(join(store.root, 'new', 'copy.pdf'), 'utf8')).toBe('%PDF-1.4 not really');
  expect(await readFile(join(store.root, 'new', 'marker'), 'utf8')).toBe('');
});

it('runs the stat example of docs/cli.md', async () => {
  const { cwd, env } = await shellWithCli();
  const store = new FileStore(join(cwd, 'queue'));
  await store.prepare();
  for (const [name, size] of [
    ['a', 1000],
    ['b', 200],
    ['c', 34],
  ] as const)
    await put(store, name, 'x'.repeat(size));
  await writeFile(join(store.root, 'cur', 'd'), 'x'.repeat(10));
  const block = await readmeBlock('readme-cli-stat');
  const { code, stdout, stderr } = await bash(`set -euo pipefail\n${block}`, { cwd, env });
  expect([code, stderr]).toEqual([0, '']);
  expect(stdout.toString()).toBe(
    `${block
      .split('\n')
      .flatMap((line) => /^# (.*)$/.exec(line)?.[1] ?? [])
      .join('\n')}\n`,
  );
});

it('runs the README command-line example', async () => {
  const { cwd, env } = await shellWithCli();
  await writeFile(join(cwd, 'report.pdf'), '%PDF-1.4 not really');
  const script = `set -euo pipefail\n${await readmeBlock('readme-cli')}`;
  const { code, stdout, stderr } = await bash(script, { cwd, env });
  expect(stderr).toBe('');
  expect(code).toBe(0);
  const [putGreeting, putReport, ...rest] = stdout.toString().split('\n');
  expect(putGreeting).toBe('greeting');
  expect(putReport).toMatch(/^\d+\.M/);
  expect(rest.slice(0, 2).sort()).toEqual(['greeting', putReport].sort());
  expect(rest.slice(2)).toEqual(['hello', '']);
  const store = new FileStore(join(cwd, 'queue'));
  expect(await namesIn(store, 'new')).toEqual([putReport]);
  expect(await namesIn(store, 'cur')).toEqual([]);
});
