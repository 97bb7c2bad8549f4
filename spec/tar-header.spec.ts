// The header codec on its own: blocks that GNU tar and Python's tarfile
// write, decoded field by field, and the edge cases of its numbers,
// checksums and pax records.
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { compressedFormat, decodeHeader, fileHeader, parsePax, type TarHeader } from '../lib/tar/header.js';
import { tempDir } from './helpers.js';
import { withChecksum } from './tar-blocks.js';

const run = promisify(execFile);

/** The first header block Python's tarfile writes for one member, in `format` (GNU_FORMAT, PAX_FORMAT, USTAR_FORMAT). */
async function pythonHeader(format: string, fields: string): Promise<Buffer> {
  const path = join(await tempDir(), 'one.tar');
  const program = `
import sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.${format}) as archive:
    info = tarfile.TarInfo('member')
    ${fields}
    archive.addfile(info)
`;
  await run('python3', ['-c', program, path]);
  return (await readFile(path)).subarray(0, 512);
}

function decoded(block: Buffer): TarHeader {
  const header = decodeHeader(block);
  if (header === null || typeof header === 'string') throw new Error(`not a header: ${String(header)}`);
  return header;
}

describe('decodeHeader', () => {
  it('reads the fields GNU tar writes in each of its formats', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'file'), 'x'.repeat(1234));
    const { utimes, chmod } = await import('node:fs/promises');
    await utimes(join(dir, 'file'), 1_700_000_000, 1_700_000_000);
    await chmod(join(dir, 'file'), 0o640);
    const formats: Array<[string, TarHeader['format']]> = [
      ['ustar', 'ustar'],
      ['posix', 'ustar'],
      ['gnu', 'gnu'],
      ['oldgnu', 'gnu'],
      ['v7', 'v7'],
    ];
    for (const [format, expected] of formats) {
      const archive = join(dir, `${format}.tar`);
      // posix: without the atime and ctime records GNU tar adds, so the file's own header follows one pax header
      const options = format === 'posix' ? ['--pax-option=delete=atime,delete=ctime'] : [];
      await run('tar', ['-C', dir, `--format=${format}`, ...options, '-cf', archive, 'file']);
      let block = (await readFile(archive)).subarray(0, 512);
      if (String.fromCharCode(block[156] as number) === 'x') block = (await readFile(archive)).subarray(1024, 1536);
      const header = decoded(block);
      expect(header, format).toMatchObject({ format: expected, mode: 0o640, size: 1234, mtime: 1_700_000_000 });
      expect(header.name.toString(), format).toBe('file');
      expect(['0', '\0'], format).toContain(header.type);
    }
  });

  it("reads Python's GNU base-256 numbers: a size over 8 GiB, a negative mtime", async () => {
    const big = decoded(await pythonHeader('GNU_FORMAT', 'info.size = 10 * 1024 ** 3; info.mtime = -1_000_000_000'));
    expect(big.block[124]).toBe(0x80);
    expect(big.block[136]).toBe(0xff);
    expect(big).toMatchObject({ size: 10 * 1024 ** 3, mtime: -1_000_000_000, format: 'gnu' });
  });

  it('reads a ustar name with its prefix', async () => {
    const name = `${'d'.repeat(120)}/${'f'.repeat(90)}`;
    const block = await pythonHeader('USTAR_FORMAT', `info.name = ${JSON.stringify(name)}`);
    expect(block.toString('latin1', 345, 345 + 120)).toBe('d'.repeat(120));
    expect(decoded(block).name.toString()).toBe(name);
  });

  it('accepts a checksum summed over signed bytes, as old tars wrote it, and refuses a wrong one', async () => {
    const block = Buffer.from(await pythonHeader('USTAR_FORMAT', "info.name = 'caf\\xe9'"));
    expect(decoded(block).name).toEqual(Buffer.from('café', 'utf8'));
    let signed = 0;
    block.fill(0x20, 148, 156);
    for (const byte of block) signed += byte > 127 ? byte - 256 : byte;
    block.write(`${signed.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect(decoded(block).name).toEqual(Buffer.from('café', 'utf8'));
    block.write('000001\0 ', 148, 'latin1');
    expect(decodeHeader(block)).toBe('checksum');
  });

  it('reads octal fields ended by a space or a NUL, with leading spaces, and an empty field as 0', async () => {
    const block = Buffer.from(await pythonHeader('USTAR_FORMAT', 'info.size = 0o1234; info.mode = 0o644'));
    block.write('  1234 \0\0\0\0\0', 124, 'latin1');
    block.write('\0\0\0\0\0\0\0\0', 108, 'latin1'); // uid: empty
    block.write('000644 \0', 100, 'latin1');
    expect(decoded(withChecksum(block))).toMatchObject({ size: 0o1234, mode: 0o644 });
    block.write('12389\0', 124, 'latin1');
    expect(decodeHeader(withChecksum(block))).toBe('field');
  });

  it('takes a zero block for the end of the archive', () => {
    expect(decodeHeader(Buffer.alloc(512))).toBeNull();
  });
});

describe('parsePax', () => {
  it('reads records, in order, a key more than once, values with = and newlines', () => {
    const body = Buffer.from('12 path=a=b\n15 comment=x\ny\n15 path=second\n');
    expect(parsePax(body)?.map(([k, v]) => [k, v.toString()])).toEqual([
      ['path', 'a=b'],
      ['comment', 'x\ny'],
      ['path', 'second'],
    ]);
  });

  it('reads an empty body as no records, and stops at NUL padding', () => {
    expect(parsePax(Buffer.alloc(0))).toEqual([]);
    expect(parsePax(Buffer.from('12 path=abc\n\0\0\0'))?.length).toBe(1);
  });

  it('refuses a record whose length does not match, or without a key', () => {
    for (const text of ['13 path=abc\n', '11 path=abc\n', 'x path=abc\n', '9 noequ\n', '12 path=abc']) {
      expect(parsePax(Buffer.from(text)), text).toBeNull();
    }
  });
});

describe('fileHeader', () => {
  it('writes one ustar block when ustar holds every field, and Python reads the same fields', async () => {
    const block = fileHeader('plain.txt', 1234, 0o640, new Date(4_102_444_800_500));
    expect(block.length).toBe(512);
    const path = join(await tempDir(), 'one.tar');
    await writeFile(path, Buffer.concat([block, Buffer.alloc(1536), Buffer.alloc(1024)]));
    const { stdout } = await run('python3', [
      '-c',
      'import sys, tarfile, json; m = tarfile.open(sys.argv[1]).next(); print(json.dumps([m.name, m.size, m.mode, m.mtime, m.type.decode(), m.uid, m.gid, m.pax_headers]))',
      path,
    ]);
    expect(JSON.parse(stdout)).toEqual(['plain.txt', 1234, 0o640, 4_102_444_800, '0', 0, 0, {}]);
  });
});

describe('compressedFormat', () => {
  it('names the compressions by their magic numbers, and nothing else', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a'), 'a');
    const found: Array<string | null> = [];
    for (const flag of ['-z', '-j', '-J', '--zstd', '--lz4', '-Z']) {
      const path = join(dir, `a${flag}`);
      await run('bsdtar', ['-C', dir, flag, '-cf', path, 'a']);
      found.push(compressedFormat(await readFile(path)));
    }
    expect(found).toEqual(['gzip', 'bzip2', 'xz', 'zstd', 'lz4', 'compress (.Z)']);
    await run('tar', ['-C', dir, '-cf', join(dir, 'plain.tar'), 'a']);
    expect(compressedFormat(await readFile(join(dir, 'plain.tar')))).toBeNull();
    expect(compressedFormat(Buffer.from([0x1f]))).toBeNull();
  });
});
