/** The command table of `maildir-filestore`, in the order `--help` lists it. */
import type { Command } from './command.js';
import { cat } from './commands/cat.js';
import { claim } from './commands/claim.js';
import { clean } from './commands/clean.js';
import { consume } from './commands/consume.js';
import { exportArea } from './commands/export.js';
import { importArchive } from './commands/import.js';
import { ls } from './commands/ls.js';
import { mv } from './commands/mv.js';
import { prepare } from './commands/prepare.js';
import { put } from './commands/put.js';
import { requeue } from './commands/requeue.js';
import { rm } from './commands/rm.js';
import { serve } from './commands/serve.js';
import { stat } from './commands/stat.js';

/** Every command, by name. */
export const commands: ReadonlyMap<string, Command> = new Map(
  [prepare, put, ls, stat, cat, mv, claim, rm, exportArea, importArchive, consume, requeue, clean, serve].map(
    (command) => [command.name, command],
  ),
);
