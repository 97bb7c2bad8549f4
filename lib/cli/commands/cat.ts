import { pipeline } from 'node:stream/promises';
import { FileStore } from '../../index.js';
import { openEntry } from '../../safe-open.js';
import { defineCommand } from '../command.js';
import { area, dir, name } from '../specs.js';

/** `cat DIR AREA NAME`: a file to standard output. */
export const cat = defineCommand({
  name: 'cat',
  usage: 'DIR AREA NAME',
  summary: 'write the file NAME in AREA to standard output',
  help: 'Streams the file NAME of AREA (tmp, new or cur) to standard output; anything but a regular file (a symlink, FIFO, device node, directory) is refused (ERR_UNSAFE_ENTRY) before a byte is read.',
  args: [dir, area(), name],
  options: {},
  async run({ args: [root, from, file] }, io) {
    const { handle } = await openEntry(new FileStore(root).path(file, from));
    await pipeline(handle.createReadStream(), io.stdout, { end: false, signal: io.signal });
    return 0;
  },
});
