#!/usr/bin/env node
/** The `maildir-filestore` executable. */
import { run } from './run.js';

const controller = new AbortController();
const abort = (): void => controller.abort();
process.once('SIGINT', abort);
process.once('SIGTERM', abort);

const code = await run(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  signal: controller.signal,
});
process.off('SIGINT', abort);
process.off('SIGTERM', abort);
process.exitCode = code;
