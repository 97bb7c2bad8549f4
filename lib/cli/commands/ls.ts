import { FileStore, type Area } from '../../index.js';
import type { Command } from '../command.js';
import { writeOut } from '../../write-out.js';
import { escapeName } from '../output.js';

const BATCH = 256;

/** `ls DIR [AREA]`: one name per line. */
export const ls: Command = {
  name: 'ls',
  usage: 'DIR [AREA]',
  summary: 'list the names in AREA (default: new), one per line',
  help: `Prints the name of every file in AREA (tmp, new or cur; default new), one
per line, in directory order, streaming (memory does not grow with the area).
A backslash in a name prints as \\\\, a newline, carriage return or tab as \\n, \\r,
\\t, and any other control character as \\uHHHH, so each line is one name.

Options:
  -0, --null   print the names unescaped, each followed by a NUL byte (for xargs -0)`,
  options: { null: { type: 'boolean', short: '0' } },
  args: { min: 1, max: 2 },
  async run({ positionals: [dir, area = 'new'], values }, io) {
    const entries = new FileStore(dir as string).list(area as Area);
    const format = values.null === true ? (name: string) => `${name}\0` : (name: string) => `${escapeName(name)}\n`;
    let batch = '';
    let count = 0;
    for await (const { name } of entries) {
      batch += format(name);
      if (++count % BATCH === 0) {
        await writeOut(io.stdout, batch);
        batch = '';
      }
    }
    if (batch !== '') await writeOut(io.stdout, batch);
    return 0;
  },
};
