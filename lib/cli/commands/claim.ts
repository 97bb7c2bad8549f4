import { FileStore } from '../../index.js';
import { defineCommand } from '../command.js';
import { jsonLine } from '../output.js';
import { EXIT_LOST } from '../exit.js';
import { dir, json, name } from '../specs.js';

/** `claim DIR NAME`: new -> cur; exit 0 won, 3 lost. */
export const claim = defineCommand({
  name: 'claim',
  usage: 'DIR NAME [--json]',
  summary: 'claim NAME (new/ -> cur/): exit 0 won, 3 not claimed',
  help: `Moves NAME from new/ to cur/ for this caller. Across any number of racing
processes exactly one wins each file.

Options:
  --json   print {"name":NAME,"claimed":true} or {"name":NAME,"claimed":false}

Exit codes: 0 this caller won the file; 3 (silently) it was not claimed:
another caller won it, or it was not in new/; 1 an error (the error line
says which, e.g. EEXIST when cur/ already holds NAME); 2 usage error.`,
  args: [dir, name],
  options: { json },
  async run({ args: [root, file], options }, io) {
    const claimed = await new FileStore(root).claim(file);
    if (options.json) io.stdout.write(jsonLine({ name: file, claimed }));
    return claimed ? 0 : EXIT_LOST;
  },
});
