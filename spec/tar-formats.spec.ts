// The tar formats other tools write, imported as GNU tar and Python read them;
// the plain-ustar fields of exports, for readers that ignore pax. Archives are
// made by GNU tar, bsdtar (libarchive) and Python's tarfile, and read back
// with all three and tar-stream.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import tarStream from 'tar-stream';
import { describe, expect, it } from 'vitest';
import type { FileStore, ImportTarError } from '../lib/index.js';
import { namesIn, put, tempDir, tempStore } from './helpers.js';
import { editPax, paxRecords, type RawHeader, rawHeaders, replaceBlock, withOctal } from './tar-blocks.js';
import { TarCounter } from '../lib/tar/counter.js';
import { collect } from './tar-helpers.js';

const run = promisify(execFile);
const MAX_BUFFER = 64 * 1024 * 1024;

async function tool(command: string, args: string[], cwd?: string): Promise<string> {
  const { stdout } = await run(command, args, { maxBuffer: MAX_BUFFER, ...(cwd === undefined ? {} : { cwd }) });
  return stdout;
}

/** Runs a Python program on `args`; resolves to what it printed as JSON. */
async function python<T>(program: string, args: string[]): Promise<T> {
  return JSON.parse(await tool('python3', ['-c', program, ...args])) as T;
}

interface PyMember {
  name: string;
  type: string;
  size: number;
  mtime: number;
  mode: number;
  sparse: Array<[number, number]> | null;
  sha256: string | null;
}

/** Every member of an archive as Python's tarfile reads it, a regular file's bytes as their SHA-256. */
const PY_MEMBERS = `
import hashlib, json, sys, tarfile
out = []
with tarfile.open(sys.argv[1]) as archive:
    for m in archive:
        data = archive.extractfile(m).read() if m.isreg() else None
        out.append({'name': m.name, 'type': m.type.decode('latin1'), 'size': m.size, 'mtime': m.mtime,
                    'mode': m.mode, 'sparse': m.sparse, 'sha256': data and hashlib.sha256(data).hexdigest()})
print(json.dumps(out))
`;

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

async function importFile(store: FileStore, path: string): Promise<string[]> {
  return store.importTar(createReadStream(path));
}

async function importBuffer(store: FileStore, archive: Buffer): Promise<string[]> {
  return store.importTar(Readable.from([archive]));
}

async function rejection(promise: Promise<unknown>): Promise<ImportTarError> {
  return promise.then(
    () => expect.fail('expected a rejection'),
    (err: ImportTarError) => err,
  );
}

/** The files GNU tar extracts from `archive`, by name, with their bytes (`tar -x` into a fresh directory). */
async function gnuExtracted(archive: string, args: string[] = []): Promise<Map<string, Buffer>> {
  const out = await tempDir();
  await tool('tar', ['-x', ...args, '-f', archive, '-C', out]);
  const files = new Map<string, Buffer>();
  for (const name of (await readdir(out)).sort()) files.set(name, await readFile(join(out, name)));
  return files;
}

/** The regular files of an area, by name, with their bytes. */
async function areaFiles(store: FileStore, area: 'new' | 'cur' = 'new'): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const name of await namesIn(store, area)) files.set(name, await readFile(join(store.root, area, name)));
  return files;
}

