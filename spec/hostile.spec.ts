// Guarantee 6 against hostile input: tables of names and areas, each with its
// documented outcome, tried on every method that takes one. Invalid ones fail
// with ERR_INVALID_NAME / ERR_INVALID_AREA before any file is touched; valid
// oddities (control characters, RTL override, fullwidth solidus, 255 bytes...)
// make a full round trip and land exactly at <area>/<name>. The store sits
// deep inside a sentinel tree that must look the same at the end. Hostile tar
// entries are refused by importTar and by POST /import with ERR_UNSAFE_ENTRY
// after the valid entry before them; hostile HTTP requests (bad names and
// areas, percent-encoded or not, no token, oversize, aborted and slow) get
// their documented status and code from a real server on the same store.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { commitThread } from '../lib/commit-thread.js';
import { FileStore, type ImportTarError } from '../lib/index.js';
import { createServer } from '../lib/server/index.js';
import { raw } from './cli-helpers.js';
import { tree } from './reliability.js';
import { archive, type ArchiveEntry } from './tar-helpers.js';

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

const LONG_LINK = '././@LongLink';

/**
 * Hostile tar entries, each made when its row runs (`base` is the sentinel
 * tree's root). A `././@LongLink` file entry is turned into a GNU long-name
 * header by {@link gnuLongNames}.
 */
const tarEntries: Array<[label: string, entries: () => ArchiveEntry[]]> = [
  ['parent traversal', () => [[{ name: '../x' }, 'x']]],
  ['deep traversal', () => [[{ name: '../../x' }, 'x']]],
  ['traversal onto the sentinel canary', () => [[{ name: '../../sentinel/canary' }, 'x']]],
  ['traversal behind ./', () => [[{ name: './../x' }, 'x']]],
  ['traversal inside a path', () => [[{ name: 'a/../x' }, 'x']]],
  ['absolute /etc/passwd', () => [[{ name: '/etc/passwd' }, 'x']]],
  ['absolute path into the sentinel', () => [[{ name: join(base, 'l1', 'l2', 'sentinel', 'x') }, 'x']]],
  ['subdirectory a/b', () => [[{ name: 'a/b' }, 'x']]],
  ['dot-file', () => [[{ name: '.hidden' }, 'x']]],
  ['NUL in a pax path', () => [[{ name: 'nul', pax: { path: 'a\0b' } }, 'x']]],
  ['256-byte name', () => [[{ name: 'x'.repeat(256) }, 'x']]],
  ['pax path smuggling ../../x', () => [[{ name: 'innocent', pax: { path: '../../x' } }, 'x']]],
  ['pax path smuggling /etc/passwd', () => [[{ name: 'innocent', pax: { path: '/etc/passwd' } }, 'x']]],
  [
    'GNU long name smuggling a traversal',
    () => [
      [{ name: LONG_LINK }, `../../${'x'.repeat(120)}\0`],
      [{ name: 'innocent' }, 'x'],
    ],
  ],
  ['contiguous file named ../x', () => [[{ name: '../x', type: 'contiguous-file' }, 'x']]],
  ['symlink to /etc/passwd', () => [[{ name: 'link', type: 'symlink', linkname: '/etc/passwd' }]]],
  ['symlink to ../outside', () => [[{ name: 'link', type: 'symlink', linkname: '../outside' }]]],
  ['hard link to /etc/passwd', () => [[{ name: 'hard', type: 'link', linkname: '/etc/passwd' }]]],
  ['hard link to a name in the archive', () => [[{ name: 'hard', type: 'link', linkname: 'ok' }]]],
  ['character device', () => [[{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3 }]]],
  ['block device', () => [[{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0 }]]],
  ['FIFO', () => [[{ name: 'fifo', type: 'fifo' }]]],
  ['directory d/', () => [[{ name: 'd/', type: 'directory' }]]],
  ['directory ../d', () => [[{ name: '../d', type: 'directory' }]]],
];

/**
 * Turns each `././@LongLink` file header into a GNU long-name header
 * (typeflag `L`, checksum recomputed): tar-stream's pack cannot write one,
 * its extract reads it as the name of the next entry.
 */
