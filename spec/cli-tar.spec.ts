// `maildir-filestore export` and `import`, run as real child processes against GNU tar.
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Header } from 'tar-stream';
import { describe, expect, it, vi } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { CLI, bash, cli, completion, errorMessage } from './cli-helpers.js';
import { namesIn, tempDir, tempStore } from './helpers.js';
import { archive } from './tar-helpers.js';

const run = promisify(execFile);
const q = JSON.stringify;

/** A store holding a few files with awkward names and sizes. */
async function filledStore(): Promise<{ store: FileStore; files: Map<string, Buffer> }> {
  const store = await tempStore({ durability: 'none' });
  const files = new Map<string, Buffer>([
    ['empty', Buffer.alloc(0)],
    ['small', Buffer.from('hello')],
    ['big', randomBytes(700_000)],
    [`${'n'.repeat(240)}.long`, Buffer.from('long')],
    ['café 日本', Buffer.from('unicode')],
  ]);
  await Promise.all([...files].map(([name, data]) => writeFile(join(store.root, 'new', name), data)));
  return { store, files };
}

/** A directory of files and a GNU tar archive of it (`tar -cf - -C dir .`: `./` entries and the root directory). */
async function gnuArchive(files: Map<string, Buffer>): Promise<string> {
  const dir = await tempDir();
  const src = join(dir, 'src');
  await mkdir(src);
  await Promise.all([...files].map(([name, data]) => writeFile(join(src, name), data)));
  const file = join(dir, 'in.tar');
  await run('tar', ['-cf', file, '-C', src, '.']);
  return file;
}

describe('export', () => {
  it('--help for export and import, both listed in the global help', async () => {
    const [all, ...each] = await Promise.all([cli(['--help']), cli(['export', '--help']), cli(['import', '--help'])]);
    const global = all?.stdout.toString();
    for (const [i, name] of ['export', 'import'].entries()) {
      expect(global).toMatch(new RegExp(`^  ${name} `, 'm'));
      const { code, stdout } = each[i] as Awaited<ReturnType<typeof cli>>;
      expect(code).toBe(0);
      expect(stdout.toString().startsWith(`Usage: maildir-filestore ${name} DIR `)).toBe(true);
    }
  });

  it('writes an archive that GNU tar lists (tar -t) and extracts byte for byte, and is silent on a non-terminal stderr', async () => {
    const { store, files } = await filledStore();
    const listed = await bash(`node ${q(CLI)} export ${q(store.root)} new | tar -t`);
    expect([listed.code, listed.stderr]).toEqual([0, '']);
    expect(listed.stdout.toString().trimEnd().split('\n').sort()).toEqual([...files.keys()].sort());

    const out = await tempDir();
    const file = join(out, 'out.tar');
    const exported = await bash(`node ${q(CLI)} export ${q(store.root)} new > ${q(file)}`);
    expect([exported.code, exported.stdout.length, exported.stderr]).toEqual([0, 0, '']);
    await run('tar', ['-xf', file, '-C', out]);
    expect((await readdir(out)).sort()).toEqual([...files.keys(), 'out.tar'].sort());
    for (const [name, data] of files) expect((await readFile(join(out, name))).equals(data)).toBe(true);
    expect((await bash(`node ${q(CLI)} export ${q(store.root)} cur | tar -t`)).stdout.toString()).toBe('');
  });

  it('a bad area is a usage error (exit 2), a missing store ENOENT (exit 1), each one line', async () => {
    const store = await tempStore();
    const area = await cli(['export', store.root, 'old']);
    expect([area.code, area.stdout.length]).toEqual([2, 0]);
    errorMessage(area.stderr, 'ERR_INVALID_AREA');
    const missing = await cli(['export', join(store.root, 'nope'), 'new']);
    expect(missing.code).toBe(1);
    errorMessage(missing.stderr, 'ENOENT');
  });

  it('stops quietly, exit 1, when the reader goes away (| head -c)', async () => {
    const store = await tempStore();
    await writeFile(join(store.root, 'new', 'big'), randomBytes(2 * 1024 * 1024));
    const head = await bash(
      `node ${q(CLI)} export ${q(store.root)} new | head -c 100 | wc -c; echo "export: \${PIPESTATUS[0]}"`,
    );
    expect(head.stderr).toBe('');
    expect(head.stdout.toString()).toBe('100\nexport: 1\n');
  });
});