describe('sparse files', () => {
  /** A file of `size` bytes that holds `pieces` (non-zero bytes) at their offsets, holes elsewhere. */
  async function sparseFile(path: string, size: number, pieces: Array<[number, number, number]>): Promise<void> {
    const file = await open(path, 'w');
    try {
      await file.truncate(size);
      for (const [offset, length, fill] of pieces) await file.write(Buffer.alloc(length, fill), 0, length, offset);
    } finally {
      await file.close();
    }
  }

  const MiB = 1024 * 1024;
  /** name -> size and data pieces [offset, length, byte]; the rest of each file is holes. */
  const FILES: Record<string, [number, Array<[number, number, number]>]> = {
    // several data segments, the first at offset 0
    segments: [
      MiB,
      [
        [0, 5000, 0x41],
        [200_000, 100, 0x42],
        [499_700, 1000, 0x43],
        [900_000, 4096, 0x44],
      ],
    ],
    'hole-at-start': [300_000, [[250_000, 10, 0x45]]],
    'hole-at-end': [300_000, [[0, 10, 0x46]]],
    'holes-around': [300_000, [[150_000, 10, 0x47]]],
    'all-hole': [200_000, []],
    // small enough (64 KiB at most) to be committed from memory at durability none, its holes as zeros
    small: [40_000, [[20_000, 3, 0x4a]]],
    // data from 700 to 1900 crosses two block boundaries; the last segment ends mid-block at the real size
    crossing: [
      300_001,
      [
        [700, 1200, 0x48],
        [299_000, 1001, 0x49],
      ],
    ],
    // 40 segments: more than an old GNU header holds (4) plus one extension block (21)
    'many-segments': [
      4 * MiB,
      Array.from({ length: 40 }, (_, i): [number, number, number] => [i * 65_536 + 7, 300, 65 + (i % 26)]),
    ],
  };
  const NAMES = Object.keys(FILES);

  async function sources(): Promise<string> {
    const dir = await tempDir();
    for (const [name, [size, pieces]] of Object.entries(FILES)) await sparseFile(join(dir, name), size, pieces);
    return dir;
  }

  const WRITERS: Array<[string, string, string[]]> = [
    ['GNU tar, pax sparse 0.0', 'tar', ['--format=pax', '-S', '--sparse-version=0.0']],
    ['GNU tar, pax sparse 0.1', 'tar', ['--format=pax', '-S', '--sparse-version=0.1']],
    ['GNU tar, pax sparse 1.0', 'tar', ['--format=pax', '-S', '--sparse-version=1.0']],
    ['GNU tar, old GNU sparse headers', 'tar', ['--format=gnu', '-S']],
    // holes found by reading for zero blocks: segments on 512-byte boundaries rather than the file system's 4 KiB
    ['GNU tar, pax sparse 1.0, holes read as zero blocks', 'tar', ['--format=pax', '-S', '--hole-detection=raw']],
    [
      'GNU tar, old GNU sparse headers, holes read as zero blocks',
      'tar',
      ['--format=gnu', '-S', '--hole-detection=raw'],
    ],
    // libarchive writes pax sparse 1.0 for any file with holes
    ['bsdtar, pax', 'bsdtar', ['--format=pax']],
  ];

  it.each(WRITERS)('imports them byte for byte from %s', async (_, command, flags) => {
    const src = await sources();
    const archive = join(await tempDir(), 'sparse.tar');
    await tool(command, ['-C', src, ...flags, '-cf', archive, ...NAMES]);
    // the archive really is sparse: Python sees a map on every member, and the many segments of one
    const members = await python<PyMember[]>(PY_MEMBERS, [archive]);
    expect(members.map((m) => m.name)).toEqual(NAMES);
    for (const member of members) expect(member.sparse, member.name).not.toBeNull();
    const many = members.find((m) => m.name === 'many-segments');
    expect(many?.sparse?.filter(([, size]) => size > 0).length).toBeGreaterThanOrEqual(26);
    if (flags.includes('--format=gnu')) {
      const headers = rawHeaders(await readFile(archive));
      expect(headers.map((h) => h.type)).toEqual(NAMES.map(() => 'S'));
      // two extension blocks after the header of the 40-segment file
      const header = headers.find((h) => h.name.toString() === 'many-segments');
      expect(header && (header.bodyAt - header.at) / 512).toBeGreaterThanOrEqual(3);
    }
    expect((await stat(archive)).size).toBeLessThan(2 * MiB);

    const store = await tempStore({ durability: 'none' });
    expect(await importFile(store, archive)).toEqual(NAMES);
    for (const name of NAMES) {
      const imported = await readFile(join(store.root, 'new', name));
      expect(imported.length, name).toBe(FILES[name]?.[0]);
      expect(imported.equals(await readFile(join(src, name))), name).toBe(true);
    }
  });

  it.each(['full', 'none'] as const)(
    'leaves the holes as holes on disk at durability %s: a file takes what GNU tar extracting it takes',
    async (durability) => {
      const src = await sources();
      const archive = join(await tempDir(), 'sparse.tar');
      await tool('tar', ['-C', src, '--format=pax', '-S', '-cf', archive, ...NAMES]);
      const extracted = await tempDir();
      await tool('tar', ['-C', extracted, '-xf', archive]);
      const store = await tempStore({ durability });
      expect(await importFile(store, archive)).toEqual(NAMES);
      for (const name of NAMES) {
        const [size] = FILES[name] as [number, unknown];
        const ours = await stat(join(store.root, 'new', name));
        const gnu = await stat(join(extracted, name));
        expect(ours.size, name).toBe(size);
        // a file of at most 64 KiB at durability none is written from memory, zeros and all
        if (durability === 'none' && size <= 64 * 1024) continue;
        expect(ours.blocks, name).toBeLessThanOrEqual(gnu.blocks + 8);
        expect(ours.blocks * 512, name).toBeLessThan(size / 4);
      }
    },
  );

  describe('an inconsistent sparse map is refused, nothing of that member committed', () => {
    /** An archive of `before`, the sparse file `segments` and `after`, written by `flags`, and its headers. */
    async function made(flags: string[]): Promise<{ archive: Buffer; headers: RawHeader[]; member: RawHeader }> {
      const src = await sources();
      await writeFile(join(src, 'before'), 'committed before');
      await writeFile(join(src, 'after'), 'never reached');
      const path = join(await tempDir(), 'sparse.tar');
      await tool('tar', ['-C', src, ...flags, '-cf', path, 'before', 'segments', 'after']);
      const archive = await readFile(path);
      const headers = rawHeaders(archive);
      // the member's own header: the one after the pax header of the second member, or the old GNU one
      const member = headers.filter((h) => h.type !== 'x')[1] as RawHeader;
      return { archive, headers, member };
    }

    /** The pax extended header of the sparse member. */
    function paxOf(headers: RawHeader[]): RawHeader {
      const paxHeaders = headers.filter((h) => h.type === 'x');
      expect(paxHeaders.length).toBe(3);
      return paxHeaders[1] as RawHeader;
    }

    async function expectRefused(archive: Buffer): Promise<ImportTarError> {
      const store = await tempStore({ durability: 'none' });
      const err = await rejection(importBuffer(store, archive));
      expect(['ERR_CORRUPT_ARCHIVE', 'ERR_UNSAFE_ENTRY']).toContain(err.code);
      expect(err.message).not.toMatch(/unknown|not a valid store name/);
      expect(err.committed).toEqual(['before']);
      expect(await namesIn(store, 'new')).toEqual(['before']);
      expect(await namesIn(store, 'tmp')).toEqual([]);
      return err;
    }

    const drop = (records: Array<[string, string]>, key: string): Array<[string, string]> =>
      records.filter(([k]) => k !== key);
    const set = (records: Array<[string, string]>, key: string, value: string): Array<[string, string]> =>
      records.map(([k, v]) => [k, k === key ? value : v]);

    it('pax 0.0: a segment beyond the real size', async () => {
      const { archive, headers } = await made(['--format=pax', '-S', '--sparse-version=0.0']);
      await expectRefused(editPax(archive, paxOf(headers), (r) => set(r, 'GNU.sparse.size', '500000')));
    });

    it('pax 0.0: a truncated map (fewer offset/size pairs than GNU.sparse.numblocks says)', async () => {
      const { archive, headers } = await made(['--format=pax', '-S', '--sparse-version=0.0']);
      const pax = paxOf(headers);
      const records = paxRecords(archive.subarray(pax.bodyAt, pax.bodyAt + pax.size));
      // drop the last pair: the map then ends at the third data segment, its fourth one would be lost
      const lastOffset = records.map(([k]) => k).lastIndexOf('GNU.sparse.offset');
      const truncated = [...records.slice(0, lastOffset - 2), ...records.slice(lastOffset)];
      await expectRefused(editPax(archive, pax, () => truncated));
    });

    it('pax 0.1: a map with an odd count of numbers, or fewer pairs than GNU.sparse.numblocks says', async () => {
      const { archive, headers } = await made(['--format=pax', '-S', '--sparse-version=0.1']);
      const pax = paxOf(headers);
      const map = paxRecords(archive.subarray(pax.bodyAt, pax.bodyAt + pax.size)).find(
        ([k]) => k === 'GNU.sparse.map',
      )?.[1] as string;
      const numbers = map.split(',');
      await expectRefused(editPax(archive, pax, (r) => set(r, 'GNU.sparse.map', numbers.slice(0, -1).join(','))));
      await expectRefused(editPax(archive, pax, (r) => set(r, 'GNU.sparse.map', numbers.slice(0, -2).join(','))));
    });

    it('pax 1.0: a real size below the end of the map, or no real size', async () => {
      const { archive, headers } = await made(['--format=pax', '-S', '--sparse-version=1.0']);
      const pax = paxOf(headers);
      await expectRefused(editPax(archive, pax, (r) => set(r, 'GNU.sparse.realsize', '500000')));
      await expectRefused(editPax(archive, pax, (r) => drop(r, 'GNU.sparse.realsize')));
    });

    it('pax 1.0: a map in the body that promises more segments than it holds', async () => {
      const { archive, member } = await made(['--format=pax', '-S', '--sparse-version=1.0']);
      expect(archive.toString('latin1', member.bodyAt, member.bodyAt + 2)).toBe('5\n');
      const patched = Buffer.from(archive);
      patched.write('9', member.bodyAt, 'latin1');
      await expectRefused(patched);
    });

    it('old GNU: a real size below the end of the map', async () => {
      const { archive, member } = await made(['--format=gnu', '-S']);
      expect(member.type).toBe('S');
      await expectRefused(replaceBlock(archive, member.at, withOctal(member.block, 483, 12, 500_000)));
    });

    it('old GNU: a map whose extension block is damaged or cut off', async () => {
      const src = await sources();
      await writeFile(join(src, 'before'), 'committed before');
      const path = join(await tempDir(), 'many.tar');
      await tool('tar', ['-C', src, '--format=gnu', '-S', '-cf', path, 'before', 'many-segments']);
      const archive = await readFile(path);
      const member = rawHeaders(archive)[1] as RawHeader;
      expect(member.bodyAt - member.at).toBe(3 * 512);
      const damaged = Buffer.from(archive);
      damaged.write('9', member.at + 512, 'latin1'); // not an octal digit
      await expectRefused(damaged);
      // the archive ends inside the second extension block
      await expectRefused(archive.subarray(0, member.at + 512 + 300));
    });

    it('the archive ends inside the stored data of a sparse member', async () => {
      for (const flags of [
        ['--format=pax', '-S'],
        ['--format=gnu', '-S'],
      ]) {
        const { archive, member } = await made(flags);
        const err = await expectRefused(archive.subarray(0, member.bodyAt + 512 * 3 + 100));
        expect(err.code).toBe('ERR_CORRUPT_ARCHIVE');
      }
    });
  });
});

