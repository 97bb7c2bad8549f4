// Power loss, not only process kills (guarantee 2 at durability `full`).
// A SIGKILL keeps the page cache; a power cut does not. The explorer records
// the file-system calls of a workload under strace (commits at every
// durability, a durable overwrite, claims, moves, copies with and without
// overwrite, a remove, an import), rebuilds the crash states the model in
// spec/power-loss/crash-model.ts allows at every call boundary, and checks the
// guarantees in each: docs/reliability.md states the model and the figures.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { DIST } from './helpers.js';
import { explore, record, renameBeforeFsync, type Violation } from './power-loss/explorer.js';
import { rounds, TIMEOUT } from './reliability.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

/** Crash states are rebuilt on /dev/shm where there is one: thousands of small stores, written and read back. */
const SCRATCH_BASE = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
const made: string[] = [];
afterEach(async () => {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(SCRATCH_BASE, 'filestore-power-loss-'));
  made.push(dir);
  return dir;
}

/** Crash states tried at each call boundary: 12 in `npm test`, 200 in the soak. */
const PER_POINT = rounds(12, 200);

const hasStrace = (() => {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

function summary(violations: Violation[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const { rule, file } of violations) {
    const key = `${rule} ${file.split('/')[0]}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

function report(level: string, result: { states: number; points: number; violations: Violation[] }): void {
  const first = result.violations[0];
  console.log(
    `power-loss ${level}: ${result.points} crash points, ${result.states} states, ${result.violations.length} violations`,
    summary(result.violations),
    first === undefined ? '' : `\nfirst: ${first.rule} ${first.file} after:\n  ${first.prefix.slice(-6).join('\n  ')}`,
  );
}

// strace is a Debian package `.ci/run` installs; without it the trace cannot be recorded.
describe.skipIf(!hasStrace)('power-loss explorer', () => {
  it(
    'full: every acknowledged commit, claim, move, copy and remove survives every crash state, none partial',
    async () => {
      const dir = await tempDir();
      const result = await explore(await record(dir, 'full', DIST), `${dir}/scratch`, PER_POINT);
      report('full', result);
      expect(result.states).toBeGreaterThanOrEqual(1000);
      expect(result.violations.map((v) => `${v.rule} ${v.file} at ${v.point}`)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'file: finds the commits a crash may lose (no directory fsync), but never a partial file',
    async () => {
      const dir = await tempDir();
      const result = await explore(await record(dir, 'file', DIST), `${dir}/scratch`, PER_POINT);
      report('file', result);
      const rules = new Set(result.violations.map((v) => v.rule));
      expect(rules.has('lost')).toBe(true);
      expect(rules.has('partial')).toBe(false);
    },
    TIMEOUT,
  );

  it(
    'none: finds partial files in new/ (no fsync at all)',
    async () => {
      const dir = await tempDir();
      const result = await explore(await record(dir, 'none', DIST), `${dir}/scratch`, PER_POINT);
      report('none', result);
      expect(result.violations.filter((v) => v.rule === 'partial' && v.file.startsWith('new/')).length).toBeGreaterThan(
        0,
      );
    },
    TIMEOUT,
  );

  it(
    'catches a writer that renames before it fsyncs its data',
    async () => {
      const dir = await tempDir();
      const recording = await record(dir, 'full', DIST);
      const mutated = { ...recording, events: renameBeforeFsync(recording.events) };
      expect(mutated.events).not.toEqual(recording.events);
      const result = await explore(mutated, `${dir}/scratch`, PER_POINT);
      report('full, rename before fsync', result);
      expect(result.violations.some((v) => v.rule === 'partial' && v.file.startsWith('new/'))).toBe(true);
    },
    TIMEOUT,
  );
});
