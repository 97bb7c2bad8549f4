/**
 * The arguments and options commands share, each with the function that
 * reads its text into a typed value. A command lists them in its
 * `defineCommand` spec; `run` then receives `Area`, `Durability`, numbers
 * and booleans, never raw strings to cast.
 */
import type { Area, Durability } from '../index.js';
import { assertArea, assertName } from '../names.js';
import { UsageError, type ArgSpec, type FlagSpec, type ValueSpec } from './command.js';

/** `DIR`: the store's directory. */
export const dir: ArgSpec<string> = { label: 'DIR', optional: false, store: true, read: required('DIR') };

/** `DIR` that may be left out (serve): `fallback` then. */
export function optionalDir(fallback: string): ArgSpec<string> {
  return { label: 'DIR', optional: true, store: true, read: (text) => text ?? fallback };
}

/** `NAME`: a valid store name (else `ERR_INVALID_NAME`, exit 2). */
export const name: ArgSpec<string> = {
  label: 'NAME',
  optional: false,
  read(text) {
    const value = required('NAME')(text);
    assertName(value);
    return value;
  },
};

/** `[NAME]`: a valid store name, or `undefined` when left out. */
export const optionalName: ArgSpec<string | undefined> = {
  label: 'NAME',
  optional: true,
  read(text) {
    if (text !== undefined) assertName(text);
    return text;
  },
};

/** `AREA` (label `label`, e.g. `FROM`): tmp, new or cur (else `ERR_INVALID_AREA`, exit 2). */
export function area(label = 'AREA'): ArgSpec<Area> {
  return {
    label,
    optional: false,
    read(text) {
      const value = required(label)(text);
      assertArea(value);
      return value;
    },
  };
}

/** `[AREA]`: one of `allowed`, `fallback` when left out. */
export function optionalArea<const T extends Area>(fallback: T, allowed: readonly T[]): ArgSpec<T> {
  return {
    label: 'AREA',
    optional: true,
    read(text) {
      const value = text ?? fallback;
      assertArea(value);
      const found = allowed.find((candidate) => candidate === value);
      if (found === undefined) throw new UsageError(`AREA must be ${orList(allowed)}, got ${JSON.stringify(value)}`);
      return found;
    },
  };
}

/** An option without a value. */
export function flag(short?: string): FlagSpec {
  return short === undefined ? { kind: 'flag' } : { kind: 'flag', short };
}

/** `--json`: print machine-readable JSON instead of text (one value per line), errors as JSON on stderr. */
export const json: FlagSpec = flag();

/** A text option; `undefined` when absent. */
export function text(): ValueSpec<string | undefined> {
  return { kind: 'value', read: (value) => value };
}

/** A non-negative integer option (at least `min`), `fallback` when absent. */
export function integer(fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): ValueSpec<number> {
  return {
    kind: 'value',
    read(value, option) {
      if (value === undefined) return fallback;
      const number = Number(value);
      if (!/^\d+$/.test(value) || number < min || !Number.isSafeInteger(number)) {
        throw new UsageError(`--${option} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
      }
      if (number > max) throw new UsageError(`--${option} must be at most ${max}, got ${number}`);
      return number;
    },
  };
}

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A duration option (`90s`, `15m`, `36h`, `2d`, `1.5h`, `500ms` or plain
 * milliseconds) in milliseconds; `undefined` when absent.
 */
export function duration(): ValueSpec<number | undefined> {
  return { kind: 'value', read: (value, option) => (value === undefined ? undefined : parseDuration(value, option)) };
}

/** Milliseconds of a duration text, or throws {@link UsageError} naming `--option`. */
export function parseDuration(value: string, option: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value);
  const unit = match === null ? undefined : UNITS[match[2] ?? 'ms'];
  const ms = match === null || unit === undefined ? Number.NaN : Number(match[1]) * unit;
  if (!Number.isFinite(ms)) {
    throw new UsageError(
      `--${option} must be a duration like 90s, 15m, 36h, 2d or milliseconds, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

/** `--durability MODE`: full, file or none (default full). */
export const durability: ValueSpec<Durability> = {
  kind: 'value',
  read(value, option) {
    if (value === undefined) return 'full';
    if (value === 'full' || value === 'file' || value === 'none') return value;
    throw new UsageError(`--${option} must be full, file or none, got ${JSON.stringify(value)}`);
  },
};

function required(label: string): (text: string | undefined) => string {
  return (text) => {
    if (text === undefined) throw new UsageError(`missing ${label}`);
    return text;
  };
}

function orList(values: readonly string[]): string {
  return values.length === 1 ? `${values[0]}` : `${values.slice(0, -1).join(', ')} or ${values.at(-1)}`;
}
