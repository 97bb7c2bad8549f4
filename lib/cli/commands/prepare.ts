import { FileStore } from '../../index.js';
import { defineCommand } from '../command.js';
import { jsonLine } from '../output.js';
import { json } from '../specs.js';

/** `prepare DIR`: creates the store and its areas. */
export const prepare = defineCommand({
  name: 'prepare',
  usage: 'DIR [--json]',
  summary: 'create the store DIR with tmp/, new/ and cur/ (idempotent)',
  help: `Creates DIR and its areas tmp/, new/ and cur/, and whatever of them is missing.

Options:
  --json   print {"root":"/absolute/DIR"} when done`,
  args: [{ label: 'DIR', optional: false, read: (text) => text ?? '' }],
  options: { json },
  async run({ args: [dir], options }, io) {
    const store = new FileStore(dir);
    await store.prepare();
    if (options.json) io.stdout.write(jsonLine({ root: store.root }));
    return 0;
  },
});
