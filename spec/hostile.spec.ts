// Guarantee 6 against hostile input: tables of names and areas, each with its
// documented outcome, tried on every method that takes one. Invalid ones fail
// with ERR_INVALID_NAME / ERR_INVALID_AREA before any file is touched; valid
// oddities (control characters, RTL override, fullwidth solidus, 255 bytes...)
// make a full round trip and land exactly at <area>/<name>. The store sits
// deep inside a sentinel tree that must look the same at the end. Tables for
// tar entries and HTTP requests join here as those features land.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore } from '../lib/index.js';
import { tree } from './reliability.js';

type Outcome = 'invalid' | 'valid';

const names: Array<[label: string, name: unknown, outcome: Outcome]> = [
  ['empty', '', 'invalid'],
  ['dot', '.', 'invalid'],
  ['dot-dot', '..', 'invalid'],
  ['parent traversal', '../escape', 'invalid'],
  ['deep traversal', '../../../../etc/passwd', 'invalid'],
  ['traversal through an area', 'tmp/../../escape', 'invalid'],
  ['absolute path', '/etc/passwd', 'invalid'],
  ['absolute tmp', '/tmp/escape', 'invalid'],
  ['root', '/', 'invalid'],
  ['double slash', '//', 'invalid'],
  ['subdirectory', 'a/b', 'invalid'],
  ['trailing slash', 'a/', 'invalid'],
  ['hidden file', '.hidden', 'invalid'],
  ['dot-dot prefix', '..hidden', 'invalid'],
  ['dot backslash', '.\\..\\escape', 'invalid'],
  ['NUL alone', '\0', 'invalid'],
  ['embedded NUL', 'nul\0byte', 'invalid'],
  ['NUL then traversal', 'a\0/../../escape', 'invalid'],
  ['256 ASCII bytes', 'x'.repeat(256), 'invalid'],
  ['256 bytes of 2-byte chars', '\u00e9'.repeat(128), 'invalid'],
  ['256 bytes of emoji', '\u{1F600}'.repeat(64), 'invalid'],
  ['very long', 'y'.repeat(100_000), 'invalid'],
  ['lone high surrogate', '\uD800', 'invalid'],
  ['lone low surrogate inside', 'a\uDC00b', 'invalid'],
  ['high surrogate at the end', 'abc\uDBFF', 'invalid'],
  ['null', null, 'invalid'],
  ['number', 42, 'invalid'],
  ['NaN', Number.NaN, 'invalid'],
  ['bigint', 1n, 'invalid'],
  ['boolean', true, 'invalid'],
  ['object', {}, 'invalid'],
  ['object with toString', { toString: () => 'a' }, 'invalid'],
  ['array', ['a'], 'invalid'],
  ['String object', new String('a'), 'invalid'],
  ['Buffer', Buffer.from('a'), 'invalid'],
  ['symbol', Symbol('a'), 'invalid'],
  ['function', () => 'a', 'invalid'],
  // valid, however odd: the API only forbids what is listed above
  ['dots inside', 'a..b', 'valid'],
  ['trailing dot', 'a.', 'valid'],
  ['backslash traversal', 'x\\..\\..\\windows', 'valid'],
  ['drive letter', 'C:\\Windows', 'valid'],
  ['255 ASCII bytes', 'x'.repeat(255), 'valid'],
  ['255 bytes of 2-byte chars', `${'\u00e9'.repeat(127)}x`, 'valid'],
  ['255 bytes with emoji', `${'\u{1F600}'.repeat(63)}xxx`, 'valid'],
  ['surrogate pair', '\uD83D\uDE00', 'valid'],
  ['RTL override', '\u202Egnp.exe', 'valid'],
  ['fullwidth solidus', 'full\uFF0Fwidth', 'valid'],
  ['division slash', 'division\u2215slash', 'valid'],
  ['fraction slash', 'fraction\u2044slash', 'valid'],
  ['fullwidth full stops', '\uFF0E\uFF0E', 'valid'],
  ['newline', 'line\nbreak', 'valid'],
  ['tab and CR', 'tab\tand\rcr', 'valid'],
  ['escape sequence', '\u001b[31mred', 'valid'],
  ['DEL', '\u007f', 'valid'],
  ['line separator', 'a\u2028b', 'valid'],
  ['zero-width space', '\u200B', 'valid'],
  ['byte order mark', '\uFEFFbom', 'valid'],
  ['space', ' ', 'valid'],
  ['option-like', '-rf', 'valid'],
  ['tilde', '~', 'valid'],
  ['shell variable', '$HOME', 'valid'],
  ['percent-encoded traversal', '%2e%2e%2f', 'valid'],
  ['glob characters', '*?[]<>|"', 'valid'],
  ['colon', 'a:b', 'valid'],
  ['NFC e-acute', '\u00e9', 'valid'],
  ['NFD e-acute', 'e\u0301', 'valid'],
];

