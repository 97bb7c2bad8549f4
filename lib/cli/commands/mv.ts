import { FileStore } from '../../index.js';
import { defineCommand, type Io } from '../command.js';
import { PROGRAM, jsonLine } from '../output.js';
import { area, dir, flag, json, name } from '../specs.js';

const AREAS = new Set(['tmp', 'new', 'cur']);

/** `mv DIR FROM TO NAME`: an atomic move between areas. */
export const mv = defineCommand({
  name: 'mv',
  usage: 'DIR FROM TO NAME [--overwrite] [--json]',
  summary: 'move the file NAME from area FROM to area TO',
  help: `Moves NAME from area FROM to area TO in one atomic step. Fails with ENOENT
when NAME is not in FROM and with EEXIST when TO already has it.

The old order 'mv DIR NAME FROM TO' still works, with a warning on stderr,
when NAME is not itself tmp, new or cur; it will be removed in 1.0.

Options:
  --overwrite   replace an existing file in TO
  --json        print {"name":NAME,"from":FROM,"to":TO} when moved`,
  args: [dir, area('FROM'), area('TO'), name],
  options: { overwrite: flag(), json },
  reorder: oldOrder,
  async run({ args: [root, from, to, file], options }, io) {
    await new FileStore(root).move(file, from, to, { overwrite: options.overwrite });
    if (options.json) io.stdout.write(jsonLine({ name: file, from, to }));
    return 0;
  },
});

/** `DIR NAME FROM TO` (before 0.2) to `DIR FROM TO NAME`, with a deprecation warning. */
function oldOrder(positionals: string[], io: Io): string[] {
  const [root, first, second, third] = positionals;
  if (positionals.length !== 4 || root === undefined || first === undefined || second === undefined) {
    return positionals;
  }
  if (third === undefined || AREAS.has(first) || !AREAS.has(second) || !AREAS.has(third)) return positionals;
  io.stderr.write(
    `${PROGRAM}: warning: 'mv DIR NAME FROM TO' is deprecated, write 'mv DIR FROM TO NAME' (DIR, the areas, then the name, as every command)\n`,
  );
  return [root, second, third, first];
}
