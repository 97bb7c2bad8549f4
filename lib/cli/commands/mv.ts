import { FileStore, type Area } from '../../index.js';
import type { Command } from '../command.js';

/** `mv DIR NAME FROM TO`: an atomic move between areas. */
export const mv: Command = {
  name: 'mv',
  usage: 'DIR NAME FROM TO',
  summary: 'move the file NAME from area FROM to area TO',
  help: `Moves NAME from area FROM to area TO in one atomic step. Fails with ENOENT
when NAME is not in FROM and with EEXIST when TO already has it.

Options:
  --overwrite   replace an existing file in TO`,
  options: { overwrite: { type: 'boolean' } },
  args: { min: 4, max: 4 },
  async run({ positionals: [dir, name, from, to], values }) {
    await new FileStore(dir as string).move(name as string, from as Area, to as Area, {
      overwrite: values.overwrite === true,
    });
    return 0;
  },
};