const areas: Array<[label: string, area: unknown]> = [
  ['empty', ''],
  ['upper case', 'TMP'],
  ['capitalised', 'New'],
  ['leading space', ' new'],
  ['trailing space', 'new '],
  ['trailing newline', 'tmp\n'],
  ['trailing slash', 'new/'],
  ['absolute', '/new'],
  ['traversal', '../new'],
  ['traversal inside', 'new/../cur'],
  ['dot', '.'],
  ['dot-dot', '..'],
  ['NUL', 'new\0'],
  ['prototype key', '__proto__'],
  ['constructor', 'constructor'],
  ['method name', 'toString'],
  ['null', null],
  ['undefined', undefined],
  ['number', 0],
  ['object', {}],
  ['array', ['new']],
  ['String object', new String('new')],
  ['symbol', Symbol('new')],
];

const figures = { tried: 0 };
let base: string;
let store: FileStore;
let before: string[];

beforeAll(async () => {
  // The store sits three levels down; sentinels sit at every level around it.
  base = await mkdtemp(join(tmpdir(), 'filestore-hostile-'));
  for (const dir of ['sentinel', 'l1/sentinel', 'l1/l2/sentinel']) {
    await mkdir(join(base, dir), { recursive: true });
    await writeFile(join(base, dir, 'canary'), 'untouched');
  }
  store = new FileStore(join(base, 'l1', 'l2', 'store'), { durability: 'none' });
  await store.prepare();
  await writeFile(join(store.root, 'new', 'a'), 'a');
  before = await tree(base);
});

afterAll(async () => {
  // nothing was ever written outside the store, nor left inside it
  expect(await tree(base)).toEqual(before);
  for (const dir of ['sentinel', 'l1/sentinel', 'l1/l2/sentinel']) expect(await readFile(join(base, dir, 'canary'), 'utf8')).toBe('untouched');
  await rm(base, { recursive: true, force: true });
  console.log(`hostile: ${figures.tried} hostile calls (${names.length} names, ${areas.length} areas), nothing written outside the store`);
});

/** Calls of every method taking a name, with `name` in it. */
function nameCalls(name: unknown): Array<[method: string, call: () => unknown, sync: boolean]> {
  const n = name as string;
  return [
    ['create', () => store.create(n), true],
    ['create commit: false', () => store.create(n, { commit: false }), true],
    ['path', () => store.path(n, 'new'), true],
    ['move', () => store.move(n, 'new', 'cur'), false],
    ['claim', () => store.claim(n), false],
    ['copy', () => store.copy(n, 'new', 'cur'), false],
    ['remove', () => store.remove(n, 'new'), false],
  ];
}

