import { pipeline } from 'node:stream/promises';
import { countFiles } from '../area-stats.js';
import { FileStore } from '../../index.js';
import { UsageError, defineCommand } from '../command.js';
import { ProgressMeter } from '../progress.js';
import { area, dir } from '../specs.js';
import { TarCounter } from '../../tar/counter.js';

/** `export DIR AREA > FILE.tar`: the files of an area as a tar archive on standard output. */
export const exportArea = defineCommand({
  name: 'export',
  usage: 'DIR AREA > FILE.tar',
  summary: 'write the files of AREA to standard output as a tar archive',
  help: `Streams every file of AREA (tmp, new or cur) to standard output as a tar
archive that GNU tar lists and extracts: one regular-file entry per file,
with its name, size, mode and mtime. A file that grows or shrinks while it
is read (a tmp/ file still being written) fails the export with
ERR_FILE_CHANGED. Standard output must not be a terminal.

When standard error is a terminal, a progress line is drawn there: the
files so far of the area's count (counted before the export starts), the
bytes so far and the rate, e.g. "exporting: 3 of 10 files, 1.5 MB,
2.0 MB/s"; otherwise nothing is printed but errors.`,
  args: [dir, area()],
  options: {},
  async run({ args: [root, from] }, io) {
    if (io.stdout.isTTY === true) {
      throw new UsageError('refusing to write a tar archive to a terminal: redirect standard output (> out.tar)');
    }
    const store = new FileStore(root);
    const meter = new ProgressMeter(io.stderr, 'exporting');
    // the total for the progress line, on a terminal only: one streamed pass over the area first
    if (meter.enabled) meter.setTotal({ files: (await countFiles(store.list(from), io.signal)).files });
    const tar = store.exportTar(from);
    const counter = new TarCounter((files, bytes) => meter.update(files, bytes));
    try {
      await pipeline(tar, counter, io.stdout, { signal: io.signal, end: false });
    } finally {
      meter.finish(counter.files, counter.bytes);
    }
    return 0;
  },
});
