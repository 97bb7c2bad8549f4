// Every process a spec file starts ends with the file, pass or fail: a
// vitest setup file (see vitest.config.ts). Each spec file's process marks
// its environment, which children inherit; after the file's last test, any
// process still running that carries the mark, or descends from this
// process, is killed (SIGKILL). Children a spec started with an environment
// of its own are caught as descendants while their parent lives.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { afterAll } from 'vitest';

const MARK = `FILESTORE_SPEC_RUN=${randomUUID()}`;
process.env.FILESTORE_SPEC_RUN = MARK.slice(MARK.indexOf('=') + 1);

/** The processes this spec file started that are still there (Linux: /proc). */
export function leftOver(): number[] {
  let pids: number[];
  try {
    pids = readdirSync('/proc')
      .filter((entry) => /^\d+$/.test(entry))
      .map(Number);
  } catch {
    return [];
  }
  const parent = new Map<number, number>();
  const found = new Set<number>();
  for (const pid of pids) {
    if (pid === process.pid) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      parent.set(pid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
      if (`\0${readFileSync(`/proc/${pid}/environ`, 'latin1')}`.includes(`\0${MARK}\0`)) found.add(pid);
    } catch {
      // gone already, or not ours to read
    }
  }
  const descends = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 64; p = parent.get(p), hops++) {
      if (p === process.pid) return true;
    }
    return false;
  };
  for (const pid of parent.keys()) if (descends(pid)) found.add(pid);
  return [...found];
}

afterAll(() => {
  for (const pid of leftOver()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
});
