// The crash model: what a Linux file system may still hold after a power cut
// at a given point of a trace, stated conservatively (what POSIX and the
// kernel promise, not what ext4 happens to do):
//
// - File data: what was written and then fsynced stays. What was written
//   after a file's last fsync may be lost, or persisted in part: the state
//   holds the synced bytes plus any prefix of the later writes, the last one
//   possibly cut short.
// - Directory entries: each directory keeps a log of its entry changes
//   (create, rename in or out, link, unlink). An fsync of the directory
//   persists every change before it. Later changes may or may not have
//   persisted, but in their order within the directory: the state holds a
//   prefix of each directory's log, at least up to its last fsync.
//   Directories are independent of each other: a link into cur/ and the
//   unlink from new/ that follows it may persist in either order. One
//   assumption is less strict: a rename between two directories never
//   persists its removal without its addition (every journaling file system
//   commits a rename as one transaction); it may persist the addition alone,
//   which leaves the file under both names.
//
// Each crash point (a boundary between two system calls) yields a bounded
// set of states: every directory at its least and its most, each directory
// alone at its least or most against the others, the intermediate prefixes,
// one file at a time cut short, and seeded random combinations.
import type { TraceEvent } from './trace.js';

/** A crash state: the content of every file in the store's areas, by `area/name`. */
export type CrashState = Map<string, Buffer>;

interface Inode {
  data: Buffer;
  /** The content as of the last fsync. */
  synced: Buffer;
  /** Writes since the last fsync, in order, to build partly persisted contents. */
  pending: Array<{ offset: number; data: Buffer }>;
}

interface Directory {
  initial: Map<string, number>;
  /**
   * Entry changes in order: a name set to an inode, or removed (null). A
   * rename's removal from its source directory names the addition it needs.
   */
  log: Array<{ name: string; inode: number | null; needs?: { dir: string; index: number } }>;
  /** How much of the log an fsync has persisted. */
  synced: number;
}

type DataChoice = 'synced' | 'partial' | 'all';

/** Replays trace events and describes the crash states at each point. */
export class CrashModel {
  readonly #inodes = new Map<number, Inode>();
  readonly #dirs = new Map<string, Directory>();
  readonly #fds = new Map<number, { inode: number; position: number } | { dir: string }>();
  #nextInode = 1;

  /** Starts from a store whose areas hold `files` (`area/name` -> content), all of it durable. */
  constructor(areas: string[], files: CrashState) {
    for (const area of areas) this.#dirs.set(area, { initial: new Map(), log: [], synced: 0 });
    for (const [key, data] of files) {
      const [area = '', name = ''] = key.split('/');
      const inode = this.#nextInode++;
      this.#inodes.set(inode, { data, synced: data, pending: [] });
      this.#dirs.get(area)?.initial.set(name, inode);
    }
  }

  /** Applies one event; `locate` maps a store path to its area directory and name (null outside the areas). */
  apply(event: TraceEvent, locate: (path: string) => { dir: string; name: string | null } | null): void {
    switch (event.kind) {
      case 'open':
        return this.#open(event, locate);
      case 'write':
        return this.#write(event.fd, event.offset, event.data);
      case 'truncate':
        return this.#truncate(event.fd, event.length);
      case 'fsync':
        return this.#fsync(event.fd);
      case 'close':
        this.#fds.delete(event.fd);
        return;
      case 'rename':
      case 'link':
        return this.#relink(event.kind, locate(event.from), locate(event.to));
      case 'unlink': {
        const at = locate(event.path);
        if (at?.name) this.#change(at.dir, at.name, null);
        return;
      }
      case 'journal':
        return;
      case 'unsupported':
        throw new Error(`the crash model cannot replay ${event.call} on a store path: ${event.line}`);
    }
  }

