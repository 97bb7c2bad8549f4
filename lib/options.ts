/**
 * Refusing option keys nobody reads: a misspelt option (`durabilty`) would
 * otherwise be ignored in silence and its default used.
 */
import { FileStoreError } from './errors.js';

/** The keys an options object may have, `satisfies`-checked against its interface so none is forgotten. */
export type OptionKeys<T> = Record<keyof T, true>;

/**
 * Throws `ERR_INVALID_OPTION` when `options` is neither `undefined` nor an
 * object, or has an own key not in `known` (the message names the closest
 * known key).
 * @param what The call the options belong to, for the message (`new FileStore()`).
 */
export function assertOptionKeys(options: unknown, known: Readonly<Record<string, true>>, what: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') {
    throw new FileStoreError('ERR_INVALID_OPTION', `the options of ${what} must be an object`);
  }
  for (const key of Object.keys(options)) {
    if (Object.hasOwn(known, key)) continue;
    const names = Object.keys(known);
    const hint = closest(key, names);
    throw new FileStoreError(
      'ERR_INVALID_OPTION',
      `unknown option ${JSON.stringify(key)} of ${what}${hint === undefined ? '' : ` (did you mean ${hint}?)`}; known: ${names.join(', ') || 'none'}`,
    );
  }
}

/** The known name within two edits of `key`, if any. */
function closest(key: string, names: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const name of names) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [name, distance];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(substitute, (previous[j] as number) + 1, (current[j - 1] as number) + 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
