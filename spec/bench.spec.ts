// The bench's own checks, at toy sizes and without timing: its claim and
// arrival checks count what really happened in child processes, and flag a
// duplicate when there is one.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from './helpers.js';
// @ts-expect-error plain .mjs bench modules carry no types
import { runChild } from '../bench/harness.mjs';
// @ts-expect-error plain .mjs bench modules carry no types
import { claimRun } from '../bench/6-claims.mjs';
// @ts-expect-error plain .mjs bench modules carry no types
import { storeRun } from '../bench/3-multi-process.mjs';

const CLAIMS = new URL('../bench/6-claims.mjs', import.meta.url).href;
const LOOP = new URL('../bench/commit-loop.mjs', import.meta.url).href;

describe('bench checks', () => {
  it('scenario 6: two claiming processes take 300 files, each exactly once', async () => {
    const dir = join(await tempDir(), 'store');
    const result = await claimRun(dir, 2, 300, (args: object) => runChild(CLAIMS, 'consumeAll', args));
    expect(result).toMatchObject({ claims: 300, duplicates: 0, unclaimed: 0, inCur: 300, leftInNew: 0 });
  });

  it('scenario 6: the check reports a file claimed twice', async () => {
    const dir = join(await tempDir(), 'store');
    const doubled = async () => ({ won: ['f0', 'f1'], start: 0, end: 1, cpuMs: 1 });
    const result = await claimRun(dir, 2, 3, doubled);
    expect(result).toMatchObject({ claims: 4, duplicates: 2, unclaimed: 1 });
  });

  it('scenario 3: two writer processes commit 100 files each, all arriving once', async () => {
    const dir = join(await tempDir(), 'store');
    const result = await storeRun(null, dir, 2, 100, (args: object) => runChild(LOOP, 'commitLoop', args));
    expect(result).toMatchObject({ files: 200, missing: 0, duplicated: 0, leftInTmp: 0, errors: [] });
  });
});
