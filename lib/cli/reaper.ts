/**
 * The watchdog that keeps a killed `consume` from leaving its CMD behind.
 *
 * `consume` runs each CMD in a process group of its own, so a timeout or a
 * signal reaches CMD and everything it started. If `consume` itself dies
 * (SIGKILL, OOM killer), nothing in it can act, and Linux's
 * PR_SET_PDEATHSIG is not reachable from Node. So `consume` starts this
 * small shell process once, in a group of its own too, and tells it through a
 * pipe which groups are live (`+PGID` / `-PGID` lines). When the pipe
 * closes (the kernel closes it however `consume` ended), the watchdog sends
 * SIGTERM to every group still listed, SIGKILL after the grace period, and
 * exits. `consume` starts it before its first CMD, so registering a CMD is
 * one pipe write right after its spawn. Limits: a process that leaves its
 * group (setsid, a daemon) is out of reach, and a SIGKILL landing between
 * the spawn of a CMD and that write (the same turn of the event loop)
 * leaves that CMD running. (Spawning the watchdog lazily at the first CMD
 * made that window a whole process start: the kill specs caught it.)
 */
import { type ChildProcess, spawn } from 'node:child_process';

/**
 * The watchdog's program, for `/bin/sh` (it starts in about a millisecond,
 * where a second Node process takes 50 ms and more on a loaded machine;
 * `consume` may be killed that soon). `$1`: the grace period in tenths of a
 * second, during which it looks every 0.1 s whether the groups are gone.
 */
const SCRIPT = `trap '' INT HUP
groups=''
while IFS= read -r line; do
  case $line in
    +*) groups="$groups \${line#+}" ;;
    -*) kept=''; for g in $groups; do [ "$g" = "\${line#-}" ] || kept="$kept $g"; done; groups=$kept ;;
  esac
done
live=''
for g in $groups; do kill -s TERM -- "-$g" 2>/dev/null && live="$live $g"; done
ticks=$1
while [ -n "$live" ] && [ "$ticks" -gt 0 ]; do
  sleep 0.1
  ticks=$((ticks - 1))
  left=''; for g in $live; do kill -s 0 -- "-$g" 2>/dev/null && left="$left $g"; done; live=$left
done
for g in $live; do kill -s KILL -- "-$g" 2>/dev/null; done
exit 0
`;

/** The parent's side of the watchdog: register and release process groups. */
export class Reaper {
  readonly #child: ChildProcess;

  /** Starts the watchdog; `grace` ms pass between its SIGTERM and its SIGKILL. */
  constructor(grace: number) {
    this.#child = spawn('/bin/sh', ['-c', SCRIPT, 'maildir-filestore-reaper', String(Math.ceil(grace / 100))], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    this.#child.on('error', () => {}); // without a watchdog consume still works; only the SIGKILL case is uncovered
    this.#child.stdin?.on('error', () => {});
    this.#child.unref();
    (this.#child.stdin as { unref?: () => void } | null)?.unref?.();
  }

  /** Process group `pgid` is to be killed if this process dies. */
  watch(pgid: number): void {
    this.#child.stdin?.write(`+${pgid}\n`);
  }

  /** Process group `pgid` is empty: nothing to kill any more. */
  release(pgid: number): void {
    this.#child.stdin?.write(`-${pgid}\n`);
  }

  /** Closes the pipe: the watchdog kills the groups still watched and exits. */
  close(): void {
    this.#child.stdin?.end();
  }
}

/**
 * Sends `signal` to process group `pgid`; `false` when the group is empty
 * (`ESRCH`). Signal 0 only asks whether any process of the group is left.
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}
