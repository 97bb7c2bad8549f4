import { FileStore } from '../../index.js';
import { UsageError, defineCommand } from '../command.js';
import { LineWriter, escapeName, jsonLine } from '../output.js';
import { dir, flag, json, optionalArea } from '../specs.js';

/** `ls DIR [AREA]`: one name per line. */
export const ls = defineCommand({
  name: 'ls',
  usage: 'DIR [AREA] [-0 | --json]',
  summary: 'list the names in AREA (default: new), one per line',
  help: `Prints the name of every file in AREA (tmp, new or cur; default new), one
per line, in directory order, streaming (memory does not grow with the area).
A backslash in a name prints as \\\\, a newline, carriage return or tab as \\n, \\r,
\\t, and any other control character as \\uHHHH, so each line is one name.

Options:
  -0, --null   print the names unescaped, each followed by a NUL byte (for xargs -0)
  --json       print one JSON object per line: {"name":NAME,"area":AREA}`,
  args: [dir, optionalArea('new', ['tmp', 'new', 'cur'])],
  options: { null: flag('0'), json },
  async run({ args: [root, area], options }, io) {
    if (options.null && options.json) throw new UsageError('-0 and --json exclude each other');
    const format = options.json
      ? (name: string) => jsonLine({ name, area })
      : options.null
        ? (name: string) => `${name}\0`
        : (name: string) => `${escapeName(name)}\n`;
    const lines = new LineWriter(io.stdout);
    for await (const { name } of new FileStore(root).list(area)) {
      io.signal.throwIfAborted();
      await lines.add(format(name));
    }
    await lines.flush();
    return 0;
  },
});
