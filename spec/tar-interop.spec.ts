// Archives other tools made, imported: the tar test data of node-tar,
// tar-stream, libarchive and CPython (spec/fixtures/interop, sources and
// licences in its README), each archive into a fresh store. Every outcome
// (the files committed, byte for byte, and the error code) is checked three
// ways: against Python's tarfile reading the same bytes, live
// (tar-interop-oracle.py); against the table pinned in
// tar-interop.outcomes.json, with GNU tar's exit status for the archive;
// and, where the import and Python part ways, against the table's `python`
// outcome and its reason. docs/tar-interop.md summarises the run, and a spec
// here checks that it still does.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { brotliDecompressSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FileStore, type ImportTarError } from '../lib/index.js';
import { fsPath, nameToBytes } from '../lib/names.js';
import { MAX_SPARSE_HOLES } from '../lib/tar/import.js';
import { docText } from './doc-blocks.js';
import { tempDir } from './helpers.js';

const run = promisify(execFile);

const HERE = dirname(fileURLToPath(import.meta.url));
const FIXTURES = join(HERE, 'fixtures/interop/third-party-tar-fixtures.tar.xz');
const ORACLE = join(HERE, 'tar-interop-oracle.py');
const TABLE_FILE = join(HERE, 'tar-interop.outcomes.json');
const SUMMARY_DOC = 'docs/tar-interop.md';

/** How long one import may take before it counts as hung (generous: the largest fixture is 8 MB). */
const HANG_BOUND_MS = 30_000;

/** What an import did: the names it committed, in order, and the code it rejected with (`null`: it resolved). */
interface Outcome {
  committed: string[];
  code: string | null;
}

/** One fixture's pinned row. */
interface Row extends Outcome {
  /** GNU tar's exit status listing the archive (`tar -tf`). */
  gnu: number;
  /** What Python's reading leads to, where it is not the import's outcome (then `why` says why). */
  python?: Outcome;
  /** Why the import differs from Python or GNU tar here. */
  why?: string;
}

const TABLE = JSON.parse(readFileSync(TABLE_FILE, 'utf8')) as Record<string, Row>;

const LZOP = 'lzop compression: bsdcat needs the lzop program, which .ci/run does not install';
/** The fixture files that are not tar archives, or that only tools this suite does not install can unpack. */
const OUT_OF_SCOPE: Record<string, string> = {
  'libarchive/libarchive__test_compat_lzop_1.tar.lzo': LZOP,
  'libarchive/libarchive__test_compat_lzop_2.tar.lzo': LZOP,
  'libarchive/libarchive__test_compat_lzop_3.tar.lzo': LZOP,
  'libarchive/libarchive__test_read_filter_lzop.tar.lzo': LZOP,
  'libarchive/libarchive__test_read_filter_lzop_multiple_parts.tar.lzo': LZOP,
  'libarchive/tar__test_extract.tar.lzo': LZOP,
  'libarchive/libarchive__test_read_filter_grzip.tar.grz': 'grzip compression: needs the grzip program, not installed',
  'libarchive/tar__test_extract.tar.grz': 'grzip compression: needs the grzip program, not installed',
  'libarchive/libarchive__test_read_filter_lrzip.tar.lrz': 'lrzip compression: needs the lrzip program, not installed',
  'libarchive/tar__test_extract.tar.lrz': 'lrzip compression: needs the lrzip program, not installed',
  'libarchive/libarchive__test_read_format_lha_symlink_missing_target.lzh': 'an LHA archive, not tar',
  'libarchive/libarchive__test_read_format_rar5_bad_window_sz_in_mltarc_file.rar': 'a RAR archive, not tar',
};

/** Compressed tars, unpacked before the import: brotli by node:zlib, the rest by bsdcat (libarchive, in .ci/run). */
const COMPRESSED = /\.(?:Z|gz|tgz|bz2|xz|lzma|lz|lz4|zst|tzst|tbr)$/;

/** One member as Python's tarfile reads it (see tar-interop-oracle.py). */
interface PythonMember {
  /** The name, each byte that is not UTF-8 as U+DC00 + byte. */
  name: string;
  /** The name's bytes, in hex. */
  bytes: string;
  type: string;
  size: number;
  holes: number;
  sha256?: string;
  unread?: true;
}

