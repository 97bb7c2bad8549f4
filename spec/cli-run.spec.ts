// The command line in process, through run(argv, io): help, usage errors and
// their wording, escaping, --json, stat, put's input rules, exit codes.
// Real processes (signals, races, /dev/null) are in cli.spec.ts.
import { createReadStream, openSync } from 'node:fs';
import { mkdir, readFile, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Interrupted } from '../lib/cli/command.js';
import { commands } from '../lib/cli/commands.js';
import type { FileStore } from '../lib/index.js';
import { errorMessage, runCli } from './cli-helpers.js';
import { namesIn, tempDir, tempStore } from './helpers.js';

// every command of the table; the help must list them all, in the table's order
const COMMANDS = [...commands.keys()];

async function put(store: FileStore, name: string, data: string | Buffer, area = 'new'): Promise<void> {
  await writeFile(join(store.root, area, name), data);
}

function jsonLines(text: string): unknown[] {
  expect(text.endsWith('\n')).toBe(true);
  return text
    .trimEnd()
    .split('\n')
    .map((line) => JSON.parse(line) as unknown);
}

describe('help', () => {
  it('lists every command, the argument order and every exit code', async () => {
    for (const flag of ['--help', '-h', 'help']) {
      const { code, stdout, stderr } = await runCli([flag]);
      expect([code, stderr]).toEqual([0, '']);
      const table = stdout.split('\nCommands:\n')[1] ?? '';
      expect([...table.matchAll(/^ {2}(\S+) {2}/gm)].map((m) => m[1])).toEqual(COMMANDS);
      expect(COMMANDS).toEqual(expect.arrayContaining(['prepare', 'put', 'ls', 'stat', 'claim', 'import', 'clean']));
      expect(stdout).toContain('DIR, then the area(s), then the name');
      for (const exit of ['0', '1', '2', '3', '130']) expect(stdout).toMatch(new RegExp(`^  ${exit} +\\S`, 'm'));
    }
  });

  it('prints each command its usage, also before a wrong argument; help CMD is CMD --help', async () => {
    for (const name of COMMANDS) {
      const { code, stdout } = await runCli([name, '--help']);
      expect(code).toBe(0);
      expect(stdout.startsWith(`Usage: maildir-filestore ${name} `)).toBe(true);
      expect((await runCli(['help', name])).stdout).toBe(stdout);
      expect((await runCli([name, '-h', '--bogus'])).stdout).toBe(stdout);
    }
  });
});