/** Calls of every method taking an area, with `area` in each area position. */
function areaCalls(area: unknown): Array<[method: string, call: () => unknown, sync: boolean]> {
  const a = area as 'new';
  return [
    ['list', () => store.list(a), true],
    ['path', () => store.path('a', a), true],
    ['move from', () => store.move('a', a, 'cur'), false],
    ['move to', () => store.move('a', 'new', a), false],
    ['copy from', () => store.copy('a', a, 'cur'), false],
    ['copy to', () => store.copy('a', 'new', a), false],
    ['remove', () => store.remove('a', a), false],
  ];
}

/** Expects `call` to fail with `code`: synchronously for `sync` methods, as a rejection for async ones. */
async function expectRefused(call: () => unknown, sync: boolean, code: string): Promise<void> {
  figures.tried++;
  if (sync) {
    expect(call).toThrow(expect.objectContaining({ code }));
    return;
  }
  let result: unknown;
  expect(() => (result = call())).not.toThrow();
  await expect(result).rejects.toMatchObject({ code });
}

async function expectUntouched(): Promise<void> {
  expect(await tree(base)).toEqual(before);
}

describe('hostile names', () => {
  const invalid = names.filter(([, , outcome]) => outcome === 'invalid');
  const valid = names.filter(([, , outcome]) => outcome === 'valid');

  it('the tables are large enough', () => {
    expect(names.length).toBeGreaterThanOrEqual(40);
    expect(invalid.length).toBeGreaterThanOrEqual(30);
  });

  it.each(invalid)('%s is refused with ERR_INVALID_NAME by every method, touching nothing', async (_label, name) => {
    for (const [, call, sync] of nameCalls(name)) await expectRefused(call, sync, 'ERR_INVALID_NAME');
    await expectUntouched();
  });

  it('undefined is a generated name for create, and ERR_INVALID_NAME everywhere else', async () => {
    for (const [method, call, sync] of nameCalls(undefined)) {
      if (method.startsWith('create')) continue;
      await expectRefused(call, sync, 'ERR_INVALID_NAME');
    }
    await expectUntouched();
  });

  it.each(valid)('%s is accepted and lands exactly at <area>/<name> through a full round trip', async (_label, value) => {
    const name = value as string;
    figures.tried += 7;
    const writer = store.create(name);
    writer.end(name);
    await finished(writer);
    expect(writer.path).toBe(join(store.root, 'new', name));
    expect(store.path(name, 'new')).toBe(join(store.root, 'new', name));
    expect((await readdir(join(store.root, 'new'))).sort()).toEqual(['a', name].sort());
    const listed: string[] = [];
    for await (const entry of store.list('new')) listed.push(entry.name);
    expect(listed).toContain(name);

    expect(await store.claim(name)).toBe(true);
    await store.copy(name, 'cur', 'tmp');
    await store.move(name, 'tmp', 'new');
    expect(await readFile(join(store.root, 'new', name), 'utf8')).toBe(name);
    expect(await readFile(join(store.root, 'cur', name), 'utf8')).toBe(name);
    await store.remove(name, 'new');
    await store.remove(name, 'cur');

    const parked = store.create(name, { commit: false });
    parked.end('x');
    await finished(parked);
    expect(await readdir(join(store.root, 'tmp'))).toEqual([name]);
    await store.remove(name, 'tmp');
    await expectUntouched();
  });

  it('NFC and NFD spellings of one character are two different files', async () => {
    for (const name of ['\u00e9', 'e\u0301']) {
      const writer = store.create(name);
      writer.end(name);
      await finished(writer);
    }
    expect((await readdir(join(store.root, 'new'))).sort()).toEqual(['a', 'e\u0301', '\u00e9'].sort());
    await store.remove('\u00e9', 'new');
    await store.remove('e\u0301', 'new');
    await expectUntouched();
  });
});

describe('hostile areas', () => {
  it.each(areas)('%s is refused with ERR_INVALID_AREA in every area position, touching nothing', async (_label, area) => {
    for (const [, call, sync] of areaCalls(area)) await expectRefused(call, sync, 'ERR_INVALID_AREA');
    await expectUntouched();
  });
});
