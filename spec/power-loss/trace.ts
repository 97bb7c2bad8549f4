// Reads an `strace -f -xx` trace into the file-system events the crash model
// needs: creations, writes, fsyncs, renames, links, unlinks, and the journal's
// begin/ack records, in the order the calls completed.

/** One completed system call that matters to the crash model. */
export type TraceEvent =
  | { kind: 'open'; path: string; fd: number; created: boolean; truncate: boolean; directory: boolean }
  | { kind: 'write'; fd: number; offset: number | null; data: Buffer }
  | { kind: 'fsync'; fd: number }
  | { kind: 'close'; fd: number }
  | { kind: 'rename'; from: string; to: string }
  | { kind: 'link'; from: string; to: string }
  | { kind: 'unlink'; path: string }
  | { kind: 'truncate'; fd: number; length: number }
  | { kind: 'journal'; record: JournalRecord }
  /** A call the model does not know how to replay on a store path: the explorer refuses the trace. */
  | { kind: 'unsupported'; call: string; line: string };

/** A line of the workload's journal. */
export interface JournalRecord {
  phase: 'begin' | 'ack';
  /** Pairs an acknowledgement with its begin. */
  id: number;
  op: 'commit' | 'claim' | 'move' | 'copy' | 'remove' | 'import';
  name?: string;
  names?: string[];
  area?: string;
  from?: string;
  to?: string;
  sha?: string;
  won?: boolean;
  overwrite?: boolean;
}

/** The system calls to trace, for `strace -e trace=`. */
export const TRACED_CALLS = [
  'open',
  'openat',
  'creat',
  'write',
  'pwrite64',
  'writev',
  'pwritev',
  'pwritev2',
  'fsync',
  'fdatasync',
  'sync_file_range',
  'close',
  'rename',
  'renameat',
  'renameat2',
  'link',
  'linkat',
  'unlink',
  'unlinkat',
  'ftruncate',
  'truncate',
  'fallocate',
  'copy_file_range',
  'sendfile',
  'symlink',
  'mkdir',
  'rmdir',
  'dup',
  'dup2',
  'dup3',
  'io_uring_setup',
].join(',');

const LINE = /^(\d+)\s+(.*)$/;
const CALL = /^([a-z0-9_]+)\((.*)\)\s+=\s+(-?\d+|\?)(.*)$/s;
const RESUMED = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/s;

/** Parses a trace; `isStorePath` says which paths are the store's, `journalPath` is the journal file. */
export function parseTrace(text: string, isStorePath: (path: string) => boolean, journalPath: string): TraceEvent[] {
  const pending = new Map<string, string>();
  const events: TraceEvent[] = [];
  const fds = new Map<number, 'store' | 'journal' | 'other'>();
  for (const raw of text.split('\n')) {
    const match = LINE.exec(raw);
    if (match === null) continue;
    const [, pid = '', rest = ''] = match;
    let line = rest;
    if (line.endsWith(' <unfinished ...>')) {
      pending.set(pid, line.slice(0, -' <unfinished ...>'.length));
      continue;
    }
    const resumed = RESUMED.exec(line);
    if (resumed !== null) {
      line = (pending.get(pid) ?? `${resumed[1]}(`) + (resumed[2] ?? '');
      pending.delete(pid);
    }
    const call = CALL.exec(line);
    if (call === null) continue;
    const [, name = '', args = '', result = '?'] = call;
    const ret = Number(result);
    if (!(ret >= 0)) continue; // failed calls change nothing
    const event = toEvent(name, args, ret, fds, isStorePath, journalPath, line);
    if (event !== null) events.push(event);
  }
  return events;
}