function gnuLongNames(bytes: Buffer): Buffer {
  for (let at = 0; at + 512 <= bytes.length; at += 512) {
    if (bytes.toString('latin1', at, at + LONG_LINK.length + 1) !== `${LONG_LINK}\0`) continue;
    bytes[at + 156] = 0x4c;
    let sum = 8 * 0x20;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += bytes[at + i] as number;
    bytes.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148, 'latin1');
  }
  return bytes;
}

/** One valid entry `ok`, the hostile entries, and a valid entry `after` that is never reached. */
async function hostileArchive(entries: () => ArchiveEntry[]): Promise<Buffer> {
  return gnuLongNames(await archive([[{ name: 'ok' }, 'fine'], ...entries(), [{ name: 'after' }, 'never']]));
}

const figures = { tried: 0, tarEntries: 0, httpRequests: 0 };
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
  try {
    // nothing was ever written outside the store, nor left inside it
    expect(await tree(base)).toEqual(before);
    for (const dir of ['sentinel', 'l1/sentinel', 'l1/l2/sentinel'])
      expect(await readFile(join(base, dir, 'canary'), 'utf8')).toBe('untouched');
  } finally {
    await rm(base, { recursive: true, force: true });
  }
  console.log(
    `hostile: ${figures.tried} hostile calls (${names.length} names, ${areas.length} areas), ` +
      `${figures.tarEntries} tar entries refused by importTar, ${figures.httpRequests} hostile HTTP requests; nothing written outside the store`,
  );
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

/** Expects exactly `kept` (besides `a`) in new/, nothing in tmp/ or elsewhere, then removes `kept`, leaving the tree as it was. */
async function expectOnly(kept: string[]): Promise<void> {
  expect(await readdir(join(store.root, 'tmp'))).toEqual([]);
  expect(await tree(base)).toEqual([...before, ...kept.map((name) => `l1/l2/store/new/${name}`)].sort());
  for (const name of kept) await store.remove(name, 'new');
  await expectUntouched();
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

  it.each(valid)(
    '%s is accepted and lands exactly at <area>/<name> through a full round trip',
    async (_label, value) => {
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
    },
  );

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
  it.each(areas)(
    '%s is refused with ERR_INVALID_AREA in every area position, touching nothing',
    async (_label, area) => {
      for (const [, call, sync] of areaCalls(area)) await expectRefused(call, sync, 'ERR_INVALID_AREA');
      await expectUntouched();
    },
  );
});

describe('hostile tar entries', () => {
  it('the table is large enough', () => {
    expect(tarEntries.length).toBeGreaterThanOrEqual(15);
  });

  it('the GNU long-name row is a real GNU long name: GNU tar lists the traversal', async () => {
    const row = tarEntries.find(([label]) => label.startsWith('GNU long name')) as (typeof tarEntries)[number];
    const listed = spawnSync('tar', ['-tf', '-'], { input: await hostileArchive(row[1]), encoding: 'utf8' });
    expect([listed.status, listed.stdout]).toEqual([0, `ok\n../../${'x'.repeat(120)}\nafter\n`]);
  });

  it.each(tarEntries)(
    '%s is refused with ERR_UNSAFE_ENTRY after the valid entry before it, touching nothing',
    async (_label, entries) => {
      figures.tarEntries++;
      const bytes = await hostileArchive(entries);
      const err = await store.importTar(Readable.from([bytes])).then(
        () => expect.fail('the import succeeded'),
        (e: ImportTarError) => e,
      );
      expect(err).toMatchObject({ code: 'ERR_UNSAFE_ENTRY' });
      expect(err.committed).toEqual(['ok']);
      await expectOnly(['ok']);
    },
  );
});