describe('v7 archives and volume labels', () => {
  async function files(): Promise<string> {
    const dir = await tempDir();
    await writeFile(join(dir, 'a'), 'hello\n');
    await writeFile(join(dir, 'b'), Buffer.alloc(700, 0x62));
    return dir;
  }

  it.each([
    ['GNU tar --format=v7', 'tar', ['--format=v7']],
    ['bsdtar --format=v7', 'bsdtar', ['--format=v7']],
    ['GNU tar -V (old GNU), a volume label first', 'tar', ['--format=gnu', '-V', 'backup of 2 files']],
    ['GNU tar -V (pax), a volume label first', 'tar', ['--format=pax', '-V', 'backup of 2 files']],
  ])('imports %s with the names and bytes GNU tar extracts', async (_, command, flags) => {
    const src = await files();
    const path = join(await tempDir(), 'archive.tar');
    await tool(command, ['-C', src, ...flags, '-cf', path, 'a', 'b']);
    const headers = rawHeaders(await readFile(path));
    if (flags.includes('--format=v7')) for (const h of headers) expect(h.magic).toBe('\0\0\0\0\0\0');
    // old GNU: a header of type V; pax: a GNU.volume.label record in a global header
    if (flags.includes('-V')) expect(headers[0]?.type).toBe(flags.includes('--format=pax') ? 'g' : 'V');
    const extracted = await gnuExtracted(path);
    expect([...extracted.keys()]).toEqual(['a', 'b']);
    // Python lists the label of an old GNU archive as a member of type V, and reads the same two files
    const regular = (await python<PyMember[]>(PY_MEMBERS, [path])).filter((m) => m.type !== 'V');
    expect(regular.map((m) => [m.name, m.sha256])).toEqual([...extracted].map(([n, d]) => [n, sha256(d)]));

    const store = await tempStore({ durability: 'none' });
    expect(await importFile(store, path)).toEqual(['a', 'b']);
    expect(await areaFiles(store)).toEqual(extracted);
  });

  it('skips the ./ root directory of a v7 archive, and refuses its subdirectory', async () => {
    const src = await files();
    await mkdir(join(src, 'sub'));
    const path = join(await tempDir(), 'v7.tar');
    await tool('tar', ['-C', src, '--format=v7', '-cf', path, '.']);
    const names = rawHeaders(await readFile(path)).map((h) => h.name.toString());
    expect(names).toContain('./');
    expect(names).toContain('./sub/');
    const store = await tempStore({ durability: 'none' });
    const err = await rejection(importFile(store, path));
    expect(err).toMatchObject({ code: 'ERR_UNSAFE_ENTRY' });
    expect(err.message).toMatch(/directory/);
    const before = names.slice(1, names.indexOf('./sub/')).map((n) => n.slice(2));
    expect(err.committed).toEqual(before);

    await tool('tar', ['-C', src, '--format=v7', '-cf', path, '--exclude=./sub', '.']);
    const again = await tempStore({ durability: 'none' });
    expect((await importFile(again, path)).sort()).toEqual(['a', 'b']);
  });
});

