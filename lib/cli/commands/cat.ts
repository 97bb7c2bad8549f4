import { open } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { FileStore, type Area } from '../../index.js';
import type { Command } from '../command.js';

/** `cat DIR AREA NAME`: a file to standard output. */
export const cat: Command = {
  name: 'cat',
  usage: 'DIR AREA NAME',
  summary: 'write the file NAME in AREA to standard output',
  help: 'Streams the file NAME of AREA (tmp, new or cur) to standard output.',
  args: { min: 3, max: 3 },
  async run({ positionals: [dir, area, name] }, io) {
    const handle = await open(new FileStore(dir as string).path(name as string, area as Area), 'r');
    await pipeline(handle.createReadStream(), io.stdout, { end: false });
    return 0;
  },
};