interface PythonReading {
  members: PythonMember[];
  error: string | null;
}

let work: string;
/** Each in-scope fixture's tar (the fixture itself, or its decompressed bytes). */
const tarOf = new Map<string, string>();
let python: Record<string, PythonReading>;
/** Each fixture's outcome and what Python's reading says of it, for the summary. */
const seen = new Map<string, { outcome: Outcome; derived: Derived }>();
let fixtureFiles: string[];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'filestore-interop-'));
  const unpacked = join(work, 'fixtures');
  await mkdir(unpacked);
  await run('tar', ['-xJf', FIXTURES, '-C', unpacked]);
  fixtureFiles = (await readdir(unpacked, { recursive: true, withFileTypes: true }))
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(unpacked.length + 1))
    .sort();
  await mkdir(join(work, 'decompressed'));
  for (const fixture of fixtureFiles) {
    if (fixture in OUT_OF_SCOPE) continue;
    const file = join(unpacked, fixture);
    if (!COMPRESSED.test(fixture)) {
      tarOf.set(fixture, file);
      continue;
    }
    const tar = join(work, 'decompressed', `${fixture.replaceAll('/', '__')}.tar`);
    const bytes = fixture.endsWith('.tbr')
      ? brotliDecompressSync(await readFile(file))
      : (await run('bsdcat', [file], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 })).stdout;
    await writeFile(tar, bytes);
    tarOf.set(fixture, tar);
  }
  const { stdout } = await run('python3', [ORACLE, String(MAX_SPARSE_HOLES), ...tarOf.values()], {
    maxBuffer: 64 * 1024 * 1024,
  });
  const byTar = JSON.parse(stdout) as Record<string, PythonReading>;
  python = Object.fromEntries([...tarOf].map(([fixture, tar]) => [fixture, byTar[tar] as PythonReading]));
}, 120_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

/** The types Python's `isreg()` takes for a regular file: regular, old regular, contiguous, GNU sparse. */
const REGULAR = new Set(['0', '\0', '7', 'S']);
const KIND: Record<string, string> = {
  '1': 'a hard link',
  '2': 'a symbolic link',
  '3': 'a device',
  '4': 'a device',
  '5': 'a directory',
  '6': 'a FIFO',
};

/** Members the import passes over: a GNU volume label (it names the archive), the archive's root directory. */
function passedOver(member: PythonMember): boolean {
  return member.type === 'V' || (member.type === '5' && (member.bytes === '' || member.bytes === '2e'));
}

/** Why a member's name (a leading `./` dropped) is not a store name, or `null` when it is one. */
function nameProblem(bytes: Buffer): string | null {
  if (bytes.length === 0) return 'an empty name';
  if (bytes.includes(0x2f)) return 'a path (a name with /)';
  if (bytes[0] === 0x2e) return 'a name starting with a dot';
  if (bytes.length > 255) return 'a name over 255 bytes';
  return null;
}

/** An outcome and what ended the import there, in words (the summary's categories). */
interface Derived extends Outcome {
  why: string;
}

/**
 * The outcome Python's reading leads to: the regular files with store names,
 * committed in order, until the first member that is not one (ERR_UNSAFE_ENTRY;
 * so too a sparse file taking the holes past the budget), a name met twice
 * (EEXIST), or a member Python could not read, or any error of Python's
 * (ERR_CORRUPT_ARCHIVE, after the files before it).
 */
