import { FileStore } from '../../index.js';
import { defineCommand } from '../command.js';
import { jsonLine } from '../output.js';
import { area, dir, json, name } from '../specs.js';

/** `rm DIR AREA NAME`: removes one file. */
export const rm = defineCommand({
  name: 'rm',
  usage: 'DIR AREA NAME [--json]',
  summary: 'remove the file NAME from AREA',
  help: `Removes NAME from AREA (tmp, new or cur); fails with ENOENT when it is missing.

Options:
  --json   print {"name":NAME,"area":AREA} when removed`,
  args: [dir, area(), name],
  options: { json },
  async run({ args: [root, from, file], options }, io) {
    await new FileStore(root).remove(file, from);
    if (options.json) io.stdout.write(jsonLine({ name: file, area: from }));
    return 0;
  },
});
