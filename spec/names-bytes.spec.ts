// Names that are not UTF-8 on disk (another maildir writer, in C or Python,
// made `new/latin1-\xe9t\xe9`): every path of the library, the CLI and HTTP
// sees them under one spelling (each byte that is not UTF-8 as U+DC00 + byte,
// Python's surrogateescape) and reaches the file under its real bytes.
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { byteArguments } from '../lib/cli/raw-argv.js';
import { escapeName } from '../lib/cli/output.js';
import { FileStore, fsPath, nameFromBytes, nameToBytes, type Area } from '../lib/index.js';
import { bash, cli, completion, runCli } from './cli-helpers.js';
import { nameParams } from '../lib/server/router.js';
import { start } from './server-helpers.js';
import { docBlock } from './doc-blocks.js';
import { DIST, tempDir, tempStore } from './helpers.js';

/** `latin1-été` and `latin1-ètè` in latin1: two names whose bytes are not UTF-8, which a UTF-8 reading would both show as `latin1-\uFFFDt\uFFFD`. */
const E_ACUTE = Buffer.from('latin1-\xe9t\xe9', 'latin1');
const E_GRAVE = Buffer.from('latin1-\xe8t\xe8', 'latin1');
const ACUTE_NAME = 'latin1-\udce9t\udce9';
const GRAVE_NAME = 'latin1-\udce8t\udce8';
/** A file really named with U+FFFD (valid UTF-8): what a lossy reading would open instead. */
const REPLACEMENT_NAME = 'latin1-\uFFFDt\uFFFD';

/** Writes a file under the exact bytes `name` into an area, as another maildir writer would. */
async function plantBytes(store: FileStore, area: Area, name: Buffer, data: string): Promise<void> {
  await writeFile(Buffer.concat([Buffer.from(join(store.root, area, '/')), name]), data);
}

/** The names in an area as bytes, read straight from the directory. */
async function bytesIn(store: FileStore, area: Area): Promise<string[]> {
  const names = await readdir(Buffer.from(join(store.root, area)), { encoding: 'buffer' });
  return names.map((name) => name.toString('hex')).sort();
}

const hex = (...names: Array<Buffer | string>): string[] =>
  names.map((name) => Buffer.from(name).toString('hex')).sort();

/** A store holding the two latin1 files and the one really named with U+FFFD, in `area`. */
async function plantedStore(area: Area = 'new'): Promise<FileStore> {
  const store = await tempStore({ durability: 'none' });
  await plantBytes(store, area, E_ACUTE, 'acute');
  await plantBytes(store, area, E_GRAVE, 'grave');
  await writeFile(join(store.root, area, REPLACEMENT_NAME), 'replacement');
  return store;
}

async function listed(store: FileStore, area: Area): Promise<string[]> {
  const names: string[] = [];
  for await (const entry of store.list(area)) names.push(entry.name);
  return names.sort();
}

describe('the spelling of a name that is not UTF-8', () => {
  it('holds each byte that is not part of valid UTF-8 as U+DC00 + byte, and gives the bytes back', () => {
    expect(nameFromBytes(E_ACUTE)).toBe(ACUTE_NAME);
    expect(nameToBytes(ACUTE_NAME)).toEqual(E_ACUTE);
    // valid UTF-8 stays as it is, U+FFFD included
    expect(nameFromBytes(Buffer.from(REPLACEMENT_NAME))).toBe(REPLACEMENT_NAME);
    // a truncated sequence, an overlong one, a surrogate's UTF-8 and bytes over U+10FFFF are all escaped bytes
    for (const bytes of [[0xc3], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xff, 0x41]]) {
      const name = nameFromBytes(Buffer.from(bytes));
      expect(nameToBytes(name)).toEqual(Buffer.from(bytes));
      expect(name).not.toContain('\uFFFD');
    }
  });

  it('is the one name store methods take for such bytes: other lone surrogates and escapes of valid UTF-8 are refused', async () => {
    const store = await tempStore();
    expect(() => store.create(ACUTE_NAME)).not.toThrow();
    // U+DCC3 U+DCA9 would be the bytes of "é", which a listing spells as "é": two names for one file
    for (const name of ['\udcc3\udca9', 'a\ud800', 'a\udc41', `${'\udce9'.repeat(255)}x`]) {
      expect(() => store.path(name, 'new'), JSON.stringify(name)).toThrow(
        expect.objectContaining({ code: 'ERR_INVALID_NAME' }),
      );
    }
    // 255 escaped bytes are 255 bytes on disk
    expect(() => store.path('\udce9'.repeat(255), 'new')).not.toThrow();
  });

  it('reads the same in Python: os.listdir and mailbox.Maildir give the escaped name the store lists', async () => {
    const store = await plantedStore();
    const script = [
      'import json, mailbox, os, sys',
      'root = sys.argv[1]',
      'listed = sorted(os.listdir(os.path.join(root, "new")))',
      'keys = sorted(mailbox.Maildir(root, create=False).keys())',
      'print(json.dumps({"listed": listed, "keys": keys}))',
    ].join('\n');
    const python = await completion(spawn('python3', ['-c', script, store.root]));
    expect(python.stderr).toBe('');
    const seen = JSON.parse(python.stdout.toString()) as { listed: string[]; keys: string[] };
    expect(seen.listed).toEqual(await listed(store, 'new'));
    expect(seen.listed).toEqual([GRAVE_NAME, ACUTE_NAME, REPLACEMENT_NAME].sort());
  });
});

