/**
 * The tar header codec: ustar header blocks and pax extended-header records,
 * both ways, written here rather than borrowed from a tar package, so the
 * format this library reads and writes is the one its specs pin against GNU
 * tar, and no release of another package can change it.
 *
 * Encoding is the export's hot path (one header per file, bench scenario 7):
 * a header is a copy of a template block with the few varying fields written
 * into it. Decoding accepts what GNU tar and Python's tarfile accept: POSIX
 * ustar, old GNU and v7 headers, octal fields ended by NUL or space, GNU
 * base-256 numbers, and checksums summed signed or unsigned.
 */
import { nameToBytes } from '../names.js';

/** The size of a tar block: headers are one block, bodies are padded to whole blocks. */
export const BLOCK_SIZE = 512;

/** Zero bytes to copy from (`Buffer.concat`) when padding to whole blocks; never handed out as a chunk itself. */
export const ZEROS = Buffer.alloc(2 * BLOCK_SIZE);

/** The zero bytes that pad a body of `size` bytes to a whole block. */
export function padding(size: number): number {
  return (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
}

/** A body of `size` bytes padded to whole blocks. */
export function paddedSize(size: number): number {
  return size + padding(size);
}

const NAME = 0;
const NAME_SIZE = 100;
const MODE = 100;
const UID = 108;
const GID = 116;
const SIZE = 124;
const MTIME = 136;
const CHECKSUM = 148;
const TYPEFLAG = 156;
const LINKNAME = 157;
const MAGIC = 257;
const PREFIX = 345;

/** The largest number an 11-digit octal field holds: sizes up to 8 GiB, mtimes up to the year 2242. */
const OCTAL_11_MAX = 8 ** 11 - 1;

/** A ustar header of a regular file, mode 0644, uid/gid 0, size and mtime 0: the fields that vary are written over it. */
const TEMPLATE = (() => {
  const block = Buffer.alloc(BLOCK_SIZE);
  block.write('0000644\0', MODE, 'latin1');
  block.write('0000000\0', UID, 'latin1');
  block.write('0000000\0', GID, 'latin1');
  block.write('00000000000\0', SIZE, 'latin1');
  block.write('00000000000\0', MTIME, 'latin1');
  block.write('0', TYPEFLAG, 'latin1');
  block.write('ustar\x0000', MAGIC, 'latin1');
  block.write('0000000\0', 329, 'latin1'); // devmajor
  block.write('0000000\0', 337, 'latin1'); // devminor
  return block;
})();

/** Writes `value` as a zero-padded octal field of `width` bytes, the last one NUL. */
function writeOctal(block: Buffer, value: number, at: number, width: number): void {
  const digits = value.toString(8);
  block.write(digits.padStart(width - 1, '0'), at, width - 1, 'latin1');
}

/** Writes `value` as a GNU base-256 field (first byte 0x80): for sizes an octal field cannot hold. */
function writeBase256(block: Buffer, value: number, at: number, width: number): void {
  block.fill(0, at, at + width);
  block[at] = 0x80;
  for (let i = at + width - 1, rest = value; i > at && rest > 0; i--, rest = Math.floor(rest / 256)) {
    block[i] = rest % 256;
  }
}

function writeChecksum(block: Buffer): void {
  block.fill(0x20, CHECKSUM, CHECKSUM + 8);
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += block[i] as number;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, CHECKSUM, 8, 'latin1');
}

/** The fields of one header this library writes. */
interface Fields {
  /** The name field's bytes, at most 100. */
  name: Buffer | string;
  type: '0' | 'x';
  mode: number;
  size: number;
  /** Seconds since the epoch; the field holds the nearest value it can, 0 to OCTAL_11_MAX. */
  seconds: number;
}

function encode(fields: Fields): Buffer {
  const block = Buffer.allocUnsafe(BLOCK_SIZE);
  TEMPLATE.copy(block);
  if (typeof fields.name === 'string') block.write(fields.name, NAME, NAME_SIZE, 'latin1');
  else fields.name.copy(block, NAME, 0, NAME_SIZE);
  if (fields.type !== '0') block.write(fields.type, TYPEFLAG, 'latin1');
  writeOctal(block, fields.mode & 0o7777, MODE, 8);
  if (fields.size <= OCTAL_11_MAX) writeOctal(block, fields.size, SIZE, 12);
  else writeBase256(block, fields.size, SIZE, 12);
  writeOctal(block, Math.min(Math.max(fields.seconds, 0), OCTAL_11_MAX), MTIME, 12);
  writeChecksum(block);
  return block;
}

