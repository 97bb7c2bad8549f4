// Tar archives read and patched block by block, independently of lib/tar:
// the format specs look at the raw fields a writer put there, and make an
// archive another tool wrote inconsistent in one place.

const BLOCK = 512;

/** One header of an archive, its fields as the bytes hold them. */
export interface RawHeader {
  /** Where the header block starts. */
  at: number;
  /** Where its body starts (after old GNU sparse extension blocks, if any). */
  bodyAt: number;
  name: Buffer;
  prefix: Buffer;
  type: string;
  size: number;
  /** The fields as text up to their first NUL: mode, mtime, magic and version. */
  modeField: string;
  mtimeField: string;
  magic: string;
  version: string;
  block: Buffer;
}

function field(block: Buffer, at: number, width: number): Buffer {
  const end = block.indexOf(0, at);
  return block.subarray(at, end === -1 || end > at + width ? at + width : end);
}

function octal(block: Buffer, at: number, width: number): number {
  if (block[at] === 0x80) {
    let value = 0;
    for (let i = at + 1; i < at + width; i++) value = value * 256 + (block[i] as number);
    return value;
  }
  const text = field(block, at, width).toString('latin1').trim();
  return text === '' ? 0 : Number.parseInt(text, 8);
}

/** The header blocks of `archive`, up to its first zero block, walking bodies by their size fields. */
export function rawHeaders(archive: Buffer): RawHeader[] {
  const headers: RawHeader[] = [];
  for (let at = 0; at + BLOCK <= archive.length; ) {
    const block = archive.subarray(at, at + BLOCK);
    if (block.every((byte) => byte === 0)) break;
    const type = String.fromCharCode(block[156] as number);
    let bodyAt = at + BLOCK;
    // an old GNU sparse header: extension blocks follow while their isextended byte is set
    if (type === 'S' && block[482] !== 0) {
      for (let more = true; more; bodyAt += BLOCK) more = archive[bodyAt + 504] !== 0;
    }
    const size = octal(block, 124, 12);
    headers.push({
      at,
      bodyAt,
      name: field(block, 0, 100),
      prefix: field(block, 345, 155),
      type,
      size,
      modeField: field(block, 100, 8).toString('latin1'),
      mtimeField: field(block, 136, 12).toString('latin1'),
      magic: block.toString('latin1', 257, 263),
      version: block.toString('latin1', 263, 265),
      block,
    });
    at = bodyAt + Math.ceil(size / BLOCK) * BLOCK;
  }
  return headers;
}

/** A header block with its checksum recomputed after an edit. */
export function withChecksum(block: Buffer): Buffer {
  const copy = Buffer.from(block);
  copy.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of copy) sum += byte;
  copy.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return copy;
}

/** A header block with the octal field at `at` (of `width` bytes) set to `value`, checksum fixed. */
export function withOctal(block: Buffer, at: number, width: number, value: number): Buffer {
  const copy = Buffer.from(block);
  copy.write(`${value.toString(8).padStart(width - 1, '0')}\0`, at, width, 'latin1');
  return withChecksum(copy);
}

/** The records of a pax extended header body, in order. */
export function paxRecords(body: Buffer): Array<[string, string]> {
  const records: Array<[string, string]> = [];
  for (let at = 0; at < body.length && body[at] !== 0; ) {
    const space = body.indexOf(0x20, at);
    const length = Number(body.toString('latin1', at, space));
    const record = body.toString('utf8', space + 1, at + length - 1);
    const equals = record.indexOf('=');
    records.push([record.slice(0, equals), record.slice(equals + 1)]);
    at += length;
  }
  return records;
}

function paxBody(records: Array<[string, string]>): Buffer {
  return Buffer.concat(
    records.map(([key, value]) => {
      const rest = Buffer.from(` ${key}=${value}\n`);
      let length = rest.length + 1;
      while (String(length).length + rest.length !== length) length = String(length).length + rest.length;
      return Buffer.concat([Buffer.from(String(length)), rest]);
    }),
  );
}

/**
 * `archive` with the pax extended header `header` holding the records `edit`
 * makes of its own: its body re-encoded and padded, its size and checksum fixed.
 */
export function editPax(
  archive: Buffer,
  header: RawHeader,
  edit: (records: Array<[string, string]>) => Array<[string, string]>,
): Buffer {
  const body = paxBody(edit(paxRecords(archive.subarray(header.bodyAt, header.bodyAt + header.size))));
  const padded = Buffer.concat([body, Buffer.alloc((BLOCK - (body.length % BLOCK)) % BLOCK)]);
  const end = header.bodyAt + Math.ceil(header.size / BLOCK) * BLOCK;
  return Buffer.concat([
    archive.subarray(0, header.at),
    withOctal(header.block, 124, 12, body.length),
    padded,
    archive.subarray(end),
  ]);
}

/** `archive` with the header block at `header.at` replaced by `block`. */
export function replaceBlock(archive: Buffer, at: number, block: Buffer): Buffer {
  const copy = Buffer.from(archive);
  block.copy(copy, at);
  return copy;
}