function derive(reading: PythonReading): Derived {
  const committed: string[] = [];
  let holes = 0;
  const stop = (code: string, why: string): Derived => ({ committed, code, why });
  for (const member of reading.members) {
    if (passedOver(member)) continue;
    if (!REGULAR.has(member.type))
      return stop('ERR_UNSAFE_ENTRY', KIND[member.type] ?? `a member of type ${JSON.stringify(member.type)}`);
    const dotSlash = member.bytes.startsWith('2e2f');
    const problem = nameProblem(Buffer.from(dotSlash ? member.bytes.slice(4) : member.bytes, 'hex'));
    if (problem !== null) return stop('ERR_UNSAFE_ENTRY', problem);
    holes += member.holes;
    if (holes > MAX_SPARSE_HOLES) return stop('ERR_UNSAFE_ENTRY', 'sparse holes over the budget');
    if (member.sha256 === undefined) return stop('ERR_CORRUPT_ARCHIVE', 'a member cut short');
    const name = dotSlash ? member.name.slice(2) : member.name;
    if (committed.includes(name)) return stop('EEXIST', 'a name twice');
    committed.push(name);
  }
  if (reading.error !== null) return stop('ERR_CORRUPT_ARCHIVE', 'damaged or cut short');
  return { committed, code: null, why: 'imported whole' };
}

/** The outcome a row pins. */
function expected({ committed, code }: Row): Outcome {
  return { committed, code };
}

/** Imports `file` into `store`; a hang fails clearly, and so does an error without a code. */
async function importBounded(store: FileStore, file: string): Promise<Outcome> {
  const source = createReadStream(file);
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(resolve, HANG_BOUND_MS, 'hung');
  });
  const settled = store.importTar(source).then(
    (committed): Outcome => ({ committed, code: null }),
    (err: ImportTarError): Outcome => {
      if (typeof err.code !== 'string') throw new Error(`importTar rejected without a code: ${err.stack}`);
      return { committed: err.committed, code: err.code };
    },
  );
  try {
    const outcome = await Promise.race([settled, hung]);
    if (outcome === 'hung') {
      source.destroy();
      throw new Error(`importTar of ${file} did not settle within ${HANG_BOUND_MS / 1000} s`);
    }
    return outcome;
  } finally {
    clearTimeout(timer);
  }
}