/** One pax record: `"<length> <key>=<value>\n"`, its length counting its own digits. */
function paxRecord(key: string, value: Buffer | string): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), Buffer.from(value), Buffer.from('\n')]);
  let length = body.length + 1;
  while (String(length).length + body.length !== length) length = String(length).length + body.length;
  return Buffer.concat([Buffer.from(String(length), 'latin1'), body]);
}

/** The first `max` bytes of `bytes`, cut before a UTF-8 sequence that would not fit whole. */
function fitted(bytes: Buffer, max: number): Buffer {
  if (bytes.length <= max) return bytes;
  let end = max;
  // a continuation byte (10xxxxxx) at the cut: step back to its lead byte, and drop that sequence
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end === 0 ? max : end);
}

/** Bytes that are valid UTF-8. */
function isUtf8(bytes: Buffer): boolean {
  return Buffer.from(bytes.toString('utf8'), 'utf8').equals(bytes);
}

/**
 * The header blocks of a regular file named by the bytes `name`: one ustar
 * header when the name is ASCII and fits in 100 bytes, the size in 8 GiB
 * and the mtime between 1970 and 2242; else a pax extended header first,
 * with records for what the ustar fields cannot hold (`path`, with
 * `hdrcharset=BINARY` when the name is not UTF-8; `size`; `mtime`). The
 * ustar fields always hold the nearest value they can, for readers that
 * ignore pax: the name's first 100 bytes, cut at a character boundary; the
 * size in GNU base-256; the mtime clamped to the field's range. Mode and
 * mtime are written as given, so a mode of 000 or an mtime of 0 stay.
 */
export function fileHeader(name: Buffer | string, size: number, mode: number, mtime: Date): Buffer {
  const seconds = Math.floor(mtime.getTime() / 1000);
  const ascii = typeof name === 'string' && name.length <= NAME_SIZE && Buffer.byteLength(name) === name.length;
  const fields: Fields = { name, type: '0', mode, size, seconds };
  if (ascii && size <= OCTAL_11_MAX && seconds >= 0 && seconds <= OCTAL_11_MAX) return encode(fields);
  // a store name's escaped bytes (not UTF-8 on disk) go out as the bytes they stand for
  const bytes = typeof name === 'string' ? nameToBytes(name) : name;
  const records: Buffer[] = [];
  if (!ascii) {
    if (!isUtf8(bytes)) records.push(paxRecord('hdrcharset', 'BINARY'));
    records.push(paxRecord('path', bytes));
  }
  if (size > OCTAL_11_MAX) records.push(paxRecord('size', String(size)));
  if (seconds < 0 || seconds > OCTAL_11_MAX) records.push(paxRecord('mtime', String(seconds)));
  const pax = Buffer.concat(records);
  const shortName = fitted(bytes, NAME_SIZE);
  // GNU tar's name for the extended header: PaxHeaders/ and the file's name
  const paxName = Buffer.concat([Buffer.from('PaxHeaders/'), fitted(bytes, NAME_SIZE - 11)]);
  return Buffer.concat([
    encode({ name: paxName, type: 'x', mode: 0o644, size: pax.length, seconds }),
    pax,
    ZEROS.subarray(0, padding(pax.length)),
    encode({ ...fields, name: shortName }),
  ]);
}

/** The header formats {@link decodeHeader} tells apart, by the magic field. */
export type HeaderFormat = 'ustar' | 'gnu' | 'v7';

/** One header block, decoded. Names are bytes: what they mean is the reader's business. */
export interface TarHeader {
  /** The name field, with the ustar prefix and a `/` before it when there is one; up to the first NUL. */
  name: Buffer;
  /** The typeflag byte, as a character (`'0'`, `'\0'`, `'x'`, `'L'` ...). */
  type: string;
  mode: number;
  size: number;
  /** Seconds since the epoch. */
  mtime: number;
  linkname: Buffer;
  format: HeaderFormat;
  /** The block itself, for what only some types carry (old GNU sparse maps). */
  block: Buffer;
}

/** Why {@link decodeHeader} refused a block. */
export type HeaderProblem = 'checksum' | 'field';

/**
 * Decodes one header block: `null` for a zero block (the end of the
 * archive), a {@link HeaderProblem} for a block that is not a valid header.
 */