describe('hostile HTTP requests', () => {
  const TOKEN = 'hostile-token';
  const AUTH = { authorization: `Bearer ${TOKEN}` };
  const MAX_BYTES = 64 * 1024;
  const errors: unknown[] = [];
  let port: number;
  let slowPort: number;
  const servers: Server[] = [];

  beforeAll(async () => {
    const onError = (err: unknown): void => void errors.push(err);
    for (const options of [{}, { headersTimeout: 300 }]) {
      const server = createServer(store, { token: TOKEN, maxBytes: MAX_BYTES, onError, ...options });
      servers.push(server);
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
    }
    [port, slowPort] = servers.map((server) => (server.address() as AddressInfo).port) as [number, number];
  });

  afterAll(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  /** What the server answered: status and JSON error code (`null` when there is none), and `committed` of an import error. */
  interface Answer {
    status: number | null;
    code: string | null;
    committed?: string[];
  }

  /**
   * Sends a request with node:http, which sends the path exactly as given
   * (fetch would resolve `..` and `%2E%2E` segments itself). `chunks` are
   * written one by one without a Content-Length, so the body is chunked.
   */
  function send(
    method: string,
    path: string,
    options: { headers?: Record<string, string>; body?: string | Buffer; chunks?: Buffer[] } = {},
  ): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, method, path, headers: options.headers ?? AUTH, agent: false },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString();
            const json =
              res.headers['content-type']?.startsWith('application/json') && text !== '' ? JSON.parse(text) : undefined;
            const error = json?.error as { code: string; committed?: string[] } | undefined;
            const answer: Answer = { status: res.statusCode ?? null, code: error?.code ?? null };
            if (error?.committed !== undefined) answer.committed = error.committed;
            resolve(answer);
          });
        },
      );
      req.on('error', reject);
      for (const chunk of options.chunks ?? []) req.write(chunk);
      req.end(options.body);
    });
  }

  /** Sends the head and part of a body on a raw socket, waits until `ready`, then cuts the connection: no answer. */
  async function abortMidBody(head: string, part: Buffer, ready: () => Promise<void>): Promise<Answer> {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(head);
    socket.write(part);
    await vi.waitFor(ready, { timeout: 10_000 });
    socket.destroy();
    return { status: null, code: null };
  }

  /** Sends `text` to the server with the short headers timeout and never finishes the headers. */
  async function slowHeaders(text: string): Promise<Answer> {
    const answer = await raw(slowPort, text);
    const status = /^HTTP\/1\.1 (\d{3}) /.exec(answer)?.[1];
    const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
    const code = body.startsWith('{') ? (JSON.parse(body) as { error: { code: string } }).error.code : null;
    return { status: status === undefined ? null : Number(status), code };
  }

  /**
   * `count` uploads under way: each has its file in tmp/ or, a small file at
   * durability none, its first bytes held in memory for the commit thread.
   */
  async function uploading(count: number): Promise<void> {
    const inTmp = (await readdir(join(store.root, 'tmp'))).length;
    const stats = commitThread.stats;
    expect(inTmp + (stats.bufferedBytes > 0 ? stats.bufferingWriters : 0)).toBe(count);
    if (count === 0) expect(stats.bufferingWriters).toBe(0);
  }

  const head = (method: string, path: string, extra: string): string =>
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKEN}\r\n${extra}\r\n`;
  const okArchive = (): Promise<Buffer> => archive([[{ name: 'ok' }, 'fine']]);
  const over = Buffer.alloc(MAX_BYTES + 1, 'o');
  const parts = Array.from({ length: 16 }, () => Buffer.alloc(16 * 1024, 'p'));

  type Row = [label: string, call: () => Promise<Answer>, status: number | null, code: string | null, kept?: string[]];
  const badName = (method: string, path: string, code = 'ERR_INVALID_NAME'): Row => [
    `${method} ${path}`,
    () => send(method, path, method === 'PUT' ? { body: 'x' } : {}),
    400,
    code,
  ];
  const badArea = (method: string, path: string): Row => [
    `${method} ${path}`,
    () => send(method, path),
    400,
    'ERR_INVALID_AREA',
  ];
  const unauthorized = (
    label: string,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: () => Promise<Buffer>,
  ): Row => [
    label,
    async () => send(method, path, { headers, body: body === undefined ? undefined : await body() }),
    401,
    'ERR_UNAUTHORIZED',
  ];

  const rows: Row[] = [
    badName('PUT', '/files/..'),
    badName('PUT', '/files/%2E%2E'),
    badName('PUT', '/files/%2e%2E%2Fescape'),
    badName('PUT', '/files/..%2F..%2Fsentinel%2Fcanary'),
    badName('PUT', '/files/%2Fetc%2Fpasswd'),
    badName('PUT', '/files/a%2Fb'),
    badName('PUT', '/files/.hidden'),
    badName('PUT', '/files/%00'),
    badName('PUT', '/files/nul%00..%2Fx'),
    badName('PUT', '/files/'),
    badName('PUT', `/files/${'x'.repeat(256)}`),
    badName('PUT', '/files/bad%zz', 'ERR_BAD_REQUEST'),
    // bytes that are not UTF-8 are a name's bytes (as a listing spells them), never decoded to '..' or a surrogate
    [
      'PUT /files/%C0%AE%C0%AE (overlong UTF-8 for ..: four bytes of a name)',
      () => send('PUT', '/files/%C0%AE%C0%AE', { body: 'x' }),
      201,
      null,
      ['\udcc0\udcae\udcc0\udcae'],
    ],
    [
      'PUT /files/%ED%A0%80 (the UTF-8 form of a surrogate: three bytes of a name)',
      () => send('PUT', '/files/%ED%A0%80', { body: 'x' }),
      201,
      null,
      ['\udced\udca0\udc80'],
    ],
    [
      'PUT /files/../x (a literal ..: no upload route has three segments)',
      () => send('PUT', '/files/../x', { body: 'x' }),
      405,
      'ERR_METHOD_NOT_ALLOWED',
    ],
    badName('GET', '/files/new/%2E%2E'),
    badName('GET', '/files/new/..%2F..%2F..%2Fsentinel%2Fcanary'),
    badName('GET', '/files/new/.hidden'),
    [
      'GET /files/new/../../../sentinel/canary (literal ..)',
      () => send('GET', '/files/new/../../../sentinel/canary'),
      404,
      'ERR_NOT_FOUND',
    ],
    badName('DELETE', '/files/new/%2E%2E%2F%2E%2E%2Fsentinel%2Fcanary'),
    badName('DELETE', '/files/new/..'),
    badName('DELETE', '/files/cur/%00'),
    badName('POST', '/files/%2E%2E/claim'),
    badName('POST', '/files/..%2Fnew%2Fa/claim'),
    badName('POST', '/files/%00/claim'),
    badName('POST', '/files/.a/claim'),

    badArea('GET', '/files/old/a'),
    badArea('GET', '/files/%2E%2E/a'),
    badArea('GET', '/files/new%2F..%2Fcur/a'),
    badArea('GET', '/files/new%00/a'),
    badArea('DELETE', '/files/__proto__/a'),
    badArea('DELETE', '/files/NEW/a'),
    badArea('DELETE', '/files/..%2Fnew/a'),
    badArea('GET', '/files?area=..'),
    badArea('GET', '/files?area=new%2F..'),
    badArea('GET', '/files?area=constructor'),
    badArea('GET', '/files?area='),
    badArea('GET', '/export/..%2Fnew.tar'),
    badArea('GET', '/export/%2E%2E.tar'),
    badArea('GET', '/export/new%00.tar'),
    [
      'POST /import?area=tmp',
      async () => send('POST', '/import?area=tmp', { body: await okArchive() }),
      400,
      'ERR_INVALID_AREA',
    ],
    [
      'POST /import?area=..%2Fnew',
      async () => send('POST', '/import?area=..%2Fnew', { body: await okArchive() }),
      400,
      'ERR_INVALID_AREA',
    ],

    unauthorized('PUT without a token', 'PUT', '/files/x', {}, async () => Buffer.from('x')),
    unauthorized('PUT with a wrong token', 'PUT', '/files/x', { authorization: 'Bearer wrong' }, async () =>
      Buffer.from('x'),
    ),
    unauthorized('GET with the token and more', 'GET', '/files/new/a', { authorization: `Bearer ${TOKEN}x` }),
    unauthorized('GET with a token prefix', 'GET', '/files/new/a', { authorization: `Bearer ${TOKEN.slice(0, -1)}` }),
    unauthorized('GET with the token as Basic', 'GET', '/files/new/a', { authorization: `Basic ${TOKEN}` }),
    unauthorized('GET with the bare token', 'GET', '/files/new/a', { authorization: TOKEN }),
    unauthorized('GET with the token in the query', 'GET', `/files?area=new&token=${TOKEN}`, {}),
    unauthorized('DELETE without a token', 'DELETE', '/files/new/a', {}),
    unauthorized('claim with a wrong token', 'POST', '/files/a/claim', { authorization: 'Bearer wrong' }),
    unauthorized('export without a token', 'GET', '/export/new.tar', {}),
    unauthorized('import without a token', 'POST', '/import', {}, okArchive),

    [
      'PUT with a Content-Length over maxBytes',
      () => send('PUT', '/files/big', { body: over }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'POST /files with a Content-Length over maxBytes',
      () => send('POST', '/files', { body: over }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'PUT with a chunked body growing over maxBytes',
      () => send('PUT', '/files/big', { chunks: parts }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'POST /files with a chunked body growing over maxBytes',
      () => send('POST', '/files', { chunks: parts }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'POST /import with a Content-Length over maxBytes',
      async () => send('POST', '/import', { body: await archive([[{ name: 'big' }, over]]) }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    [
      'PUT with a Content-Length of 10^18',
      () => send('PUT', '/files/big', { headers: { ...AUTH, 'content-length': `1${'0'.repeat(18)}` } }),
      413,
      'ERR_BODY_TOO_LARGE',
    ],
    // past 2^64: Node's HTTP parser refuses it before the server sees a request; the server's clientError answers in JSON
    [
      'PUT with a Content-Length of 10^20',
      () => send('PUT', '/files/big', { headers: { ...AUTH, 'content-length': `1${'0'.repeat(20)}` } }),
      400,
      'ERR_BAD_REQUEST',
    ],

    [
      'PUT aborted mid-body',
      () =>
        abortMidBody(head('PUT', '/files/half', 'Content-Length: 60000\r\n'), Buffer.alloc(30_000, 'h'), () =>
          uploading(1),
        ),
      null,
      null,
    ],
    [
      'POST /files aborted mid-body',
      () =>
        abortMidBody(head('POST', '/files', 'Content-Length: 60000\r\n'), Buffer.alloc(30_000, 'h'), () =>
          uploading(1),
        ),
      null,
      null,
    ],
    [
      'PUT aborted mid-chunk',
      () =>
        abortMidBody(
          head('PUT', '/files/chunked', 'Transfer-Encoding: chunked\r\n'),
          Buffer.from(`8000\r\n${'c'.repeat(20_000)}`),
          () => uploading(1),
        ),
      null,
      null,
    ],
    [
      'POST /import aborted mid-file, after a committed one',
      async () => {
        const body = await archive([
          [{ name: 'done' }, 'first'],
          [{ name: 'partial' }, Buffer.alloc(60_000, 'p')],
        ]);
        const ready = async (): Promise<void> => {
          expect(await readdir(join(store.root, 'new'))).toContain('done');
          await uploading(1);
        };
        return abortMidBody(
          head('POST', '/import', `Content-Length: ${body.length}\r\n`),
          body.subarray(0, 30_000),
          ready,
        );
      },
      null,
      null,
      ['done'],
    ],

    [
      'slow headers: the request line only',
      () => slowHeaders('PUT /files/slow HTTP/1.1\r\n'),
      408,
      'ERR_REQUEST_TIMEOUT',
    ],
    [
      'slow headers: stalled after Host',
      () => slowHeaders('PUT /files/slow HTTP/1.1\r\nHost: 127.0.0.1\r\n'),
      408,
      'ERR_REQUEST_TIMEOUT',
    ],
    [
      'slow headers: an authorized upload stalled before its body',
      () => slowHeaders(head('PUT', '/files/slow', 'Content-Length: 5\r\n').slice(0, -2)),
      408,
      'ERR_REQUEST_TIMEOUT',
    ],
    ['slow headers: half a request line', () => slowHeaders('PUT /files/sl'), 408, 'ERR_REQUEST_TIMEOUT'],

    ...tarEntries.map(
      ([label, entries]): Row => [
        `POST /import of ${label}`,
        async () => send('POST', '/import', { body: await hostileArchive(entries) }),
        422,
        'ERR_UNSAFE_ENTRY',
        ['ok'],
      ],
    ),
  ];

  it('the table is large enough', () => {
    expect(rows.length).toBeGreaterThanOrEqual(60);
  });

  it.each(rows)(
    '%s: answered with its status and code; nothing written outside the store',
    async (_label, call, status, code, kept = []) => {
      figures.httpRequests++;
      const answer = await call();
      expect([answer.status, answer.code]).toEqual([status, code]);
      if (code === 'ERR_UNSAFE_ENTRY') expect(answer.committed).toEqual(kept);
      if (status === null) await vi.waitFor(() => uploading(0), { timeout: 10_000 });
      await expectOnly(kept);
      expect(errors).toEqual([]);
    },
  );
});