describe('import', () => {
  it('commits every file of a GNU tar archive (tar -cf) and prints the names, escaped, one per line', async () => {
    const files = new Map<string, Buffer>([
      ['report.pdf', randomBytes(300_000)],
      ['line\nbreak', Buffer.from('nl')],
      ['empty', Buffer.alloc(0)],
    ]);
    const file = await gnuArchive(files);
    const store = await tempStore();
    const { code, stdout, stderr } = await cli(['import', store.root, '--durability', 'none'], {
      input: await readFile(file),
    });
    expect([code, stderr]).toEqual([0, '']);
    expect(stdout.toString().split('\n').sort()).toEqual(['', 'empty', 'line\\nbreak', 'report.pdf']);
    expect(await namesIn(store, 'new')).toEqual([...files.keys()].sort());
    for (const [name, data] of files) expect((await readFile(join(store.root, 'new', name))).equals(data)).toBe(true);
    expect(await namesIn(store, 'tmp')).toEqual([]);

    const viaShell = await bash(`node ${q(CLI)} import ${q(store.root)} cur --durability none < ${q(file)}`);
    expect([viaShell.code, viaShell.stderr]).toEqual([0, '']);
    expect(await namesIn(store, 'cur')).toEqual([...files.keys()].sort());
  });

  it('refuses to replace existing files (EEXIST, exit 1) unless --overwrite', async () => {
    const file = await gnuArchive(
      new Map([
        ['a', Buffer.from('new a')],
        ['b', Buffer.from('new b')],
      ]),
    );
    const store = await tempStore();
    await writeFile(join(store.root, 'new', 'b'), 'old b');
    const clash = await bash(`node ${q(CLI)} import ${q(store.root)} < ${q(file)}`);
    expect(clash.code).toBe(1);
    errorMessage(clash.stderr, 'EEXIST');
    // tar -cf - -C dir . stores the files in directory order: a committed before b, or not at all
    expect(['', 'a\n']).toContain(clash.stdout.toString());
    expect(await readFile(join(store.root, 'new', 'b'), 'utf8')).toBe('old b');
    const forced = await bash(`node ${q(CLI)} import ${q(store.root)} --overwrite < ${q(file)}`);
    expect([forced.code, forced.stdout.toString().split('\n').sort()]).toEqual([0, ['', 'a', 'b']]);
    expect(await readFile(join(store.root, 'new', 'b'), 'utf8')).toBe('new b');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('a hostile entry: prints the names committed before it, exit 1 ERR_UNSAFE_ENTRY, nothing outside the store, tmp/ empty', async () => {
    const hostiles = [
      [{ name: '../escaped' }, 'x'],
      [{ name: '/tmp/absolute' }, 'x'],
      [{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }],
    ] as Array<[Partial<Header> & { name: string }, string?]>;
    await Promise.all(
      hostiles.map(async (hostile) => {
        const store = await tempStore();
        const parent = dirname(store.root);
        const body = await archive([[{ name: 'first' }, 'one'], hostile, [{ name: 'after' }, 'never']]);
        const { code, stdout, stderr } = await cli(['import', store.root], { input: body });
        expect(code).toBe(1);
        expect(stdout.toString()).toBe('first\n');
        errorMessage(stderr, 'ERR_UNSAFE_ENTRY');
        expect(await readdir(parent)).toEqual(['store']);
        expect((await readdir(store.root)).sort()).toEqual(['cur', 'new', 'tmp']);
        expect(await namesIn(store, 'new')).toEqual(['first']);
        expect(await namesIn(store, 'tmp')).toEqual([]);
      }),
    );
  });

  it('a truncated archive: exit 1 ERR_CORRUPT_ARCHIVE, the file cut short is not committed', async () => {
    const file = await gnuArchive(new Map([['whole', randomBytes(1000)]]));
    const full = await readFile(file);
    const second = await archive([[{ name: 'cut' }, randomBytes(100_000)]]);
    // GNU tar's first entries, minus its end blocks, then half of a second file
    const end =
      full.length -
      Buffer.from(full)
        .reverse()
        .findIndex((byte) => byte !== 0);
    const body = Buffer.concat([full.subarray(0, Math.ceil(end / 512) * 512), second.subarray(0, 50_000)]);
    const store = await tempStore();
    const { code, stdout, stderr } = await cli(['import', store.root], { input: body });
    expect(code).toBe(1);
    expect(stdout.toString()).toBe('whole\n');
    errorMessage(stderr, 'ERR_CORRUPT_ARCHIVE');
    expect(await namesIn(store, 'new')).toEqual(['whole']);
    expect(await namesIn(store, 'tmp')).toEqual([]);
    const empty = await cli(['import', store.root], { input: '' });
    expect([empty.code, empty.stdout.length]).toEqual([1, 0]);
    errorMessage(empty.stderr, 'ERR_CORRUPT_ARCHIVE');
  });

  it('interrupted mid-file (SIGTERM): prints what was committed, exit 143 ABORT_ERR, the partial file removed from tmp/', async () => {
    const store = await tempStore();
    const body = await archive([
      [{ name: 'done' }, 'first'],
      [{ name: 'partial' }, randomBytes(1024 * 1024)],
    ]);
    const child = spawn(process.execPath, [CLI, 'import', store.root, '--durability', 'none']);
    const done = completion(child);
    child.stdin.on('error', () => {});
    child.stdin.write(body.subarray(0, 256 * 1024));
    await vi.waitFor(
      async () => expect([await namesIn(store, 'new'), (await namesIn(store, 'tmp')).length]).toEqual([['done'], 1]),
      { timeout: 10_000 },
    );
    child.kill('SIGTERM');
    const { code, stdout, stderr } = await done;
    child.stdin.destroy();
    expect([code, stdout.toString()]).toEqual([143, 'done\n']);
    expect(stderr).toBe('maildir-filestore: ABORT_ERR: interrupted by SIGTERM\n');
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual(['done']);
  });

  it('an area other than new or cur is a usage error, exit 2', async () => {
    const store = await tempStore();
    const input = await archive([[{ name: 'a' }, 'a']]);
    const cases = [
      ['tmp', 'ERR_USAGE'],
      ['old', 'ERR_INVALID_AREA'],
    ];
    for (const [area, expected] of cases) {
      const { code, stderr } = await cli(['import', store.root, area ?? ''], { input });
      expect(code).toBe(2);
      errorMessage(stderr, expected ?? '');
    }
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });
});

// `script` (util-linux) runs the command on a pseudo-terminal: stderr is a TTY, stdout redirected.
const hasScript = spawnSync('script', ['-qec', 'true', '/dev/null'], { stdio: 'ignore' }).status === 0;
describe('progress on a terminal', () => {
  if (!hasScript) {
    it.skip('draws the progress line on a terminal stderr (skipped: util-linux `script` is not installed, so no pseudo-terminal)', () => {});
    return;
  }

  it('export and import draw "N of TOTAL files, BYTES" and "N files, BYTES of SIZE" on a terminal stderr and end the line; the archive is unharmed', async () => {
    const { store, files } = await filledStore();
    const out = join(await tempDir(), 'out.tar');
    const exported = await bash(`script -qec ${q(`node ${q(CLI)} export ${q(store.root)} new > ${q(out)}`)} /dev/null`);
    expect(exported.code).toBe(0);
    const terminal = exported.stdout.toString();
    const rate = '(, [\\d.]+ [kMG]?B/s)?';
    expect(terminal).toMatch(
      new RegExp(
        `^(\\rmaildir-filestore: exporting: \\d of 5 files, [\\d.]+ k?B${rate}\\x1b\\[K)*\\rmaildir-filestore: exporting: 5 of 5 files, 70\\d\\.\\d kB${rate}\\x1b\\[K\\r\\n$`,
      ),
    );
    expect((await run('tar', ['-tf', out])).stdout.trimEnd().split('\n').sort()).toEqual([...files.keys()].sort());

    const target = await tempStore();
    const imported = await bash(
      `script -qec ${q(`node ${q(CLI)} import ${q(target.root)} --durability none < ${q(out)} > /dev/null`)} /dev/null`,
    );
    expect(imported.code).toBe(0);
    const size = `${((await stat(out)).size / 1000).toFixed(1)} kB`;
    expect(imported.stdout.toString()).toMatch(
      new RegExp(
        `^(\\rmaildir-filestore: importing: \\d files?, [\\d.]+ k?B of ${size} \\(\\d+%\\)${rate}\\x1b\\[K)*\\rmaildir-filestore: importing: 5 files, ${size} of ${size} \\(100%\\)${rate}\\x1b\\[K\\r\\n$`,
      ),
    );
    expect(await namesIn(target, 'new')).toEqual([...files.keys()].sort());
  });

  it('export refuses a terminal as stdout, import as stdin: usage error, exit 2', async () => {
    const store = await tempStore();
    const [exported, imported] = await Promise.all([
      bash(`script -qec ${q(`node ${q(CLI)} export ${q(store.root)} new`)} /dev/null`),
      bash(`script -qec ${q(`node ${q(CLI)} import ${q(store.root)}`)} /dev/null`),
    ]);
    expect(exported.code).toBe(2);
    expect(exported.stdout.toString()).toMatch(
      /^maildir-filestore: ERR_USAGE: refusing to write a tar archive to a terminal/,
    );
    expect(imported.code).toBe(2);
    expect(imported.stdout.toString()).toMatch(
      /^maildir-filestore: ERR_USAGE: refusing to read a tar archive from a terminal/,
    );
  });
});
