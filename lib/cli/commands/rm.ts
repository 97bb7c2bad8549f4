import { FileStore, type Area } from '../../index.js';
import type { Command } from '../command.js';

/** `rm DIR AREA NAME`: removes one file. */
export const rm: Command = {
  name: 'rm',
  usage: 'DIR AREA NAME',
  summary: 'remove the file NAME from AREA',
  help: 'Removes NAME from AREA (tmp, new or cur); fails with ENOENT when it is missing.',
  args: { min: 3, max: 3 },
  async run({ positionals: [dir, area, name] }) {
    await new FileStore(dir as string).remove(name as string, area as Area);
    return 0;
  },
};
