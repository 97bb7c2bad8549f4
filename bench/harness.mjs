/**
 * What every scenario gets from the runner: its directories, fresh child
 * processes for contenders, alternating rounds with medians, and the rows of
 * the printed table (each target with PASS or MISS).
 *
 * A contender is a named export of a scenario file. `ctx.child()` runs it in
 * a fresh `node bench/child.mjs` process, so no contender inherits another's
 * heap, open files or JIT state; the export's resolved value comes back over IPC.
 */
import { fork, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./child.mjs', import.meta.url));

/** The median of a list of numbers. */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * This process's peak resident set size in MB. On Linux it is VmHWM, the
 * high-water mark of this process's own memory: `resourceUsage().maxRSS`
 * survives exec, so in a child spawned by a big parent it starts at the
 * parent's size and would blame the parent's memory on the contender.
 */
export function peakRssMB() {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]) / 1024;
  } catch {}
  return process.resourceUsage().maxRSS / 1024;
}

/** `n` formatted with thousands separators and `digits` decimals. */
export function fmt(n, digits = 0) {
  return Number(n).toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** A ratio as `1.23x`. */
export function ratio(n) {
  return `${n.toFixed(2)}x`;
}

/** Whether a command answers `--version` on this machine. */
export function hasCommand(command) {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Runs `fn` with a fresh directory under `base`, removed afterwards. */
export async function withDir(base, fn) {
  const dir = await mkdtemp(join(base, 'filestore-bench-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the export `name` of `moduleUrl` in a fresh Node process and resolves with its result. */
export function runChild(moduleUrl, name, args = {}, { execArgv = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [moduleUrl, name, JSON.stringify(args)], {
      execArgv,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let answer;
    child.on('message', (message) => {
      answer = message;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (answer?.type === 'result') resolve(answer.result);
      else if (answer?.type === 'error')
        reject(Object.assign(new Error(`${name}: ${answer.message}`), { code: answer.code }));
      else reject(new Error(`${name}: child exited with ${signal ?? code} and no result`));
    });
  });
}

/** The per-scenario context the runner hands to `run(ctx)`. */
export class Context {
  constructor({ id, title, options, execArgv }) {
    this.id = id;
    this.title = title;
    /** Whether `--full` was given. */
    this.full = options.full;
    /** Rounds per comparison; medians are taken over them. */
    this.rounds = options.rounds;
    /** Where CPU-bound comparisons run (a tmpfs when there is one). */
    this.cpuDir = options.cpuDir;
    /** Where durability comparisons run (the real disk). */
    this.diskDir = options.diskDir;
    this.rows = [];
    this.notes = [];
    this.samples = {};
    this.series = [];
    this.#execArgv = execArgv;
  }

  #execArgv;

  /** Runs a contender (a named export of `moduleUrl`) in a fresh child process, with extra Node flags. */
  child(moduleUrl, name, args, execArgv = []) {
    return runChild(moduleUrl, name, args, { execArgv: [...this.#execArgv, ...execArgv] });
  }

  /**
   * Runs each contender once per round, in turn (A B A B ...), and returns
   * `{ [name]: { median, samples, results } }`. `contenders` maps a name to
   * an async function resolving to `{ value, ... }`.
   */
  async alternate(label, contenders, rounds = this.rounds) {
    const results = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const [name, run] of Object.entries(contenders)) results[name].push(await run(round));
    }
    const summary = {};
    for (const [name, list] of Object.entries(results)) {
      const samples = list.map((r) => r.value);
      summary[name] = { median: median(samples), samples, results: list };
      this.samples[`${label} / ${name}`] = samples;
    }
    return summary;
  }

  /** A measured figure, shown in the table without a target. */
  measure(measure, value) {
    this.rows.push({ measure, value, target: '', result: '' });
  }

  /**
   * A figure with a target: PASS when `ok`, MISS otherwise, printed as is.
   * Targets come from the issue; never loosen one to make it pass.
   */
  check(measure, value, target, ok) {
    this.rows.push({ measure, value, target, result: ok ? 'PASS' : 'MISS' });
  }

  /** A line printed under the scenario (skipped peers, reduced sizes). */
  note(text) {
    this.notes.push(text);
    console.log(`  note: ${text}`);
  }

  /** A point of the chart of commits/s against concurrent writers. */
  point(series, writers, perSecond) {
    this.series.push({ series, writers, perSecond });
  }
}