describe('the library with names that are not UTF-8', () => {
  it("runs docs/api.md's example: fsPath(entry.path) reads a file whose name is not UTF-8", async () => {
    const cwd = await tempDir();
    const store = new FileStore(join(cwd, 'queue'));
    await store.prepare();
    await plantBytes(store, 'new', Buffer.from('latin1-\xe9', 'latin1'), 'abc');
    const script = join(cwd, 'example.mjs');
    await writeFile(
      script,
      docBlock('readme-names-bytes', 'js').replaceAll("'maildir-filestore'", JSON.stringify(DIST)),
    );
    const result = await completion(spawn(process.execPath, [script], { cwd }));
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('6c6174696e312de9 3\n');
  });

  it('lists each file once under its own name, and fsPath(entry.path) opens that file, not the U+FFFD one', async () => {
    const store = await plantedStore();
    const contents = new Map<string, string>();
    for await (const entry of store.list('new')) contents.set(entry.name, await readFile(fsPath(entry.path), 'utf8'));
    expect(Object.fromEntries(contents)).toEqual({
      [ACUTE_NAME]: 'acute',
      [GRAVE_NAME]: 'grave',
      [REPLACEMENT_NAME]: 'replacement',
    });
    expect(await readFile(fsPath(store.path(ACUTE_NAME, 'new')), 'utf8')).toBe('acute');
  });

  it('claims them, and consume() yields every one: none stays in new/', async () => {
    const store = await plantedStore();
    expect(await store.claim(ACUTE_NAME)).toBe(true);
    expect(await store.claim(ACUTE_NAME)).toBe(false);
    const consumed: string[] = [];
    for await (const entry of store.consume())
      consumed.push(`${entry.name}=${await readFile(fsPath(entry.path), 'utf8')}`);
    expect(consumed.sort()).toEqual([`${GRAVE_NAME}=grave`, `${REPLACEMENT_NAME}=replacement`].sort());
    expect(await bytesIn(store, 'new')).toEqual([]);
    expect(await bytesIn(store, 'cur')).toEqual(hex(E_ACUTE, E_GRAVE, REPLACEMENT_NAME));
  });

  it('consumes them with a lease: acknowledged by remove, released back to new/, requeued by name', async () => {
    const store = await plantedStore();
    const seen: string[] = [];
    for await (const entry of store.consume({ lease: 60_000, maxDeliveries: 1 })) {
      seen.push(entry.name);
      if (entry.name !== GRAVE_NAME) await store.remove(entry.name, 'cur');
      else break; // not acknowledged: released
    }
    expect(seen).toContain(GRAVE_NAME);
    const left = [...(await bytesIn(store, 'new')), ...(await bytesIn(store, 'cur'))];
    expect(left).toContain(hex(E_GRAVE)[0]);
    await store.claim(GRAVE_NAME);
    expect(await store.requeue({ names: [GRAVE_NAME] })).toEqual([GRAVE_NAME]);
    expect(await bytesIn(store, 'new')).toContain(hex(E_GRAVE)[0]);
    expect(await bytesIn(store, 'cur')).not.toContain(hex(E_GRAVE)[0]);
  });

  it('creates, moves, copies and removes them under their real bytes', async () => {
    const store = await tempStore();
    const writer = store.create(ACUTE_NAME);
    await pipeline(async function* () {
      yield 'made here';
    }, writer);
    expect(writer.name).toBe(ACUTE_NAME);
    expect(await bytesIn(store, 'new')).toEqual(hex(E_ACUTE));
    await store.move(ACUTE_NAME, 'new', 'cur');
    await store.copy(ACUTE_NAME, 'cur', 'new');
    expect(await bytesIn(store, 'new')).toEqual(hex(E_ACUTE));
    await store.remove(ACUTE_NAME, 'cur');
    expect(await bytesIn(store, 'cur')).toEqual([]);
    // durability none takes the commit thread for small files, which gets paths as text: the name still lands as bytes
    const quick = new FileStore(store.root, { durability: 'none' });
    await pipeline(async function* () {
      yield 'small';
    }, quick.create(GRAVE_NAME));
    expect(await bytesIn(store, 'new')).toEqual(hex(E_ACUTE, E_GRAVE));
  });

  it('cleans them out of tmp/', async () => {
    const store = await plantedStore('tmp');
    const old = new Date(Date.now() - 48 * 3600_000);
    for (const name of [E_ACUTE, E_GRAVE])
      await utimes(Buffer.concat([Buffer.from(join(store.root, 'tmp', '/')), name]), old, old);
    expect((await store.clean()).sort()).toEqual([GRAVE_NAME, ACUTE_NAME].sort());
    expect(await bytesIn(store, 'tmp')).toEqual(hex(REPLACEMENT_NAME));
  });

  it('exports them under their bytes (pax hdrcharset=BINARY), which GNU tar and Python read back, and imports them back', async () => {
    const store = await plantedStore();
    const archive = join(await tempDir(), 'export.tar');
    await pipeline(store.exportTar('new'), createWriteStream(archive));
    const listedByTar = await completion(spawn('tar', ['--quoting-style=literal', '-tf', archive]));
    expect(listedByTar.stdout.toString('hex')).toBe(
      Buffer.concat((await listedOrder(archive)).map((name) => Buffer.concat([name, Buffer.from('\n')]))).toString(
        'hex',
      ),
    );
    expect(hex(...(await listedOrder(archive)))).toEqual(hex(E_ACUTE, E_GRAVE, REPLACEMENT_NAME));
    const out = await tempDir();
    expect((await completion(spawn('tar', ['-xf', archive, '-C', out]))).code).toBe(0);
    expect(await readFile(Buffer.concat([Buffer.from(`${out}/`), E_ACUTE]), 'utf8')).toBe('acute');
    expect(await readFile(Buffer.concat([Buffer.from(`${out}/`), E_GRAVE]), 'utf8')).toBe('grave');

    const copy = await tempStore();
    const names = await copy.importTar(createReadStream(archive));
    expect(names.sort()).toEqual([GRAVE_NAME, ACUTE_NAME, REPLACEMENT_NAME].sort());
    expect(await bytesIn(copy, 'new')).toEqual(hex(E_ACUTE, E_GRAVE, REPLACEMENT_NAME));
    expect(await readFile(fsPath(copy.path(GRAVE_NAME, 'new')), 'utf8')).toBe('grave');
  });

  it('imports an archive GNU tar made of latin1 names: both files, under their bytes, none renamed or collapsed', async () => {
    const source = await tempDir();
    await writeFile(Buffer.concat([Buffer.from(`${source}/`), E_ACUTE]), 'acute');
    await writeFile(Buffer.concat([Buffer.from(`${source}/`), E_GRAVE]), 'grave');
    for (const format of ['ustar', 'pax', 'gnu']) {
      const archive = join(await tempDir(), `${format}.tar`);
      const made = await bash(`tar --format=${format} -cf '${archive}' -C '${source}' .`, {
        env: { ...process.env, LC_ALL: 'C' },
      });
      expect(made.stderr, format).toBe('');
      const store = await tempStore();
      expect((await store.importTar(createReadStream(archive))).sort(), format).toEqual(
        [GRAVE_NAME, ACUTE_NAME].sort(),
      );
      expect(await bytesIn(store, 'new'), format).toEqual(hex(E_ACUTE, E_GRAVE));
      expect(await readFile(fsPath(store.path(ACUTE_NAME, 'new')), 'utf8')).toBe('acute');
    }
  });
});

