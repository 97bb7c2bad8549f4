import { readdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore, type Area } from '../lib/index.js';
import { namesIn, tempStore } from './helpers.js';

const INVALID_NAMES: Array<[string, unknown]> = [
  ['traversal', '../x'],
  ['nested traversal', 'a/../../x'],
  ['slash', 'a/b'],
  ['absolute path', '/etc/passwd'],
  ['empty', ''],
  ['dot', '.'],
  ['dot-dot', '..'],
  ['hidden', '.hidden'],
  ['NUL byte', 'a\0b'],
  ['256 bytes', 'x'.repeat(256)],
  ['256 bytes of multi-byte characters', 'é'.repeat(128)],
  ['lone surrogate', 'a\uD800b'],
  ['number', 42],
  ['null', null],
  ['object', { toString: () => 'x' }],
];

const VALID_NAMES = [
  'a',
  'x'.repeat(255),
  'é'.repeat(127),
  'name with spaces',
  'ünïcödé-名前',
  'a..b',
  'dots.',
  'fullwidth\uFF0Fsolidus',
];

type Call = [string, (store: FileStore, name: never) => unknown];

const CALLS: Call[] = [
  ['create', (s, n) => s.create(n)],
  ['move', (s, n) => s.move(n, 'tmp', 'new')],
  ['claim', (s, n) => s.claim(n)],
  ['copy', (s, n) => s.copy(n, 'new', 'cur')],
  ['remove', (s, n) => s.remove(n, 'new')],
  ['path', (s, n) => s.path(n, 'new')],
];

async function outcome(run: () => unknown): Promise<unknown> {
  try {
    await run();
    return 'ok';
  } catch (err) {
    return err;
  }
}

describe('names', () => {
  for (const [method, call] of CALLS) {
    it(`${method} rejects every invalid name with ERR_INVALID_NAME and touches nothing`, async () => {
      const store = await tempStore();
      const outside = await readdir(dirname(store.root));
      for (const [, name] of INVALID_NAMES) {
        const err = await outcome(() => call(store, name as never));
        expect(err, `name ${JSON.stringify(String(name))}`).toMatchObject({
          code: 'ERR_INVALID_NAME',
          name: 'FileStoreError',
        });
      }
      for (const area of ['tmp', 'new', 'cur'] as const) expect(await namesIn(store, area)).toEqual([]);
      expect(await readdir(dirname(store.root))).toEqual(outside);
    });
  }

  it('create throws synchronously for an invalid name', async () => {
    const store = await tempStore();
    expect(() => store.create('../escape')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_NAME' }));
  });

  it('accepts every valid name', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of VALID_NAMES) {
      const w = store.create(name);
      w.end(name);
      await new Promise((resolve, reject) => w.on('finish', resolve).on('error', reject));
      expect(store.path(name, 'new')).toBe(`${store.root}/new/${name}`);
    }
    expect(await namesIn(store, 'new')).toEqual([...VALID_NAMES].sort());
  });
});

describe('areas', () => {
  const INVALID_AREAS: unknown[] = ['', 'TMP', 'new/', '../new', 'other', 'cur ', null, 1, undefined];
  const AREA_CALLS: Array<[string, (store: FileStore, area: Area) => unknown]> = [
    ['list', (s, a) => s.list(a)],
    ['move from', (s, a) => s.move('x', a, 'new')],
    ['move to', (s, a) => s.move('x', 'new', a)],
    ['copy from', (s, a) => s.copy('x', a, 'new')],
    ['copy to', (s, a) => s.copy('x', 'new', a)],
    ['remove', (s, a) => s.remove('x', a)],
    ['path', (s, a) => s.path('x', a)],
  ];
  for (const [method, call] of AREA_CALLS) {
    it(`${method} rejects every invalid area with ERR_INVALID_AREA`, async () => {
      const store = await tempStore();
      const w = store.create('x');
      w.end('x');
      await new Promise((resolve) => w.on('finish', resolve));
      for (const area of INVALID_AREAS) {
        expect(await outcome(() => call(store, area as Area)), `area ${String(area)}`).toMatchObject({
          code: 'ERR_INVALID_AREA',
        });
      }
      expect(await namesIn(store, 'new')).toEqual(['x']);
    });
  }

  it('list throws synchronously for an invalid area', async () => {
    const store = await tempStore();
    expect(() => store.list('inbox' as Area)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_AREA' }));
  });
});

describe('options', () => {
  it('rejects bad store and call options with ERR_INVALID_OPTION', async () => {
    const store = await tempStore();
    const bad: Array<() => unknown> = [
      () => new FileStore(''),
      () => new FileStore(store.root, { hostname: '' }),
      () => new FileStore(store.root, { fileMode: -1 }),
      () => new FileStore(store.root, { fileMode: 1.5 }),
      () => store.create('x', { commit: 'yes' as never }),
      () => store.create('x', { overwrite: 1 as never }),
      () => store.move('x', 'new', 'cur', { overwrite: 'true' as never }),
    ];
    for (const call of bad) expect(await outcome(call)).toMatchObject({ code: 'ERR_INVALID_OPTION' });
  });
});