function toEvent(
  call: string,
  args: string,
  ret: number,
  fds: Map<number, 'store' | 'journal' | 'other'>,
  isStorePath: (path: string) => boolean,
  journalPath: string,
  line: string,
): TraceEvent | null {
  const list = splitArgs(args);
  const fd0 = Number(list[0]);
  const kindOf = (fd: number) => fds.get(fd) ?? 'other';
  switch (call) {
    case 'open':
    case 'openat': {
      const path = decode(list[call === 'openat' ? 1 : 0] ?? '').toString();
      const flags = list[call === 'openat' ? 2 : 1] ?? '';
      const owner = path === journalPath ? 'journal' : isStorePath(path) ? 'store' : 'other';
      fds.set(ret, owner);
      if (owner !== 'store') return null;
      return {
        kind: 'open',
        path,
        fd: ret,
        created: flags.includes('O_CREAT'),
        truncate: flags.includes('O_TRUNC'),
        directory: flags.includes('O_DIRECTORY'),
      };
    }
    case 'close':
      if (kindOf(fd0) === 'other') return null;
      fds.delete(fd0);
      return { kind: 'close', fd: fd0 };
    case 'write':
    case 'pwrite64':
    case 'writev':
    case 'pwritev':
    case 'pwritev2': {
      const owner = kindOf(fd0);
      if (owner === 'other') return null;
      const vectored = call.includes('writev');
      const data = (vectored ? iovecs(list[1] ?? '') : decode(list[1] ?? '')).subarray(0, ret);
      if (owner === 'journal') {
        return { kind: 'journal', record: JSON.parse(data.toString()) as JournalRecord };
      }
      const offsetArg = call === 'write' || call === 'writev' ? undefined : list[3];
      return { kind: 'write', fd: fd0, offset: offsetArg === undefined ? null : Number(offsetArg), data };
    }
    case 'fsync':
    case 'fdatasync':
      return kindOf(fd0) === 'store' ? { kind: 'fsync', fd: fd0 } : null;
    case 'ftruncate':
      return kindOf(fd0) === 'store' ? { kind: 'truncate', fd: fd0, length: Number(list[1]) } : null;
    case 'rename':
    case 'link': {
      const from = decode(list[0] ?? '').toString();
      const to = decode(list[1] ?? '').toString();
      if (!isStorePath(from) && !isStorePath(to)) return null;
      return { kind: call, from, to };
    }
    case 'unlink': {
      const path = decode(list[0] ?? '').toString();
      return isStorePath(path) ? { kind: 'unlink', path } : null;
    }
    case 'dup':
    case 'dup2':
    case 'dup3':
      if (kindOf(fd0) !== 'other') return { kind: 'unsupported', call, line };
      fds.set(ret, 'other');
      return null;
    case 'io_uring_setup':
      return { kind: 'unsupported', call, line };
    default: {
      // path-taking calls the model does not replay: refuse them on store paths
      const paths = list.filter((a) => a.startsWith('"')).map((a) => decode(a).toString());
      const onFd = !Number.isNaN(fd0) && kindOf(fd0) === 'store';
      return paths.some(isStorePath) || onFd ? { kind: 'unsupported', call, line } : null;
    }
  }
}

/** Splits top-level arguments at commas outside strings, brackets and braces. */
function splitArgs(args: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < args.length; i++) {
    const c = args[i];
    if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') depth--;
    else if (c === ',' && depth === 0) {
      out.push(args.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(args.slice(start).trim());
  return out;
}

/** The bytes of a quoted `-xx` string ("\x41\x42"), or of a plain quoted string. */
function decode(quoted: string): Buffer {
  const body = quoted.replace(/^"/, '').replace(/"(\.\.\.)?$/, '');
  if (quoted.endsWith('"...')) throw new Error(`truncated string in trace: raise strace -s (${quoted.slice(0, 40)})`);
  const bytes: number[] = [];
  for (let i = 0; i < body.length; i++) {
    if (body[i] === '\\' && body[i + 1] === 'x') {
      bytes.push(Number.parseInt(body.slice(i + 2, i + 4), 16));
      i += 3;
    } else bytes.push(body.charCodeAt(i));
  }
  return Buffer.from(bytes);
}

/** The concatenated buffers of a `writev` argument: [{iov_base="..", iov_len=N}, ...]. */
function iovecs(arg: string): Buffer {
  const parts = [...arg.matchAll(/iov_base=("(?:[^"\\]|\\.)*"(?:\.\.\.)?)/g)].map((m) => decode(m[1] ?? '""'));
  return Buffer.concat(parts);
}
