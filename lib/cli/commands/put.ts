import { pipeline } from 'node:stream/promises';
import { FileStore, type Durability } from '../../index.js';
import { UsageError, type Command } from '../command.js';
import { writeOut } from '../../write-out.js';
import { escapeName } from '../output.js';

/** `put DIR [NAME]`: stores standard input as one committed file. */
export const put: Command = {
  name: 'put',
  usage: 'DIR [NAME] < FILE',
  summary: 'store standard input as a file in new/, print its name',
  help: `Streams standard input into a new file and commits it to DIR/new/ when
the input ends, then prints the file's name. Without NAME a unique maildir
name is generated. If the input fails or the command is interrupted
(SIGINT, SIGTERM), nothing is committed and the tmp/ file is removed.

Options:
  --overwrite          replace an existing file NAME instead of failing with EEXIST
  --durability MODE    full, file or none (default: full)`,
  options: {
    overwrite: { type: 'boolean' },
    durability: { type: 'string' },
  },
  args: { min: 1, max: 2 },
  async run({ positionals: [dir, name], values }, io) {
    const store = new FileStore(dir as string, { durability: durabilityOption(values.durability) });
    const writer = store.create(name, { overwrite: values.overwrite === true });
    await pipeline(io.stdin, writer, { signal: io.signal });
    await writeOut(io.stdout, `${escapeName(writer.name)}\n`);
    return 0;
  },
};

/** Validates `--durability`. */
export function durabilityOption(value: string | boolean | undefined): Durability {
  if (value === undefined) return 'full';
  if (value === 'full' || value === 'file' || value === 'none') return value;
  throw new UsageError(`--durability must be full, file or none, got ${JSON.stringify(value)}`);
}
