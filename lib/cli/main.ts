#!/usr/bin/env node
/** The `maildir-filestore` executable. */
import { Interrupted } from './command.js';
import { byteArguments } from './raw-argv.js';
import { run } from './run.js';

const controller = new AbortController();
const abort = (signal: NodeJS.Signals): void => controller.abort(new Interrupted(signal));
process.once('SIGINT', abort);
process.once('SIGTERM', abort);

const code = await run(byteArguments(process.argv.slice(2)), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
process.off('SIGINT', abort);
process.off('SIGTERM', abort);
process.exitCode = code;