  #open(
    event: Extract<TraceEvent, { kind: 'open' }>,
    locate: (path: string) => { dir: string; name: string | null } | null,
  ) {
    const at = locate(event.path);
    if (at === null) return;
    if (at.name === null) {
      this.#fds.set(event.fd, { dir: at.dir });
      return;
    }
    let inode = this.#current(at.dir).get(at.name);
    if (inode === undefined) {
      if (!event.created) throw new Error(`open of a missing file in the model: ${event.path}`);
      inode = this.#nextInode++;
      this.#inodes.set(inode, { data: Buffer.alloc(0), synced: Buffer.alloc(0), pending: [] });
      this.#change(at.dir, at.name, inode);
    } else if (event.truncate) this.#truncateInode(inode, 0);
    this.#fds.set(event.fd, { inode, position: 0 });
  }

  #write(fd: number, offset: number | null, data: Buffer): void {
    const handle = this.#fds.get(fd);
    if (handle === undefined || !('inode' in handle)) throw new Error(`write to an unknown descriptor ${fd}`);
    const at = offset ?? handle.position;
    const file = this.#inode(handle.inode);
    file.data = spliced(file.data, at, data);
    file.pending.push({ offset: at, data });
    if (offset === null) handle.position = at + data.length;
  }

  #truncate(fd: number, length: number): void {
    const handle = this.#fds.get(fd);
    if (handle !== undefined && 'inode' in handle) this.#truncateInode(handle.inode, length);
  }

  #truncateInode(inode: number, length: number): void {
    const file = this.#inode(inode);
    file.data = Buffer.from(file.data.subarray(0, length));
    // a truncation not yet synced may be lost: model it as the synced data, then the shorter file
    file.pending.push({ offset: -1, data: Buffer.alloc(length) });
  }

  #fsync(fd: number): void {
    const handle = this.#fds.get(fd);
    if (handle === undefined) throw new Error(`fsync of an unknown descriptor ${fd}`);
    if ('dir' in handle) {
      const dir = this.#dir(handle.dir);
      dir.synced = dir.log.length;
      return;
    }
    const file = this.#inode(handle.inode);
    file.synced = file.data;
    file.pending = [];
  }

  #relink(
    kind: 'rename' | 'link',
    from: { dir: string; name: string | null } | null,
    to: { dir: string; name: string | null } | null,
  ): void {
    if (from?.name == null || to?.name == null) throw new Error(`${kind} outside the store's areas`);
    const inode = this.#current(from.dir).get(from.name);
    if (inode === undefined) throw new Error(`${kind} of a file missing in the model: ${from.dir}/${from.name}`);
    if (kind === 'rename' && from.dir === to.dir && from.name === to.name) return;
    this.#change(to.dir, to.name, inode);
    if (kind !== 'rename') return;
    const target = this.#dir(to.dir);
    this.#change(
      from.dir,
      from.name,
      null,
      from.dir === to.dir ? undefined : { dir: to.dir, index: target.log.length - 1 },
    );
  }

  #change(dir: string, name: string, inode: number | null, needs?: { dir: string; index: number }): void {
    this.#dir(dir).log.push(needs === undefined ? { name, inode } : { name, inode, needs });
  }

  #dir(name: string): Directory {
    const dir = this.#dirs.get(name);
    if (dir === undefined) throw new Error(`unknown area ${name}`);
    return dir;
  }

  #inode(id: number): Inode {
    const inode = this.#inodes.get(id);
    if (inode === undefined) throw new Error(`unknown inode ${id}`);
    return inode;
  }

  #entries(dir: string, upTo: number): Map<string, number> {
    const { initial, log } = this.#dir(dir);
    const entries = new Map(initial);
    for (const { name, inode } of log.slice(0, upTo)) {
      if (inode === null) entries.delete(name);
      else entries.set(name, inode);
    }
    return entries;
  }

  #current(dir: string): Map<string, number> {
    return this.#entries(dir, this.#dir(dir).log.length);
  }

  /** The crash states at this point: at most `budget` distinct ones, chosen as the header describes. */
  states(budget: number, random: () => number): CrashState[] {
    const dirs = [...this.#dirs.keys()];
    const unsynced = [...this.#inodes.entries()].filter(([, f]) => f.pending.length > 0).map(([id]) => id);
    const least = (d: string) => this.#dir(d).synced;
    const most = (d: string) => this.#dir(d).log.length;
    const plans: Array<{ prefix: Map<string, number>; data: Map<number, DataChoice> }> = [];
    const plan = (prefix: (d: string) => number, data: (inode: number) => DataChoice) =>
      plans.push({
        prefix: new Map(dirs.map((d) => [d, prefix(d)])),
        data: new Map(unsynced.map((i) => [i, data(i)])),
      });
    for (const data of ['synced', 'all'] as const) {
      plan(least, () => data);
      plan(most, () => data);
      for (const d of dirs) {
        plan(
          (x) => (x === d ? least(x) : most(x)),
          () => data,
        );
        plan(
          (x) => (x === d ? most(x) : least(x)),
          () => data,
        );
        for (let p = least(d) + 1; p < most(d); p++)
          plan(
            (x) => (x === d ? p : most(x)),
            () => data,
          );
      }
    }
    for (const inode of unsynced) plan(most, (i) => (i === inode ? 'partial' : 'all'));
    for (let r = 0; r < budget; r++) {
      const choices: DataChoice[] = ['synced', 'partial', 'all'];
      plan(
        (d) => least(d) + Math.floor(random() * (most(d) - least(d) + 1)),
        () => choices[Math.floor(random() * 3)] ?? 'all',
      );
    }
    const seen = new Set<string>();
    const out: CrashState[] = [];
    for (const { prefix, data } of plans) {
      const state = this.#build(prefix, data);
      const key = fingerprint(state);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(state);
      if (out.length === budget) break;
    }
    return out;
  }

  #build(prefix: Map<string, number>, data: Map<number, DataChoice>): CrashState {
    // a rename's removal stays out of a state whose target directory lacks its addition
    for (let changed = true; changed; ) {
      changed = false;
      for (const [dir, upTo] of prefix) {
        const cut = this.#dir(dir)
          .log.slice(0, upTo)
          .findIndex((c) => c.needs !== undefined && c.needs.index >= (prefix.get(c.needs.dir) ?? 0));
        if (cut >= 0) {
          prefix.set(dir, cut);
          changed = true;
        }
      }
    }
    const state: CrashState = new Map();
    for (const [dir, upTo] of prefix) {
      for (const [name, inode] of this.#entries(dir, upTo)) {
        state.set(`${dir}/${name}`, this.#content(inode, data.get(inode) ?? 'all'));
      }
    }
    return state;
  }

  #content(id: number, choice: DataChoice): Buffer {
    const file = this.#inode(id);
    if (choice === 'all' || file.pending.length === 0) return file.data;
    if (choice === 'synced') return file.synced;
    // the synced data, then the first half of the later writes, the last of them cut in two
    let data = file.synced;
    const count = Math.ceil(file.pending.length / 2);
    for (const [i, write] of file.pending.slice(0, count).entries()) {
      if (write.offset < 0) data = Buffer.from(data.subarray(0, write.data.length));
      else {
        const part = i === count - 1 ? write.data.subarray(0, Math.floor(write.data.length / 2)) : write.data;
        data = spliced(data, write.offset, part);
      }
    }
    return data;
  }
}

function spliced(data: Buffer, offset: number, part: Buffer): Buffer {
  const out = Buffer.alloc(Math.max(data.length, offset + part.length));
  data.copy(out);
  part.copy(out, offset);
  return out;
}

function fingerprint(state: CrashState): string {
  return [...state.entries()]
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}:${v.length}:${v.subarray(0, 64).toString('hex')}:${v.subarray(-64).toString('hex')}`)
    .join('|');
}