/** The names `ls -0` printed: its output cut at each NUL byte. */
function splitAtNul(output: Buffer): Buffer[] {
  const names: Buffer[] = [];
  for (let from = 0, at = output.indexOf(0); at !== -1; from = at + 1, at = output.indexOf(0, from))
    names.push(output.subarray(from, at));
  return names;
}

/** The member names of an archive, as bytes, in archive order (Python reads them). */
async function listedOrder(archive: string): Promise<Buffer[]> {
  const script =
    'import sys, tarfile\nfor m in tarfile.open(sys.argv[1]): sys.stdout.buffer.write(m.name.encode("utf-8", "surrogateescape").hex().encode() + b"\\n")';
  const result = await completion(spawn('python3', ['-c', script, archive]));
  expect(result.stderr).toBe('');
  return result.stdout
    .toString()
    .trim()
    .split('\n')
    .map((line) => Buffer.from(line, 'hex'));
}

describe('the command line with names that are not UTF-8', () => {
  /** Runs `ls` as a child process, or in this process (where coverage sees it). */
  const RUNNERS: Array<[string, (args: string[]) => Promise<Buffer>]> = [
    ['a child process', async (args) => (await cli(args)).stdout],
    ['this process', async (args) => (await runCli(args)).stdoutBytes],
  ];

  it.each(RUNNERS)(
    'ls prints such a byte as \\xHH, -0 prints the bytes, --json the escape \\udcHH (%s)',
    async (_, ls) => {
      const store = await plantedStore();
      const plain = (await ls(['ls', store.root])).toString();
      expect(plain.split('\n').sort()).toEqual(
        ['', 'latin1-\\xe8t\\xe8', 'latin1-\\xe9t\\xe9', REPLACEMENT_NAME].sort(),
      );
      expect(hex(...splitAtNul(await ls(['ls', '-0', store.root])))).toEqual(hex(E_ACUTE, E_GRAVE, REPLACEMENT_NAME));
      expect((await ls(['ls', '--json', store.root])).toString()).toContain('"latin1-\\udce9t\\udce9"');
      expect(escapeName('a\\\udce9')).toBe('a\\\\\\xe9');
    },
  );

  it('takes such a name as an argument by its bytes: ls -0 | xargs -0 claim round-trips', async () => {
    const store = await plantedStore();
    const result = await bash(
      `node '${process.cwd()}/dist/cli/main.js' ls -0 '${store.root}' | xargs -0 -n1 node '${process.cwd()}/dist/cli/main.js' claim '${store.root}'`,
    );
    expect(result.stderr).toBe('');
    expect(await bytesIn(store, 'new')).toEqual([]);
    expect(await bytesIn(store, 'cur')).toEqual(hex(E_ACUTE, E_GRAVE, REPLACEMENT_NAME));
  });

  it('put takes such a NAME and such a --file path by their bytes', async () => {
    const store = await tempStore();
    const source = await tempDir();
    await writeFile(Buffer.concat([Buffer.from(`${source}/file-`), Buffer.of(0xe9)]), 'from a latin1 path');
    const cliPath = join(process.cwd(), 'dist/cli/main.js');
    const result = await bash(
      `node '${cliPath}' put '${store.root}' "$(printf 'put-\\351')" --file "$(printf '${source}/file-\\351')"`,
    );
    expect(result.stderr).toBe('');
    expect(result.stdout.toString()).toBe('put-\\xe9\n');
    expect(await bytesIn(store, 'new')).toEqual(hex(Buffer.from('put-\xe9', 'latin1')));
    expect(await readFile(fsPath(store.path('put-\udce9', 'new')), 'utf8')).toBe('from a latin1 path');
  });

  it('reads the bytes of an argument from /proc/self/cmdline only when it does not decode as UTF-8', () => {
    const cmdline = Buffer.concat([Buffer.from('node\0/x/main.js\0claim\0dir\0'), E_ACUTE, Buffer.of(0)]);
    expect(byteArguments(['claim', 'dir', 'latin1-\uFFFDt\uFFFD'], () => cmdline)).toEqual([
      'claim',
      'dir',
      ACUTE_NAME,
    ]);
    // a real U+FFFD in the argument stays: its bytes decode to it
    const literal = Buffer.from(`node\0/x/main.js\0claim\0${REPLACEMENT_NAME}\0`);
    expect(byteArguments(['claim', REPLACEMENT_NAME], () => literal)).toEqual(['claim', REPLACEMENT_NAME]);
    // a command line that does not end with these arguments is not trusted
    expect(byteArguments(['x\uFFFD'], () => Buffer.from('node\0other\0'))).toEqual(['x\uFFFD']);
    expect(
      byteArguments(['x\uFFFD'], () => {
        throw new Error('no /proc');
      }),
    ).toEqual(['x\uFFFD']);
  });

  it('consume gives CMD the real bytes of the path and name (argument, FILESTORE_PATH, FILESTORE_NAME)', async () => {
    const store = await tempStore();
    await plantBytes(store, 'new', E_ACUTE, 'acute');
    const out = join(await tempDir(), 'seen');
    const script = `printf '%s\\0%s\\0%s\\0' "$1" "$FILESTORE_PATH" "$FILESTORE_NAME" > '${out}'; cat "$1" >> '${out}'`;
    const result = await cli(['consume', store.root, '--', 'sh', '-c', script, 'sh']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const curPath = Buffer.concat([Buffer.from(join(store.root, 'cur', '/')), E_ACUTE]);
    expect((await readFile(out)).toString('hex')).toBe(
      Buffer.concat([
        curPath,
        Buffer.of(0),
        curPath,
        Buffer.of(0),
        E_ACUTE,
        Buffer.of(0),
        Buffer.from('acute'),
      ]).toString('hex'),
    );
  });
});

describe('HTTP with names that are not UTF-8', () => {
  it('reads name= query values as bytes: + is a space, a bare key an empty name, other keys ignored', () => {
    expect(nameParams('/requeue?name=a+b%E9&other=x&name&name=%C3%A9', 'name')).toEqual(['a b\udce9', '', 'é']);
    expect(nameParams('/requeue', 'name')).toEqual([]);
    expect(nameParams(undefined, 'name')).toEqual([]);
    expect(() => nameParams('/requeue?name=%E', 'name')).toThrow(expect.objectContaining({ code: 'ERR_BAD_REQUEST' }));
  });

  it('lists the escaped name, serves and claims it at its percent-encoded bytes, and accepts an upload there', async () => {
    const { store, base } = await start();
    await plantBytes(store, 'new', E_ACUTE, 'acute');
    await writeFile(join(store.root, 'new', REPLACEMENT_NAME), 'replacement');
    const names = (await (await fetch(`${base}/files?area=new`)).json()) as string[];
    expect(names.sort()).toEqual([ACUTE_NAME, REPLACEMENT_NAME].sort());
    const got = await fetch(`${base}/files/new/latin1-%E9t%E9`);
    expect(got.status).toBe(200);
    expect(await got.text()).toBe('acute');
    // the UTF-8 spelling of U+FFFD is the other file
    expect(await (await fetch(`${base}/files/new/${encodeURIComponent(REPLACEMENT_NAME)}`)).text()).toBe('replacement');
    const claimed = await fetch(`${base}/files/latin1-%E9t%E9/claim`, { method: 'POST' });
    expect(claimed.status).toBe(200);
    expect(claimed.headers.get('location')).toBe('/files/cur/latin1-%E9t%E9');
    expect(await claimed.json()).toEqual({ name: ACUTE_NAME });
    const requeued = await fetch(`${base}/requeue?name=latin1-%E9t%E9`, { method: 'POST' });
    expect(await requeued.json()).toEqual({ requeued: [ACUTE_NAME] });
    expect(await store.claim(ACUTE_NAME)).toBe(true);
    const put = await fetch(`${base}/files/up-%E8`, { method: 'PUT', body: 'uploaded' });
    expect(put.status).toBe(201);
    expect(put.headers.get('location')).toBe('/files/new/up-%E8');
    expect(await bytesIn(store, 'new')).toEqual(hex(Buffer.from('up-\xe8', 'latin1'), REPLACEMENT_NAME));
    expect((await fetch(`${base}/files/new/bad-%E`)).status).toBe(400);
  });
});
