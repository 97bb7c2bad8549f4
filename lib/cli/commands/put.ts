/**
 * `put DIR [NAME] [--file PATH]`: stores one file. The content comes from
 * standard input or `--file`; standard input that is a terminal or another
 * device (`/dev/null` from cron or ssh) is refused, because `put DIR
 * report.pdf` there would otherwise wait silently or commit an empty file
 * named `report.pdf`. An empty file on purpose is `--empty`.
 */
import { once } from 'node:events';
import { createReadStream, fstat } from 'node:fs';
import { lstat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { FileStore } from '../../index.js';
import { UsageError, defineCommand, type Io } from '../command.js';
import { writeOut } from '../../write-out.js';
import { fsPath } from '../../names.js';
import { PROGRAM, escapeName, jsonLine } from '../output.js';
import { dir, durability, flag, json, optionalName, text } from '../specs.js';

const fstatFd = promisify(fstat);

/** `put DIR [NAME] [< FILE | --file PATH | --empty]`: stores one committed file. */
export const put = defineCommand({
  name: 'put',
  usage: 'DIR [NAME] [< FILE | --file PATH | --empty]',
  summary: 'store standard input (or --file PATH) as a file in new/, print its name',
  help: `Streams standard input (or the file PATH with --file) into a new file and
commits it to DIR/new/ when the input ends, then prints the file's name.
NAME is the name in the store, never a file to read: without NAME a unique
maildir name is generated. If the input fails or the command is interrupted
(SIGINT, SIGTERM), nothing is committed and the tmp/ file is removed.

Standard input must be a pipe or a file: a terminal, or a device such as
/dev/null, is refused (exit 2) with nothing stored. To commit an empty file
on purpose, use --empty; an empty pipe or an empty file is stored as given.

Options:
  --file PATH          read the content from PATH instead of standard input
  --empty              commit an empty file; standard input is not read
  --overwrite          replace an existing file NAME instead of failing with EEXIST
  --durability MODE    full, file or none (default: full)
  --json               print {"name":NAME,"area":"new","bytes":N}`,
  args: [dir, optionalName],
  options: { file: text(), empty: flag(), overwrite: flag(), durability, json },
  async run({ args: [root, name], options }, io) {
    if (options.empty && options.file !== undefined) throw new UsageError('--empty and --file exclude each other');
    const source = options.empty ? null : (options.file ?? (await usableStdin(io.stdin, name)));
    const store = new FileStore(root, { durability: options.durability });
    const input = typeof source === 'string' ? await openInput(source) : source;
    const writer = store.create(name, { overwrite: options.overwrite });
    const counter = new ByteCounter();
    try {
      if (input === null) await pipeline(emptyInput(), writer, { signal: io.signal });
      else await pipeline(input, counter, writer, { signal: io.signal });
    } catch (err) {
      // an aborted pipeline rejects at once; the writer removes its tmp/ file before 'close'
      if (!writer.closed) await once(writer, 'close');
      throw err;
    }
    const line = options.json
      ? jsonLine({ name: writer.name, area: 'new', bytes: counter.bytes })
      : `${escapeName(writer.name)}\n`;
    await writeOut(io.stdout, line);
    return 0;
  },
});

/** Standard input, unless it is a terminal or a device: then a usage error that says how to give the file. */
async function usableStdin(stdin: Io['stdin'], name: string | undefined): Promise<Readable> {
  const { fd } = stdin;
  const tty = stdin.isTTY === true;
  const device = !tty && typeof fd === 'number' && (await fstatFd(fd)).isCharacterDevice();
  if (!tty && !device) return stdin;
  const what = tty ? 'a terminal' : 'a device (such as /dev/null), not a pipe or a file';
  const hint =
    name !== undefined && (await isFile(name))
      ? ` NAME is the name in the store; to store the file ${escapeName(name)}, write: ${PROGRAM} put DIR ${escapeName(name)} < ${escapeName(name)} (or --file ${escapeName(name)})`
      : ` Give the content on standard input (${PROGRAM} put DIR [NAME] < FILE) or as --file PATH; --empty commits an empty file.`;
  throw new UsageError(`refusing to read the file from ${what}.${hint}`);
}

async function isFile(path: string): Promise<boolean> {
  return lstat(fsPath(path)).then(
    (stats) => stats.isFile(),
    () => false,
  );
}

/** Opens `--file PATH` before any tmp/ file exists, so a missing PATH leaves nothing behind. */
async function openInput(path: string): Promise<Readable> {
  const stream = createReadStream(fsPath(path));
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve());
    stream.once('error', reject);
  });
  return stream;
}

async function* emptyInput(): AsyncGenerator<Buffer> {}

/** Counts the bytes that pass, for `--json`. */
class ByteCounter extends Transform {
  bytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    cb(null, chunk);
  }
}