describe('the end of the archive', () => {
  /** GNU tar's archive of two files, and where its end-of-archive blocks start. */
  async function twoFiles(): Promise<{ archive: Buffer; end: number }> {
    const dir = await tempDir();
    await writeFile(join(dir, 'a'), 'first');
    await writeFile(join(dir, 'b'), Buffer.alloc(600, 0x62));
    const path = join(dir, 'two.tar');
    await tool('tar', ['-C', dir, '--format=ustar', '-cf', path, 'a', 'b']);
    const archive = await readFile(path);
    const last = rawHeaders(archive).at(-1) as RawHeader;
    return { archive, end: last.bodyAt + Math.ceil(last.size / 512) * 512 };
  }

  /** The names GNU tar, Python and bsdtar list for an archive, each. */
  async function listed(archive: Buffer): Promise<Record<string, string[]>> {
    const path = join(await tempDir(), 'archive.tar');
    await writeFile(path, archive);
    const lines = (text: string): string[] => text.split('\n').filter((line) => line !== '');
    return {
      gnu: lines(await tool('tar', ['-tf', path])),
      python: (await python<PyMember[]>(PY_MEMBERS, [path])).map((m) => m.name),
      bsdtar: lines(await tool('bsdtar', ['-tf', path])),
    };
  }

  it('ignores bytes after the two zero blocks, as GNU tar, Python and bsdtar do', async () => {
    const { archive } = await twoFiles();
    for (const trailer of [Buffer.from('not a tar header\n'), Buffer.alloc(1024 * 1024 + 7, 0xa5)]) {
      const withTrailer = Buffer.concat([archive, trailer]);
      expect(await listed(withTrailer)).toEqual({ gnu: ['a', 'b'], python: ['a', 'b'], bsdtar: ['a', 'b'] });
      const store = await tempStore({ durability: 'none' });
      expect(await importBuffer(store, withTrailer)).toEqual(['a', 'b']);
      expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
    }
  });

  it('imports only the first of two concatenated archives, as GNU tar (without -i), Python and bsdtar read it', async () => {
    const { archive } = await twoFiles();
    const dir = await tempDir();
    await writeFile(join(dir, 'c'), 'second archive');
    const second = join(dir, 'second.tar');
    await tool('tar', ['-C', dir, '-cf', second, 'c']);
    const both = Buffer.concat([archive, await readFile(second)]);
    expect(await listed(both)).toEqual({ gnu: ['a', 'b'], python: ['a', 'b'], bsdtar: ['a', 'b'] });
    const store = await tempStore({ durability: 'none' });
    expect(await importBuffer(store, both)).toEqual(['a', 'b']);
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
  });

  it('takes a single zero block then the end of the input as the end, as GNU tar (with a warning) and Python do', async () => {
    const { archive, end } = await twoFiles();
    const lone = archive.subarray(0, end + 512);
    const path = join(await tempDir(), 'lone.tar');
    await writeFile(path, lone);
    const { stderr } = await run('tar', ['-tf', path]);
    expect(stderr).toMatch(/lone zero block/i);
    expect((await python<PyMember[]>(PY_MEMBERS, [path])).map((m) => m.name)).toEqual(['a', 'b']);
    const store = await tempStore({ durability: 'none' });
    expect(await importBuffer(store, lone)).toEqual(['a', 'b']);
  });

  it('stops at a lone zero block followed by more members, as GNU tar, Python and bsdtar do', async () => {
    const { archive, end } = await twoFiles();
    const dir = await tempDir();
    await writeFile(join(dir, 'c'), 'after the zero block');
    const more = join(dir, 'more.tar');
    await tool('tar', ['-C', dir, '-cf', more, 'c']);
    const lone = Buffer.concat([archive.subarray(0, end + 512), await readFile(more)]);
    expect(await listed(lone)).toEqual({ gnu: ['a', 'b'], python: ['a', 'b'], bsdtar: ['a', 'b'] });
    const store = await tempStore({ durability: 'none' });
    expect(await importBuffer(store, lone)).toEqual(['a', 'b']);
  });
});

