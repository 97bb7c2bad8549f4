import { pipeline } from 'node:stream/promises';
import { FileStore } from '../../index.js';
import { UsageError, defineCommand } from '../command.js';
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

When standard error is a terminal, a progress line (files and bytes read so
far) is drawn there; otherwise nothing is printed but errors.

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
    const meter = new ProgressMeter(io.stderr, 'importing');
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
