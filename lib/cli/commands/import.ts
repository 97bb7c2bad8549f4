import { fstat } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FileStore } from '../../index.js';
import { UsageError, defineCommand, type Io } from '../command.js';
import { printNames } from '../output.js';
import { ProgressMeter } from '../progress.js';
import { dir, durability, flag, json, optionalArea } from '../specs.js';
import { TarCounter } from '../../tar/counter.js';

/** `import DIR [AREA] < FILE.tar`: commits every file of a tar archive, prints the names. */
export const importArchive = defineCommand({
  name: 'import',
  usage: 'DIR [AREA] < FILE.tar',
  summary: 'store the files of a tar archive on standard input in AREA (default: new)',
  help: `Reads a tar archive from standard input and commits each regular file to
AREA (new or cur; default new), one at a time, each atomically, as put does.
Prints the committed names, one per line, escaped as ls prints them.

The first entry that cannot be imported stops the import, exit 1: a
symlink, hard link, device, FIFO or directory, or a name that is not a
valid store name (ERR_UNSAFE_ENTRY), a damaged or truncated archive
(ERR_CORRUPT_ARCHIVE), a name already in AREA (EEXIST). SIGINT and SIGTERM
stop it the same way (exit 130 or 143). The files committed before stay and
their names are printed; the file in progress is removed from tmp/. Nothing
is ever written outside DIR. Standard input must not be a terminal.

When standard error is a terminal, a progress line is drawn there: files
and bytes read so far, of the archive's size when standard input is a file,
and the rate, e.g. "importing: 3 files, 1.5 MB of 4.0 MB (37%), 2.0 MB/s";
otherwise nothing is printed but errors.

Options:
  --overwrite          replace existing files instead of failing with EEXIST
  --durability MODE    full, file or none (default: full)
  --json               print one JSON object per committed file: {"name":NAME,"area":AREA}`,
  args: [dir, optionalArea('new', ['new', 'cur'])],
  options: { overwrite: flag(), durability, json },
  async run({ args: [root, area], options }, io) {
    if (io.stdin.isTTY === true) {
      throw new UsageError('refusing to read a tar archive from a terminal: redirect standard input (< in.tar)');
    }
    const store = new FileStore(root, { durability: options.durability });
    const meter = new ProgressMeter(io.stderr, 'importing', { total: { bytes: await inputSize(io.stdin, io.stderr) } });
    const counter = new TarCounter((files, bytes) => meter.update(files, bytes));
    // importTar reports the input's errors itself, and destroys the input when it stops early
    pipeline(io.stdin, counter, { signal: io.signal }).catch(() => {});
    let names: string[];
    try {
      names = await store.importTar(counter, { area, overwrite: options.overwrite });
    } catch (err) {
      meter.finish(counter.files, counter.bytes);
      const committed: unknown = (err as { committed?: unknown } | null)?.committed;
      if (Array.isArray(committed)) await printNames(io.stdout, committed.map(String), area, options.json);
      throw err;
    }
    meter.finish(counter.files, counter.bytes);
    await printNames(io.stdout, names, area, options.json);
    return 0;
  },
});

const fstatFd = promisify(fstat);

/** The archive's size when standard input is a regular file (for the progress line on a terminal), else `undefined`. */
async function inputSize(stdin: Io['stdin'], stderr: Io['stderr']): Promise<number | undefined> {
  if (stderr.isTTY !== true || typeof stdin.fd !== 'number') return undefined;
  const stats = await fstatFd(stdin.fd).catch(() => null);
  return stats?.isFile() === true ? stats.size : undefined;
}
