/**
 * GNU sparse files: where the data segments of a sparse member lie in the
 * real file, read from each of the four ways GNU tar writes the map (old GNU
 * headers, pax formats 0.0, 0.1 and 1.0), and the real file's bytes rebuilt
 * from the stored segments with holes between them, as GNU tar extracts it.
 */
import { hole } from '../hole.js';
import { BLOCK_SIZE, number, type PaxRecords } from './header.js';

/** One data segment: `size` bytes stored in the archive that belong at `offset` of the real file. */
export interface Segment {
  offset: number;
  size: number;
}

/** A sparse member's layout: its segments in order, and the real file's size. */
export interface SparseMap {
  segments: Segment[];
  realSize: number;
}

/** Where an old GNU header (typeflag `S`) keeps its map: 4 segments at 386, isextended at 482, realsize at 483. */
const OLD_GNU_SEGMENTS = 386;
const OLD_GNU_IS_EXTENDED = 482;
const OLD_GNU_REAL_SIZE = 483;
/** An extension block of an old GNU sparse map: 21 segments, then isextended at 504. */
const EXTENSION_SEGMENTS = 21;
const EXTENSION_IS_EXTENDED = 504;

/**
 * Reads the segments of an old GNU sparse map from a header or extension
 * block; `more` says an extension block follows. `null` when a field is malformed.
 */
export function oldGnuSegments(block: Buffer, header: boolean): { segments: Segment[]; more: boolean } | null {
  const at = header ? OLD_GNU_SEGMENTS : 0;
  const count = header ? 4 : EXTENSION_SEGMENTS;
  const segments: Segment[] = [];
  for (let i = 0; i < count; i++) {
    const field = at + i * 24;
    if (block[field] === 0) break;
    const offset = number(block, field, 12);
    const size = number(block, field + 12, 12);
    if (offset === null || size === null) return null;
    segments.push({ offset, size });
  }
  return { segments, more: block[header ? OLD_GNU_IS_EXTENDED : EXTENSION_IS_EXTENDED] !== 0 };
}

/** The real size an old GNU sparse header records. */
export function oldGnuRealSize(block: Buffer): number | null {
  return number(block, OLD_GNU_REAL_SIZE, 12);
}

/** The sparse format a member's pax records announce, if any. */
export type PaxSparse = { version: '0.0' | '0.1'; map: SparseMap } | { version: '1.0'; realSize: number } | null;

/**
 * Reads GNU sparse pax records: 0.0 (`GNU.sparse.offset`/`numbytes` pairs),
 * 0.1 (`GNU.sparse.map`), or 1.0 (`GNU.sparse.major=1`, the map at the start
 * of the body). `'bad'` for records that do not make a map, or a map of
 * another length than its `GNU.sparse.numblocks`.
 */
export function paxSparse(records: PaxRecords, get: (key: string) => string | undefined): PaxSparse | 'bad' {
  const major = get('GNU.sparse.major');
  const minor = get('GNU.sparse.minor');
  const realSizeText = get('GNU.sparse.realsize') ?? get('GNU.sparse.size');
  if (major !== undefined || minor !== undefined) {
    if (major !== '1' || minor !== '0') return 'bad';
    const realSize = decimal(realSizeText);
    return realSize === null ? 'bad' : { version: '1.0', realSize };
  }
  const mapText = get('GNU.sparse.map');
  const offsets = records.filter(([key]) => key === 'GNU.sparse.offset' || key === 'GNU.sparse.numbytes');
  if (mapText === undefined && offsets.length === 0) return null;
  const realSize = decimal(realSizeText);
  if (realSize === null) return 'bad';
  const numbers =
    mapText !== undefined
      ? mapText === ''
        ? []
        : mapText.split(',').map(decimal)
      : offsets.map(([key, value], i) =>
          key === (i % 2 === 0 ? 'GNU.sparse.offset' : 'GNU.sparse.numbytes')
            ? decimal(value.toString('latin1'))
            : null,
        );
  const segments = pairs(numbers);
  if (segments === null) return 'bad';
  // GNU tar writes the count of pairs first: a map with fewer (or more) was cut or damaged
  const count = get('GNU.sparse.numblocks');
  if (count !== undefined && decimal(count) !== segments.length) return 'bad';
  return { version: mapText !== undefined ? '0.1' : '0.0', map: { segments, realSize } };
}

/**
 * The map at the start of a format 1.0 body: decimal numbers, one a line (the
 * count, then offset and size of each segment), padded to whole blocks.
 * Takes the body's first blocks one at a time; resolves with the map and the
 * bytes of the body it took. `null` when the map is malformed.
 */
export async function readMap10(
  nextBlock: () => Promise<Buffer | null>,
  realSize: number,
): Promise<{ map: SparseMap; used: number } | null> {
  const lines: string[] = [];
  let partial = '';
  let used = 0;
  let wanted = Number.POSITIVE_INFINITY;
  while (lines.length < wanted) {
    const block = await nextBlock();
    if (block === null) return null;
    used += BLOCK_SIZE;
    const text = partial + block.toString('latin1');
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) {
      lines.push(part);
      if (lines.length === 1) {
        const count = decimal(part);
        if (count === null || count > 1_000_000) return null;
        wanted = 1 + 2 * count;
      }
      if (lines.length >= wanted) break;
    }
    if (lines.length < wanted && partial.length > 64) return null; // no number is that long
  }
  const numbers = lines.slice(1, wanted).map(decimal);
  const segments = pairs(numbers);
  return segments === null ? null : { map: { segments, realSize }, used };
}

/** Offset/size pairs from a flat list of numbers; `null` for an odd count or a bad number. */
function pairs(numbers: Array<number | null>): Segment[] | null {
  if (numbers.length % 2 !== 0) return null;
  const segments: Segment[] = [];
  for (let i = 0; i < numbers.length; i += 2) {
    const offset = numbers[i];
    const size = numbers[i + 1];
    if (offset == null || size == null) return null;
    segments.push({ offset, size });
  }
  return segments;
}

function decimal(text: string | undefined): number | null {
  if (text === undefined || !/^[0-9]+$/.test(text)) return null;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : null;
}

/**
 * Whether the map can be rebuilt: segments in order, not overlapping, inside
 * the real size, holding no more than the `stored` bytes (GNU tar skips any
 * stored bytes past the last segment).
 */
export function validMap(map: SparseMap, stored: number): boolean {
  let end = 0;
  let total = 0;
  for (const { offset, size } of map.segments) {
    if (offset < end || offset + size > map.realSize) return false;
    end = offset + size;
    total += size;
  }
  return total <= stored;
}

/**
 * The real file's bytes: the stored data (taken from `data` in order, as it
 * comes) placed at each segment's offset, holes in between and up to the
 * real size: {@link hole} chunks, which the store's writer skips, so the file
 * is sparse on disk as GNU tar makes it.
 */
export async function* rebuild(map: SparseMap, data: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  const iterator = data[Symbol.asyncIterator]();
  let pending: Buffer = Buffer.alloc(0);
  let position = 0;
  for (const { offset, size } of map.segments) {
    if (offset > position) yield hole(offset - position);
    let left = size;
    while (left > 0) {
      if (pending.length === 0) {
        const next = await iterator.next();
        if (next.done) throw new RangeError('sparse data ended early');
        pending = next.value;
      }
      const piece = pending.length <= left ? pending : pending.subarray(0, left);
      pending = pending.subarray(piece.length);
      left -= piece.length;
      yield piece;
    }
    position = offset + size;
  }
  if (map.realSize > position) yield hole(map.realSize - position);
}