describe('usage errors, in the command line own words', () => {
  const cases: Array<[string[], RegExp]> = [
    [[], /^missing command \(see 'maildir-filestore --help'\)$/],
    [['frobnicate'], /^unknown command "frobnicate"/],
    [['ls', '/x', '--bogus'], /^ls has no option --bogus \(see 'maildir-filestore ls --help'\); .* -- --bogus$/],
    [['ls', '/x', '-x'], /^ls has no option -x /],
    [['put', '/x', '--overwrite=yes'], /^--overwrite takes no value, got --overwrite=yes$/],
    [['put', '/x', '--durability'], /^--durability needs a value$/],
    [['serve', '--port', '--host', 'h'], /^--port needs a value, got the option --host \(write --port=--host/],
    [['serve', '--port', 'eighty'], /^--port must be an integer >= 0, got "eighty"$/],
    [['serve', '--port', '65536'], /^--port must be at most 65535, got 65536$/],
    [['put', '/x', 'n', '--durability', 'some'], /^--durability must be full, file or none, got "some"$/],
    [['rm', '/x', 'new'], /^rm takes 3 arguments, got 2 \(usage: maildir-filestore rm DIR AREA NAME/],
    [['claim', '/x', 'a', 'b'], /^claim takes 2 arguments, got 3/],
    [['import', '/x', 'tmp'], /^AREA must be new or cur, got "tmp"$/],
    [['cat', '/x', 'new', 'n', '--overwrite'], /^cat has no option --overwrite /],
    [['put', '/x', '--empty', '--file', 'f'], /^--empty and --file exclude each other$/],
    [['consume', '/x'], /^consume takes DIR, then -- and the command to run/],
    [
      ['put', '/x', '--durability', 'none', '--durability=full'],
      /^--durability is given twice \("none" and "full"\): give it once$/,
    ],
  ];
  it.each(cases)('%j: exit 2, one ERR_USAGE line', async (args, message) => {
    const { code, stdout, stderr } = await runCli(args);
    expect([code, stdout]).toEqual([2, '']);
    const text = errorMessage(stderr, 'ERR_USAGE');
    expect(text).toMatch(message);
    expect(text).not.toMatch(/ERR_PARSE_ARGS|To specify a positional/);
    expect((text.match(/'/g) ?? []).length % 2).toBe(0);
  });

  it('takes an argument that starts with - after --', async () => {
    const store = await tempStore();
    await put(store, '-n', 'dash');
    const { code, stdout } = await runCli(['cat', store.root, 'new', '--', '-n']);
    expect([code, stdout]).toEqual([0, 'dash']);
  });

  it('exits 2 for an invalid name or area, touching nothing', async () => {
    const store = await tempStore();
    const name = await runCli(['put', store.root, '.hidden'], { input: 'x' });
    expect(name.code).toBe(2);
    errorMessage(name.stderr, 'ERR_INVALID_NAME');
    const area = await runCli(['ls', store.root, 'old']);
    expect(area.code).toBe(2);
    errorMessage(area.stderr, 'ERR_INVALID_AREA');
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('with --json, the error is a JSON object on stderr', async () => {
    const { code, stderr } = await runCli(['ls', '/x', '--json', '--bogus']);
    expect(code).toBe(2);
    expect(jsonLines(stderr)).toEqual([{ error: { code: 'ERR_USAGE', message: expect.stringMatching(/--bogus/) } }]);
    const both = await runCli(['ls', '/x', '-0', '--json']);
    expect(jsonLines(both.stderr)).toEqual([
      { error: { code: 'ERR_USAGE', message: '-0 and --json exclude each other' } },
    ]);
  });
});

describe('a missing store', () => {
  it('says to run prepare (ENOENT, exit 1); a missing file in a store does not', async () => {
    const dir = join(await tempDir(), 'queue');
    for (const args of [
      ['ls', dir],
      ['stat', dir],
      ['put', dir, 'x'],
      ['claim', dir, 'x'],
      ['rm', dir, 'new', 'x'],
    ]) {
      const { code, stderr } = await runCli(args, { input: 'x' });
      expect([args, code]).toEqual([args, 1]);
      expect(errorMessage(stderr, 'ENOENT')).toBe(
        `no store at ${dir} (tmp/, new/, cur/ missing): create it with 'maildir-filestore prepare ${dir}'`,
      );
    }
    const store = await tempStore();
    const missing = await runCli(['cat', store.root, 'new', 'nothing']);
    expect(missing.code).toBe(1);
    expect(errorMessage(missing.stderr, 'ENOENT')).not.toContain('prepare');
  });
});

describe('ls', () => {
  const names = ['plain', 'new\nline', 'tab\there', 'back\\slash', 'bell\x07', 'del\x7f', 'sep\u2028', 'caf\u00e9'];

  it('escapes control characters and backslashes, one name per line; -0 prints raw names', async () => {
    const store = await tempStore();
    for (const name of names) await put(store, name, '');
    const escaped = await runCli(['ls', store.root]);
    expect(escaped.stdout.split('\n').sort()).toEqual(
      [
        '',
        'plain',
        'new\\nline',
        'tab\\there',
        'back\\\\slash',
        'bell\\u0007',
        'del\\u007f',
        'sep\\u2028',
        'café',
      ].sort(),
    );
    const raw = await runCli(['ls', store.root, '-0']);
    expect(raw.stdout.split('\0').sort()).toEqual(['', ...names].sort());
  });

  it('--json prints one {"name","area"} object per line, names exact', async () => {
    const store = await tempStore();
    for (const name of names) await put(store, name, '', 'cur');
    const { code, stdout } = await runCli(['ls', store.root, 'cur', '--json']);
    expect(code).toBe(0);
    expect(stdout.split('\n').every((line) => !/[\x00-\x1f\x7f-\x9f\u2028]/.test(line))).toBe(true);
    const records = jsonLines(stdout) as Array<{ name: string; area: string }>;
    expect(records.map((r) => r.name).sort()).toEqual([...names].sort());
    expect(new Set(records.map((r) => r.area))).toEqual(new Set(['cur']));
    expect((await runCli(['ls', store.root, '--json'])).stdout).toBe('');
  });
});

describe('put', () => {
  it('refuses a terminal on standard input, saying how to give the file; nothing is stored', async () => {
    const store = await tempStore();
    const { code, stdout, stderr } = await runCli(['put', store.root, 'report.pdf'], { stdinTTY: true });
    expect([code, stdout]).toEqual([2, '']);
    const message = errorMessage(stderr, 'ERR_USAGE');
    expect(message).toMatch(/^refusing to read the file from a terminal\./);
    expect(message).toContain('< FILE');
    expect(message).toContain('--file PATH');
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('--file PATH stores that file; --empty an empty one without reading stdin; --json says what', async () => {
    const store = await tempStore();
    const src = join(await tempDir(), 'report.pdf');
    await writeFile(src, '%PDF-1.4 not really');
    const fromFile = await runCli(['put', store.root, 'report.pdf', '--file', src, '--json'], { stdinTTY: true });
    expect(fromFile.code).toBe(0);
    expect(jsonLines(fromFile.stdout)).toEqual([{ name: 'report.pdf', area: 'new', bytes: 19 }]);
    expect(await readFile(join(store.root, 'new', 'report.pdf'), 'utf8')).toBe('%PDF-1.4 not really');
    const empty = await runCli(['put', store.root, 'marker', '--empty'], { stdinTTY: true });
    expect([empty.code, empty.stdout]).toEqual([0, 'marker\n']);
    expect(await readFile(join(store.root, 'new', 'marker'), 'utf8')).toBe('');
    const piped = await runCli(['put', store.root, '--json'], { input: 'abc' });
    const [record] = jsonLines(piped.stdout) as Array<{ name: string; bytes: number }>;
    expect(record?.bytes).toBe(3);
    expect(await readFile(join(store.root, 'new', record?.name ?? ''), 'utf8')).toBe('abc');
  });

  it('a missing --file is ENOENT, exit 1, and leaves nothing in tmp/', async () => {
    const store = await tempStore();
    const { code, stderr } = await runCli(['put', store.root, 'x', '--file', join(store.root, 'absent')]);
    expect(code).toBe(1);
    errorMessage(stderr, 'ENOENT');
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('interrupted, exits 128 + the signal, commits nothing and removes its tmp/ file', async () => {
    const store = await tempStore();
    const controller = new AbortController();
    const stdin = new PassThrough();
    stdin.write('part of it');
    const done = runCli(['put', store.root, 'partial'], { stdin, signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 50));
    controller.abort(new Interrupted('SIGTERM'));
    const { code, stdout, stderr } = await done;
    expect([code, stdout]).toEqual([143, '']);
    expect(errorMessage(stderr, 'ABORT_ERR')).toBe('interrupted by SIGTERM');
    expect(await namesIn(store, 'tmp')).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });
});

describe('interrupted', () => {
  it.each([
    ['ls', 'SIGINT', 130],
    ['stat', 'SIGTERM', 143],
  ] as const)('%s stops at the signal, exit 128 + its number', async (command, signal, exit) => {
    const store = await tempStore();
    await put(store, 'a', 'x');
    const controller = new AbortController();
    controller.abort(new Interrupted(signal));
    const { code, stdout, stderr } = await runCli([command, store.root], { signal: controller.signal });
    expect([code, stdout]).toEqual([exit, '']);
    expect(errorMessage(stderr, 'ABORT_ERR')).toBe(`interrupted by ${signal}`);
  });
});

describe('mv: DIR, the areas, then the name', () => {
  it('moves with mv DIR FROM TO NAME', async () => {
    const store = await tempStore();
    await put(store, 'f', 'one');
    const { code, stdout, stderr } = await runCli(['mv', store.root, 'new', 'cur', 'f', '--json']);
    expect([code, stderr]).toEqual([0, '']);
    expect(jsonLines(stdout)).toEqual([{ name: 'f', from: 'new', to: 'cur' }]);
    expect(await namesIn(store, 'cur')).toEqual(['f']);
  });

  it('still takes the old order mv DIR NAME FROM TO, with a deprecation warning', async () => {
    const store = await tempStore();
    await put(store, 'f', 'one');
    const { code, stderr } = await runCli(['mv', store.root, 'f', 'new', 'cur']);
    expect(code).toBe(0);
    expect(stderr).toBe(
      "maildir-filestore: warning: 'mv DIR NAME FROM TO' is deprecated, write 'mv DIR FROM TO NAME' (DIR, the areas, then the name, as every command)\n",
    );
    expect(await namesIn(store, 'cur')).toEqual(['f']);
  });

  it('reads a name that is itself an area in the new order', async () => {
    const store = await tempStore();
    await put(store, 'cur', 'x', 'tmp');
    const { code, stderr } = await runCli(['mv', store.root, 'tmp', 'new', 'cur']);
    expect([code, stderr]).toEqual([0, '']);
    expect(await namesIn(store, 'new')).toEqual(['cur']);
  });
});

describe('claim', () => {
  it('exits 0 when won and 3, silently, when not; --json says which', async () => {
    const store = await tempStore();
    await put(store, 'job', 'work');
    const won = await runCli(['claim', store.root, 'job', '--json']);
    expect([won.code, won.stderr]).toEqual([0, '']);
    expect(jsonLines(won.stdout)).toEqual([{ name: 'job', claimed: true }]);
    const lost = await runCli(['claim', store.root, 'job']);
    expect(lost).toMatchObject({ code: 3, stdout: '', stderr: '' });
    const lostJson = await runCli(['claim', store.root, 'job', '--json']);
    expect([lostJson.code, jsonLines(lostJson.stdout)]).toEqual([3, [{ name: 'job', claimed: false }]]);
  });

  it('exits 1 on an error, with its code', async () => {
    const store = await tempStore();
    await put(store, 'job', 'a');
    await put(store, 'job', 'b', 'cur');
    const { code, stderr } = await runCli(['claim', store.root, 'job']);
    expect(code).toBe(1);
    errorMessage(stderr, 'EEXIST');
  });
});

describe('stat', () => {
  it('counts the regular files and bytes of each area, as text and as JSON', async () => {
    const store = await tempStore();
    await put(store, 'a', 'x'.repeat(10));
    await put(store, 'b', 'x'.repeat(2000));
    await put(store, 'c', 'x'.repeat(5), 'cur');
    await mkdir(join(store.root, 'new', 'subdir'));
    await symlink('/etc/passwd', join(store.root, 'new', 'link'));
    const text = await runCli(['stat', store.root]);
    expect(text).toMatchObject({
      code: 0,
      stdout: 'area  files  bytes\ntmp       0      0\nnew       2   2010\ncur       1      5\n',
      stderr: '',
    });
    const json = await runCli(['stat', store.root, '--json']);
    expect(jsonLines(json.stdout)).toEqual([
      { tmp: { files: 0, bytes: 0 }, new: { files: 2, bytes: 2010 }, cur: { files: 1, bytes: 5 } },
    ]);
  });
});

describe('progress on a terminal stderr', () => {
  const line = (text: string): RegExp => new RegExp(`^\\rmaildir-filestore: ${text}(, [\\d.]+ k?B/s)?\\x1b\\[K\\n$`);

  it('export shows the files of the area count', async () => {
    const store = await tempStore();
    await put(store, 'a', 'x'.repeat(1000));
    await put(store, 'b', 'y');
    await symlink('/etc/passwd', join(store.root, 'new', 'link'));
    const { code, stderr } = await runCli(['export', store.root, 'new'], { stderrTTY: true });
    expect(code).toBe(0);
    expect(stderr).toMatch(line('exporting: 2 of 2 files, 3\\.6 kB'));
    const quiet = await runCli(['export', store.root, 'new']);
    expect([quiet.code, quiet.stderr]).toEqual([0, '']);
  });

  it('import from a file shows the bytes of its size; from a pipe without a total', async () => {
    const from = await tempStore();
    await put(from, 'a', 'x'.repeat(1000));
    const archive = join(await tempDir(), 'a.tar');
    const exported = await runCli(['export', from.root, 'new']);
    await writeFile(archive, exported.stdoutBytes);
    const size = (await stat(archive)).size;
    const to = await tempStore();
    const stdin = createReadStream('', { fd: openSync(archive, 'r') });
    const fromFile = await runCli(['import', to.root, '--durability', 'none'], { stdin, stderrTTY: true });
    expect(fromFile.code).toBe(0);
    expect(fromFile.stderr).toMatch(
      line(`importing: 1 file, ${(size / 1000).toFixed(1)} kB of ${(size / 1000).toFixed(1)} kB \\(100%\\)`),
    );
    const again = await tempStore();
    const piped = await runCli(['import', again.root], { input: await readFile(archive), stderrTTY: true });
    expect(piped.stderr).toMatch(line(`importing: 1 file, ${(size / 1000).toFixed(1)} kB`));
  });
});

describe('--json on the other commands', () => {
  it('prepare, rm and clean say what they did', async () => {
    const dir = join(await tempDir(), 'q');
    expect(jsonLines((await runCli(['prepare', dir, '--json'])).stdout)).toEqual([{ root: dir }]);
    await writeFile(join(dir, 'new', 'gone'), '');
    expect(jsonLines((await runCli(['rm', dir, 'new', 'gone', '--json'])).stdout)).toEqual([
      { name: 'gone', area: 'new' },
    ]);
    await writeFile(join(dir, 'tmp', 'old\nwriter'), '');
    await utimes(join(dir, 'tmp', 'old\nwriter'), 0, 0);
    const cleaned = await runCli(['clean', dir, '--json']);
    expect([cleaned.code, jsonLines(cleaned.stdout)]).toEqual([0, [{ name: 'old\nwriter', area: 'tmp' }]]);
  });

  it('import prints one {"name","area"} per committed file', async () => {
    const from = await tempStore();
    await put(from, 'one', '1');
    await put(from, 'two\nlines', '22');
    const exported = await runCli(['export', from.root, 'new']);
    expect(exported.code).toBe(0);
    const to = await tempStore();
    const imported = await runCli(['import', to.root, 'cur', '--json'], { input: exported.stdoutBytes });
    expect(imported.code).toBe(0);
    expect(
      (jsonLines(imported.stdout) as Array<{ name: string }>).sort((a, b) => a.name.localeCompare(b.name)),
    ).toEqual([
      { name: 'one', area: 'cur' },
      { name: 'two\nlines', area: 'cur' },
    ]);
  });
});
