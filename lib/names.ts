/**
 * Store names and maildir-style unique names.
 *
 * A generated name is `<seconds>.M<micros>P<pid>[T<thread>]Q<counter>R<random>.<host>`:
 * the creation second first and the microseconds zero-padded to six digits,
 * so sorting names sorts them by age (to the microsecond, on one host); then an id
 * unique per process and call. The random part keeps names unique where pid
 * and hostname are not (containers sharing one volume are all pid 1).
 */
import { randomFillSync } from 'node:crypto';
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
 * 255 UTF-8 bytes, without `/` or NUL, not starting with `.`, and well-formed
 * Unicode (a lone surrogate has no UTF-8 spelling, so it could not round-trip).
 */
export function assertName(name: unknown): asserts name is string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.charCodeAt(0) === 0x2e ||
    name.includes('/') ||
    name.includes('\0') ||
    LONE_SURROGATE.test(name) ||
    Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES
  ) {
    throw new FileStoreError('ERR_INVALID_NAME', `invalid file name: ${describe(name)}`);
  }
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

const RANDOM_POOL_SIZE = 4096;
const randomPool = Buffer.alloc(RANDOM_POOL_SIZE);
let randomOffset = RANDOM_POOL_SIZE;
let counter = 0;

function randomHex(): string {
  if (randomOffset + 4 > RANDOM_POOL_SIZE) {
    randomFillSync(randomPool);
    randomOffset = 0;
  }
  const value = randomPool.readUInt32BE(randomOffset);
  randomOffset += 4;
  return value.toString(16).padStart(8, '0');
}

/**
 * A new unique name for this host. `escapedHost` must come from
 * {@link escapeHostname}.
 */
export function uniqueName(escapedHost: string): string {
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  const thread = threadId === 0 ? '' : `T${threadId}`;
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${seconds}.M${String(micros % 1_000_000).padStart(6, '0')}P${process.pid}${thread}Q${counter}R${randomHex()}.${escapedHost}`;
}
