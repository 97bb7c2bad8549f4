import { FileStore } from '../../index.js';
import type { Command } from '../command.js';

/** `claim DIR NAME`: new -> cur; exit 0 won, 1 lost. */
export const claim: Command = {
  name: 'claim',
  usage: 'DIR NAME',
  summary: 'claim NAME (new/ -> cur/): exit 0 won, 1 lost',
  help: `Moves NAME from new/ to cur/ for this caller. Exits 0 when this caller won
the file, 1 (silently) when it was not in new/ or another process claimed it
first. Across any number of racing processes exactly one wins each file.`,
  args: { min: 2, max: 2 },
  async run({ positionals: [dir, name] }) {
    return (await new FileStore(dir as string).claim(name as string)) ? 0 : 1;
  },
};