describe('compressed input', () => {
  it.each([
    ['gzip', '-z'],
    ['bzip2', '-j'],
    ['xz', '-J'],
    ['zstd', '--zstd'],
    ['lz4', '--lz4'],
  ])('is refused with ERR_CORRUPT_ARCHIVE, the message naming %s', async (format, flag) => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a'), Buffer.alloc(5000, 0x61));
    const path = join(dir, 'a.tar.compressed');
    await tool('bsdtar', ['-C', dir, flag, '-cf', path, 'a']);
    const store = await tempStore({ durability: 'none' });
    const err = await rejection(importFile(store, path));
    expect(err).toMatchObject({ code: 'ERR_CORRUPT_ARCHIVE', committed: [] });
    expect(err.message).toContain(`${format}-compressed`);
    expect(await namesIn(store, 'tmp')).toEqual([]);
  });

  it('still reads a tar archive whose first name starts like a compressed stream', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'BZh91AY&SY'), 'a name that starts as bzip2 data does');
    const path = join(dir, 'plain.tar');
    await tool('tar', ['-C', dir, '-cf', path, 'BZh91AY&SY']);
    const store = await tempStore({ durability: 'none' });
    expect(await importFile(store, path)).toEqual(['BZh91AY&SY']);
  });
});

describe('pax headers', () => {
  it("imports node-tar's empty pax header fixture as GNU tar extracts it", async () => {
    const fixtures = await tempDir();
    const bundle = new URL('./fixtures/interop/third-party-tar-fixtures.tar.xz', import.meta.url).pathname;
    await tool('tar', ['-xJf', bundle, '-C', fixtures, 'node-tar/tars__emptypax.tar']);
    const path = join(fixtures, 'node-tar', 'tars__emptypax.tar');
    // the second member's pax header has no records at all
    const headers = rawHeaders(await readFile(path));
    expect(headers.filter((h) => h.type === 'x').map((h) => h.size)).toEqual([0o170, 0]);
    const extracted = await gnuExtracted(path, ['--warning=no-unknown-keyword']);
    expect([...extracted.keys()]).toEqual(['one-byte.txt', '🌟.txt']);
    const store = await tempStore({ durability: 'none' });
    expect(await importFile(store, path)).toEqual(['🌟.txt', 'one-byte.txt']);
    expect(await areaFiles(store)).toEqual(extracted);
  });

  const GLOBAL = `
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT, pax_headers={'path': 'global-name'}) as archive:
    for name, local in [('a', {}), ('b', {'path': 'local-name'}), ('c', {})]:
        info = tarfile.TarInfo(name)
        info.size = len(name)
        info.pax_headers = local
        archive.addfile(info, io.BytesIO(name.encode()))
`;

  it("gives a member the path of a global pax header, as GNU tar and Python do; the member's own path wins", async () => {
    const path = join(await tempDir(), 'global.tar');
    await run('python3', ['-c', GLOBAL, path]);
    expect(rawHeaders(await readFile(path))[0]?.type).toBe('g');
    const names = ['global-name', 'local-name', 'global-name'];
    expect((await tool('tar', ['-tf', path])).trimEnd().split('\n')).toEqual(names);
    expect((await python<PyMember[]>(PY_MEMBERS, [path])).map((m) => m.name)).toEqual(names);
    // the third member takes the same name again: a collision, refused with EEXIST as any other
    const store = await tempStore({ durability: 'none' });
    const err = await rejection(importFile(store, path));
    expect(err).toMatchObject({ code: 'EEXIST', committed: ['global-name', 'local-name'] });
    expect(await readFile(join(store.root, 'new', 'global-name'), 'utf8')).toBe('a');
    expect(await readFile(join(store.root, 'new', 'local-name'), 'utf8')).toBe('b');
  });

  it("reads GNU tar's global header (named /tmp/GlobalHead.*) as records, not as a member", async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'only'), 'one file');
    const path = join(dir, 'global.tar');
    await tool('tar', ['-C', dir, '--format=pax', '--pax-option=path=renamed,comment=hello', '-cf', path, 'only']);
    const first = rawHeaders(await readFile(path))[0] as RawHeader;
    expect(first.type).toBe('g');
    expect(first.name.toString()).toMatch(/GlobalHead/);
    expect((await tool('tar', ['-tf', path])).trimEnd()).toBe('renamed');
    const store = await tempStore({ durability: 'none' });
    expect(await importFile(store, path)).toEqual(['renamed']);
    expect(await readFile(join(store.root, 'new', 'renamed'), 'utf8')).toBe('one file');
  });
});