async function exitStatus(command: string, args: string[]): Promise<number> {
  try {
    await run(command, args, { maxBuffer: 64 * 1024 * 1024 });
    return 0;
  } catch (err) {
    const { code } = err as { code?: unknown };
    if (typeof code !== 'number') throw err;
    return code;
  }
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

it('the table pins every fixture that is a tar, and the out-of-scope list names the rest', () => {
  const inScope = fixtureFiles.filter((fixture) => !(fixture in OUT_OF_SCOPE));
  expect(Object.keys(TABLE).sort()).toEqual(inScope);
  expect(fixtureFiles).toEqual(expect.arrayContaining(Object.keys(OUT_OF_SCOPE)));
});

describe.each(Object.keys(TABLE).sort())('%s', (fixture) => {
  it('imports as pinned, byte-identical to Python and as Python reads it', async () => {
    const row = TABLE[fixture] as Row;
    const tar = tarOf.get(fixture);
    const reading = python[fixture];
    if (tar === undefined || reading === undefined) throw new Error(`${fixture} is not among the fixtures`);
    const store = new FileStore(join(await tempDir(), 'store'), { durability: 'none' });
    await store.prepare();

    const outcome = await importBounded(store, tar);
    const derived = derive(reading);
    seen.set(fixture, { outcome, derived });
    expect(outcome).toEqual(expected(row));

    // new/ holds exactly the committed files, tmp/ nothing
    const inNew = (await readdir(join(store.root, 'new'), { encoding: 'buffer' })).map((n) => n.toString('hex'));
    expect(inNew.sort()).toEqual(outcome.committed.map((name) => nameToBytes(name).toString('hex')).sort());
    expect(await readdir(join(store.root, 'tmp'))).toEqual([]);
    // each committed file holds the bytes Python reads for that member
    const members = reading.members.filter((member) => !passedOver(member));
    for (const [i, name] of outcome.committed.entries()) {
      const bytes = await readFile(fsPath(store.path(name, 'new')));
      expect(sha256(bytes), `${name}: the bytes of Python's member ${i}`).toBe(members[i]?.sha256);
    }

    const { why: _why, ...fromPython } = derived;
    expect(fromPython, `what Python's reading leads to${row.why ? ` (${row.why})` : ''}`).toEqual(
      row.python ?? expected(row),
    );
    if (row.python !== undefined) expect(row.why, 'a reason for differing from Python').toBeTruthy();
    expect(await exitStatus('tar', ['-tf', tar]), 'GNU tar -tf exit status').toBe(row.gnu);
  });
});

describe('the sparse holes of one import', () => {
  it('are bounded: the sparse file that takes them past MAX_SPARSE_HOLES is refused, the files before it stay', async () => {
    const dir = await tempDir();
    // each file is mostly hole, and the two together are over the budget
    const size = MAX_SPARSE_HOLES / 2 + 1024 * 1024;
    for (const name of ['first', 'second']) {
      await writeFile(join(dir, name), `${name}\n`);
      await truncate(join(dir, name), size);
    }
    const archive = join(dir, 'sparse.tar');
    await run('tar', ['--format=pax', '--sparse', '-cf', archive, '-C', dir, 'first', 'second']);
    const store = new FileStore(join(dir, 'store'), { durability: 'none' });
    await store.prepare();

    expect(await importBounded(store, archive)).toEqual({ committed: ['first'], code: 'ERR_UNSAFE_ENTRY' });
    expect(await sha256Of(store.path('first', 'new'))).toBe(await sha256Of(join(dir, 'first')));
    expect(await readdir(join(store.root, 'tmp'))).toEqual([]);
  });
});

async function sha256Of(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

it(`${SUMMARY_DOC} holds this run's summary`, () => {
  const marker = '<!-- tar-interop-summary -->';
  const [, block] = docText(SUMMARY_DOC).split(marker);
  expect(block, `${SUMMARY_DOC} marks its summary with ${marker} before and after`).toBeDefined();
  expect(`\n${summary()}\n`).toBe(block);
});

/** The summary of the run, as docs/tar-interop.md shows it. */
function summary(): string {
  const fixtures = Object.keys(TABLE).sort();
  const missing = fixtures.filter((fixture) => !seen.has(fixture));
  if (missing.length > 0) throw new Error(`no outcome for ${missing.join(', ')}`);
  const categories = new Map<string, { archives: number; files: number }>();
  for (const fixture of fixtures) {
    const row = TABLE[fixture] as Row;
    const { outcome, derived } = seen.get(fixture) as { outcome: Outcome; derived: Derived };
    const label =
      row.python !== undefined
        ? 'differs from what Python reads (listed below)'
        : outcome.code === null
          ? 'imported whole'
          : `${derived.why}: \`${outcome.code}\``;
    const category = categories.get(label) ?? { archives: 0, files: 0 };
    category.archives++;
    category.files += outcome.committed.length;
    categories.set(label, category);
  }
  const compressed = fixtures.filter((fixture) => COMPRESSED.test(fixture)).length;
  const files = [...categories.values()].reduce((sum, category) => sum + category.files, 0);
  const rows = [...categories]
    .sort(([a, x], [b, y]) => y.archives - x.archives || a.localeCompare(b))
    .map(([label, { archives, files }]) => `| ${label} | ${archives} | ${files} |`);
  const notes = grouped(fixtures.flatMap((fixture) => (TABLE[fixture]?.why ? [[fixture, TABLE[fixture].why]] : [])));
  const outOfScope = grouped(Object.entries(OUT_OF_SCOPE));
  return [
    `${fixtureFiles.length} fixture files: ${fixtures.length} tar archives (${compressed} of them compressed, unpacked first), each imported into a fresh store, and ${Object.keys(OUT_OF_SCOPE).length} out of scope. ${files} files were committed, each byte-identical to Python's reading of its member.`,
    '',
    '| how the import ended (at the first member that is not imported) | archives | files committed |',
    '|---|---:|---:|',
    ...rows,
    '',
    'Where the import and Python or GNU tar part ways:',
    '',
    ...notes,
    '',
    'Out of scope:',
    '',
    ...outOfScope,
  ].join('\n');
}

/** `- \`a\`, \`b\`: reason.` lines, one per reason, from [fixture, reason] pairs. */
function grouped(pairs: Array<[string, string]>): string[] {
  const byReason = new Map<string, string[]>();
  for (const [fixture, reason] of pairs) byReason.set(reason, [...(byReason.get(reason) ?? []), `\`${fixture}\``]);
  return [...byReason].map(([reason, fixtures]) => `- ${fixtures.join(', ')}: ${reason}.`);
}
