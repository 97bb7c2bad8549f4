/**
 * Store names and maildir-style unique names.
 *
 * A generated name is `<seconds>.M<micros>P<pid>[T<thread>]Q<counter>R<random>.<host>`:
 * the creation second first and the microseconds zero-padded to six digits,
 * so sorting names sorts them by age (to the microsecond, on one host); then an id
 * unique per process and call: the pid, the thread, a counter, and a random
 * part drawn once per process, which keeps names unique where pid and hostname
 * are not (containers sharing one volume are all pid 1).
 */
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';
import { FileStoreError } from './errors.js';

/** The three areas of a store. */
export type Area = 'tmp' | 'new' | 'cur';

/** The areas, in the order a file passes through them. */
export const AREAS: readonly Area[] = ['tmp', 'new', 'cur'];

const MAX_NAME_BYTES = 255;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Throws `ERR_INVALID_NAME` unless `name` is a non-empty string of at most
 * 255 bytes, without `/` or NUL, and not starting with `.`. A name stands
 * for its UTF-8 bytes; a byte that is not part of valid UTF-8 is held as an
 * escaped byte (see {@link nameFromBytes}). A lone surrogate that is not an
 * escaped byte, or escaped bytes that spell valid UTF-8, are refused: such a
 * string is not what any listing yields, so it could not round-trip.
 */
export function assertName(name: unknown): asserts name is string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.charCodeAt(0) === 0x2e ||
    name.includes('/') ||
    name.includes('\0') ||
    (LONE_SURROGATE.test(name) ? !isEscapedSpelling(name) : Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
  ) {
    throw new FileStoreError('ERR_INVALID_NAME', `invalid file name: ${describe(name)}`);
  }
}

/** Whether a name with lone surrogates is the one spelling of its bytes, and they fit. */
function isEscapedSpelling(name: string): boolean {
  const bytes = nameToBytes(name);
  return bytes.length <= MAX_NAME_BYTES && nameFromBytes(bytes) === name;
}

/** A name holding escaped bytes: a lone surrogate U+DC80 to U+DCFF. */
const ESCAPED_BYTE = /(?<![\uD800-\uDBFF])[\uDC80-\uDCFF]/;

/**
 * The name a file name's bytes stand for: their UTF-8 reading, with each byte
 * that is not part of a valid UTF-8 sequence as the lone surrogate U+DC00 +
 * byte (U+DC80 to U+DCFF; Python's `surrogateescape`, which `os.listdir` and
 * `mailbox.Maildir` use). Every byte string has one name, and
 * {@link nameToBytes} gives the bytes back.
 */
export function nameFromBytes(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  if (!text.includes('\uFFFD')) return text;
  let name = '';
  let plainFrom = 0;
  for (let i = 0; i < bytes.length; ) {
    const length = utf8SequenceLength(bytes, i);
    if (length > 0) {
      i += length;
      continue;
    }
    name += bytes.toString('utf8', plainFrom, i) + String.fromCharCode(0xdc00 + (bytes[i] as number));
    i++;
    plainFrom = i;
  }
  return name + bytes.toString('utf8', plainFrom);
}

/** A directory entry's name as read with `encoding: 'latin1'` (a character a byte, so none is lost): a byte over 0x7f. */
const NOT_ASCII = /[\x80-\xff]/;

/** The name of a directory entry read with `encoding: 'latin1'`, as {@link nameFromBytes} spells it. */
export function nameFromLatin1(read: string): string {
  return NOT_ASCII.test(read) ? nameFromBytes(Buffer.from(read, 'latin1')) : read;
}

/** The bytes of a name (or of a path holding one) on disk and in archives: UTF-8, with each escaped byte as itself. */
export function nameToBytes(name: string): Buffer {
  if (!ESCAPED_BYTE.test(name)) return Buffer.from(name, 'utf8');
  const parts: Buffer[] = [];
  let plainFrom = 0;
  for (let i = 0; i < name.length; i++) {
    const unit = name.charCodeAt(i);
    const escaped = unit >= 0xdc80 && unit <= 0xdcff && !(i > 0 && isHighSurrogate(name.charCodeAt(i - 1)));
    if (!escaped) continue;
    parts.push(Buffer.from(name.slice(plainFrom, i), 'utf8'), Buffer.of(unit - 0xdc00));
    plainFrom = i + 1;
  }
  parts.push(Buffer.from(name.slice(plainFrom), 'utf8'));
  return Buffer.concat(parts);
}

/**
 * What to give `node:fs` for a path the store made or listed: the path
 * itself, or its bytes when it holds a name that is not UTF-8 on disk (a
 * string with escaped bytes would reach the file system as U+FFFD, which
 * names another file or none).
 */
export function fsPath(path: string): string | Buffer {
  return ESCAPED_BYTE.test(path) ? nameToBytes(path) : path;
}

/** Whether a name holds escaped bytes, so its path must be given to the file system as bytes. */
export function hasEscapedBytes(name: string): boolean {
  return ESCAPED_BYTE.test(name);
}

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

/** The length of the valid UTF-8 sequence at `i`, or 0 when the byte there does not start one (Unicode table 3-7). */
function utf8SequenceLength(bytes: Buffer, i: number): number {
  const lead = bytes[i] as number;
  if (lead < 0x80) return 1;
  const cont = (at: number, low = 0x80, high = 0xbf): boolean => {
    const byte = bytes[i + at];
    return byte !== undefined && byte >= low && byte <= high;
  };
  if (lead >= 0xc2 && lead <= 0xdf) return cont(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const low = lead === 0xe0 ? 0xa0 : 0x80;
    const high = lead === 0xed ? 0x9f : 0xbf;
    return cont(1, low, high) && cont(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const low = lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xf4 ? 0x8f : 0xbf;
    return cont(1, low, high) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Throws `ERR_INVALID_AREA` unless `area` is `tmp`, `new` or `cur`. */
export function assertArea(area: unknown): asserts area is Area {
  if (area !== 'tmp' && area !== 'new' && area !== 'cur') {
    throw new FileStoreError('ERR_INVALID_AREA', `invalid area: ${describe(area)} (expected tmp, new or cur)`);
  }
}

function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  const shown = value.length > 64 ? `${value.slice(0, 64)}...` : value;
  return JSON.stringify(shown);
}

/** Escapes a hostname the maildir way, so it cannot add `/` or `:` to a name. */
export function escapeHostname(hostname: string): string {
  return hostname.replace(/[/:\\\0]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

/**
 * The random part, drawn once per process (and per thread: each has its own
 * module instance). Names of one process differ by their counter; the random
 * part tells processes apart whose pid, hostname and microsecond coincide
 * (containers sharing a volume are all pid 1). Drawing it per name cost five
 * times the rest of the name.
 */
const RANDOM = randomBytes(4).toString('hex');
const PROCESS_PART = `P${process.pid}${threadId === 0 ? '' : `T${threadId}`}Q`;
let counter = 0;
let lastHost = '';
let lastSuffix = '';

/**
 * A new unique name for this host. `escapedHost` must come from
 * {@link escapeHostname}.
 */
export function uniqueName(escapedHost: string): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  const fraction = micros - seconds * 1_000_000;
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  if (escapedHost !== lastHost) {
    lastHost = escapedHost;
    lastSuffix = `R${RANDOM}.${escapedHost}`;
  }
  return `${seconds}.M${fraction >= 100_000 ? fraction : String(fraction).padStart(6, '0')}${PROCESS_PART}${counter}${lastSuffix}`;
}