describe("the command line's progress count", () => {
  it('counts the files the import commits: old GNU sparse files, a volume label, up to the end marker', async () => {
    const dir = await tempDir();
    const sparse = await open(join(dir, 'sparse'), 'w');
    await sparse.truncate(4 * 1024 * 1024);
    // 30 segments: the header's 4 and two extension blocks; whole pages of data, so no zero block among them
    for (let i = 0; i < 30; i++) await sparse.write(Buffer.alloc(4096, 0x61), 0, 4096, i * 65_536);
    await sparse.close();
    for (const name of ['a', 'b', 'c']) await writeFile(join(dir, name), `file ${name}`);
    const first = join(dir, 'first.tar');
    await tool('tar', ['-C', dir, '--format=gnu', '-S', '-V', 'label', '-cf', first, 'a', 'sparse', 'b']);
    const second = join(dir, 'second.tar');
    await tool('tar', ['-C', dir, '-cf', second, 'c']);
    const archive = Buffer.concat([await readFile(first), await readFile(second)]);
    expect(rawHeaders(archive).map((h) => h.type)).toEqual(['V', '0', 'S', '0']);

    const counter = new TarCounter();
    Readable.from([archive]).pipe(counter);
    const store = await tempStore({ durability: 'none' });
    expect(await store.importTar(counter)).toEqual(['a', 'sparse', 'b']);
    expect(counter.files).toBe(3);
  });
});