export function decodeHeader(block: Buffer): TarHeader | null | HeaderProblem {
  if (isZero(block)) return null;
  const stored = number(block, CHECKSUM, 8);
  if (stored === null || !checksumMatches(block, stored)) return 'checksum';
  const mode = number(block, MODE, 8);
  const size = number(block, SIZE, 12);
  const mtime = number(block, MTIME, 12);
  if (mode === null || size === null || size < 0 || mtime === null) return 'field';
  const magic = block.toString('latin1', MAGIC, MAGIC + 8);
  const format: HeaderFormat = magic.startsWith('ustar\0') ? 'ustar' : magic === 'ustar  \0' ? 'gnu' : 'v7';
  let name = cString(block, NAME, NAME_SIZE);
  if (format === 'ustar') {
    const prefix = cString(block, PREFIX, 155);
    if (prefix.length > 0) name = Buffer.concat([prefix, Buffer.from('/'), name]);
  }
  return {
    name,
    type: String.fromCharCode(block[TYPEFLAG] as number),
    mode,
    size,
    mtime,
    linkname: cString(block, LINKNAME, 100),
    format,
    block,
  };
}

/** The magic numbers of the compressed formats an archive is often shipped in. */
const COMPRESSED: Array<[format: string, magic: Buffer]> = [
  ['gzip', Buffer.from([0x1f, 0x8b])],
  ['compress (.Z)', Buffer.from([0x1f, 0x9d])],
  ['bzip2', Buffer.from('BZh')],
  ['xz', Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])],
  ['zstd', Buffer.from([0x28, 0xb5, 0x2f, 0xfd])],
  ['lz4', Buffer.from([0x04, 0x22, 0x4d, 0x18])],
];

/**
 * The compressed format whose magic number `start` (the first bytes of a
 * stream that is not a tar header) begins with, or `null`: to tell a
 * compressed archive from a damaged one.
 */
export function compressedFormat(start: Buffer): string | null {
  for (const [format, magic] of COMPRESSED) {
    if (start.length >= magic.length && start.subarray(0, magic.length).equals(magic)) return format;
  }
  return null;
}

/** Whether every byte of `block` is zero. */
export function isZero(block: Buffer): boolean {
  for (let i = 0; i < block.length; i++) if (block[i] !== 0) return false;
  return true;
}

/** The stored checksum against the block's sum, counted unsigned and signed (old tars did either). */
function checksumMatches(block: Buffer, stored: number): boolean {
  let unsigned = 8 * 0x20;
  let signed = 8 * 0x20;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    if (i >= CHECKSUM && i < CHECKSUM + 8) continue;
    const byte = block[i] as number;
    unsigned += byte;
    signed += byte > 127 ? byte - 256 : byte;
  }
  return stored === unsigned || stored === signed;
}

/** The bytes of a field up to its first NUL. */
export function cString(block: Buffer, at: number, width: number): Buffer {
  const end = block.indexOf(0, at);
  return block.subarray(at, end === -1 || end > at + width ? at + width : end);
}

/**
 * A numeric field: octal digits up to the first NUL, spaces around them
 * allowed (an empty field is 0), or GNU base-256 (first byte 0x80, or 0xff for
 * a negative number); `null` when it is neither or too big to be exact.
 */
export function number(block: Buffer, at: number, width: number): number | null {
  const first = block[at] as number;
  if (first === 0x80 || first === 0xff) {
    let value = 0n;
    for (let i = at + 1; i < at + width; i++) value = value * 256n + BigInt(block[i] as number);
    if (first === 0xff) value -= 256n ** BigInt(width - 1);
    const result = Number(value);
    return Number.isSafeInteger(result) ? result : null;
  }
  // as Python's tarfile reads it: up to the first NUL, spaces trimmed
  const digits = cString(block, at, width).toString('latin1').trim();
  if (!/^[0-7]*$/.test(digits)) return null;
  return digits === '' ? 0 : Number.parseInt(digits, 8);
}

/** A pax extended header's records, in order; a key may come more than once (GNU sparse 0.0). */
export type PaxRecords = Array<[key: string, value: Buffer]>;

/** The records of a pax extended header's body; `null` when the body is malformed. */
export function parsePax(body: Buffer): PaxRecords | null {
  const records: PaxRecords = [];
  let at = 0;
  while (at < body.length) {
    // trailing NULs after the last record (some writers pad the body) end it
    if (body[at] === 0) break;
    const space = body.indexOf(0x20, at);
    if (space === -1) return null;
    const lengthText = body.toString('latin1', at, space);
    if (!/^[0-9]+$/.test(lengthText)) return null;
    const length = Number(lengthText);
    const end = at + length;
    if (length <= space - at + 1 || end > body.length || body[end - 1] !== 0x0a) return null;
    const equals = body.indexOf(0x3d, space + 1);
    if (equals === -1 || equals >= end) return null;
    records.push([body.toString('utf8', space + 1, equals), body.subarray(equals + 1, end - 1)]);
    at = end;
  }
  return records;
}
