import { FileStore } from '../../index.js';
import type { Command } from '../command.js';

/** `prepare DIR`: creates the store and its areas. */
export const prepare: Command = {
  name: 'prepare',
  usage: 'DIR',
  summary: 'create the store DIR with tmp/, new/ and cur/ (idempotent)',
  help: 'Creates DIR and its areas tmp/, new/ and cur/, and whatever of them is missing.',
  args: { min: 1, max: 1 },
  async run({ positionals: [dir] }) {
    await new FileStore(dir as string).prepare();
    return 0;
  },
};
