import { FileStore } from '../../index.js';
import { defineCommand } from '../command.js';
import { printNames } from '../output.js';
import { dir, duration, json } from '../specs.js';

/** `clean DIR [--older-than 36h]`: removes what dead writers left in tmp/. */
export const clean = defineCommand({
  name: 'clean',
  usage: 'DIR [--older-than 36h] [--json]',
  summary: 'remove the files in tmp/ left by crashed writers, print their names',
  help: `Removes the files in DIR/tmp/ last modified longer ago than --older-than
(what crashed or abandoned writers left behind) and prints their names, one
per line, escaped as ls prints them. Never touches new/ or cur/.

Options:
  --older-than AGE   minimum age of the last modification: a number with a
                     unit, ms, s, m, h or d (90s, 15m, 36h, 2d), or plain
                     milliseconds (default: 36h, maildir's rule)
  --json             print one JSON object per removed file: {"name":NAME,"area":"tmp"}`,
  args: [dir],
  options: { 'older-than': duration(), json },
  async run({ args: [root], options }, io) {
    const removed = await new FileStore(root).clean({ olderThan: options['older-than'] });
    await printNames(io.stdout, removed, 'tmp', options.json);
    return 0;
  },
});
