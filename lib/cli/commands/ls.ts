import { FileStore } from '../../index.js';
import { UsageError, defineCommand } from '../command.js';
import { LineWriter, escapeName, jsonLine } from '../output.js';
import { dir, flag, json, optionalArea } from '../specs.js';
import { hasEscapedBytes, nameToBytes } from '../../names.js';

const NUL = Buffer.of(0);

/** `ls DIR [AREA]`: one name per line. */
export const ls = defineCommand({
  name: 'ls',
  usage: 'DIR [AREA] [-0 | --json]',
  summary: 'list the names in AREA (default: new), one per line',
  help: `Prints the name of every file in AREA (tmp, new or cur; default new), one
per line, in directory order, streaming (memory does not grow with the area).
A backslash in a name prints as \\\\, a newline, carriage return or tab as \\n, \\r,
\\t, any other control character as \\uHHHH, and a byte that is not UTF-8 as
\\xHH, so each line is one name.  --json gives such a byte as the escape
\\udcHH (U+DC00 + byte: Python's surrogateescape); -0 prints the bytes.

Options:
  -0, --null   print the names as their bytes, each followed by a NUL byte (for xargs -0)
  --json       print one JSON object per line: {"name":NAME,"area":AREA}`,
  args: [dir, optionalArea('new', ['tmp', 'new', 'cur'])],
  options: { null: flag('0'), json },
  async run({ args: [root, area], options }, io) {
    if (options.null && options.json) throw new UsageError('-0 and --json exclude each other');
    const format = options.json
      ? (name: string) => jsonLine({ name, area })
      : options.null
        ? (name: string) => (hasEscapedBytes(name) ? Buffer.concat([nameToBytes(name), NUL]) : `${name}\0`)
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