describe("export's plain-ustar fields, for readers that ignore pax", () => {
  /** The largest value of an 11-digit octal field: 2242-03-16T12:56:31Z. */
  const OCTAL_11_MAX = 8 ** 11 - 1;
  const TIMES: Array<[string, number, number]> = [
    // name, mtime in seconds, what the ustar field holds
    ['y1960', -315_619_200, 0],
    ['y2040', 2_218_000_000, 2_218_000_000],
    ['y2100', 4_102_444_800, 4_102_444_800],
    ['y2242-last', OCTAL_11_MAX, OCTAL_11_MAX],
    ['y2242-after', OCTAL_11_MAX + 1, OCTAL_11_MAX],
    ['y2300', 10_413_792_000, OCTAL_11_MAX],
  ];
  const NAMES = [
    'a'.repeat(150), // ASCII, over 100 bytes
    'b'.repeat(100), // ASCII, fills the name field with no NUL: no pax header
    `x${'é'.repeat(60)}`, // 121 bytes; byte 100 is inside an é
    `${'日本語'.repeat(28)}abc`, // 255 bytes of 3-byte characters and ASCII
    'café', // short, not ASCII
  ];
  const MODES: Record<string, number> = { y1960: 0o640, y2040: 0o600, y2100: 0o755 };

  async function exported(): Promise<{ store: FileStore; archive: string; data: Map<string, Buffer> }> {
    const store = await tempStore({ durability: 'none' });
    const data = new Map<string, Buffer>();
    for (const [name] of TIMES) data.set(name, Buffer.from(`mtime ${name}`));
    for (const name of NAMES) data.set(name, Buffer.from(`name of ${Buffer.byteLength(name)} bytes`));
    for (const [name, bytes] of data) await put(store, name, bytes);
    // Dates: Node takes a negative number of seconds for "now"
    for (const [name, seconds] of TIMES) {
      const time = new Date(seconds * 1000);
      await utimes(join(store.root, 'new', name), time, time);
    }
    const { chmod } = await import('node:fs/promises');
    for (const [name, mode] of Object.entries(MODES)) await chmod(join(store.root, 'new', name), mode);
    // the file system holds the times asked for (ext4 and tmpfs do, to the year 2446)
    for (const [name, seconds] of TIMES)
      expect((await stat(join(store.root, 'new', name))).mtimeMs / 1000, name).toBe(seconds);
    const archive = join(await tempDir(), 'export.tar');
    await writeFile(archive, await collect(store.exportTar('new', { names: [...data.keys()] })));
    return { store, archive, data };
  }

  /** The members a pax-unaware reader sees: every header, the pax ones as files of their own. */
  function plain(headers: RawHeader[]): Map<string, RawHeader> {
    return new Map(headers.filter((h) => h.type === '0').map((h) => [h.name.toString('utf8'), h]));
  }

  it('holds mtimes in the 11-digit octal field up to 2242, the nearest value that fits outside it', async () => {
    const { archive } = await exported();
    const headers = rawHeaders(await readFile(archive));
    const byName = plain(headers);
    for (const [name, seconds, field] of TIMES) {
      const header = byName.get(name);
      expect(header?.mtimeField, name).toBe(field.toString(8).padStart(11, '0'));
      // a pax record only where the field could not hold the time
      const index = headers.indexOf(header as RawHeader);
      const before = headers[index - 1];
      expect(before?.type === 'x', name).toBe(field !== seconds);
    }
  });

  it('cuts a long or non-ASCII name to whole UTF-8 characters in the name field; the pax header is not named PaxHeader', async () => {
    const { archive } = await exported();
    const headers = rawHeaders(await readFile(archive));
    for (const [i, header] of headers.entries()) {
      expect(header.magic).toBe('ustar\0');
      expect(header.version).toBe('00');
      expect(header.prefix.length).toBe(0); // store names have no '/' to split at
      const name = header.name.toString('utf8');
      expect(Buffer.from(name, 'utf8').equals(header.name), 'the name field is whole UTF-8').toBe(true);
      if (header.type !== 'x') continue;
      const next = headers[i + 1] as RawHeader;
      const path = paxRecords((await readFile(archive)).subarray(header.bodyAt, header.bodyAt + header.size)).find(
        ([k]) => k === 'path',
      )?.[1];
      if (path === undefined) continue;
      expect(NAMES).toContain(path);
      // the ustar name is the longest prefix of the real name that fits in 100 bytes and ends on a character
      let fitted = '';
      for (const char of path)
        if (Buffer.byteLength(fitted + char) <= 100) fitted += char;
        else break;
      expect(next.name.toString('utf8')).toBe(fitted);
      expect(name).not.toMatch(/^PaxHeader\0*$/);
      expect(name).toBe(`PaxHeaders/${[...fitted].reduce((s, c) => (Buffer.byteLength(s + c) <= 89 ? s + c : s), '')}`);
    }
    const ustarNames = [...plain(headers).keys()];
    const full = headers.findIndex((h) => h.name.equals(Buffer.from('b'.repeat(100))));
    expect(headers[full - 1]?.type).toBe('0');
    expect(ustarNames).toContain('a'.repeat(100));
    expect(ustarNames).toContain(`x${'é'.repeat(49)}`);
    expect(ustarNames).toContain('café');
  });

  it('reads back the same names, bytes, mtimes and modes in GNU tar, bsdtar, Python and tar-stream', async () => {
    const { archive, data } = await exported();
    const mtimes = new Map<string, number>(TIMES.map(([name, seconds]) => [name, seconds]));
    const expected = [...data].map(([name, bytes]) => ({
      name,
      sha256: sha256(bytes),
      mtime: mtimes.get(name) ?? null,
      mode: MODES[name] ?? null,
    }));
    const pick = (name: string, bytes: Buffer, mtime: number, mode: number) => ({
      name,
      sha256: sha256(bytes),
      mtime: mtimes.has(name) ? mtime : null,
      mode: name in MODES ? mode & 0o7777 : null,
    });

    const byExtraction = async (command: string, flags: string[]) => {
      const out = await tempDir();
      await tool(command, ['-x', '-p', ...flags, '-f', archive, '-C', out]);
      const files = [];
      for (const name of data.keys()) {
        const info = await stat(join(out, name));
        files.push(pick(name, await readFile(join(out, name)), Math.floor(info.mtimeMs / 1000), info.mode));
      }
      return files;
    };
    expect(await byExtraction('tar', ['--no-same-owner', '--warning=no-timestamp'])).toEqual(expected);
    expect(await byExtraction('bsdtar', ['--no-same-owner'])).toEqual(expected);

    const members = await python<PyMember[]>(PY_MEMBERS, [archive]);
    expect(
      members.map((m) => ({
        name: m.name,
        sha256: m.sha256,
        mtime: mtimes.has(m.name) ? m.mtime : null,
        mode: m.name in MODES ? m.mode : null,
      })),
    ).toEqual(expected);

    const extract = tarStream.extract();
    createReadStream(archive).pipe(extract);
    const streamed = [];
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      const body = Buffer.concat(chunks);
      const { name, mtime, mode } = entry.header;
      streamed.push(pick(name, body, Math.floor((mtime?.getTime() ?? Number.NaN) / 1000), mode ?? -1));
    }
    // tar-stream applies a pax path and size but not a pax mtime: it reads the ustar field, the nearest time it holds
    const fields = new Map<string, number>(TIMES.map(([name, , field]) => [name, field]));
    expect(streamed).toEqual(expected.map((e) => ({ ...e, mtime: fields.get(e.name) ?? null })));
  });
});
