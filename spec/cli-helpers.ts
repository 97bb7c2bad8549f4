// Running the compiled CLI and server as child processes, reading the docs' shell examples, and raw HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { docBlock } from './doc-blocks.js';

/** The compiled `maildir-filestore` executable (built by `npm test` before vitest runs). */
export const CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

export interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Collects a child's output and exit. */
export function completion(child: ChildProcess): Promise<Result> {
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr).toString() }),
    );
  });
}

/** Runs `maildir-filestore ...args` with `input` on stdin. */
export function cli(
  args: string[],
  options: { input?: string | Buffer; cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: options.env ?? process.env });
  const done = completion(child);
  child.stdin.on('error', () => {});
  child.stdin.end(options.input ?? '');
  return done;
}

/** Runs a bash script. */
export function bash(script: string, options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const child = spawn('bash', ['-c', script], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return completion(child);
}

/** A `maildir-filestore serve` child, once it printed the address it listens on. */
export interface ServeChild {
  child: ChildProcess;
  url: string;
  port: number;
  /** Sends SIGTERM and resolves to the child's exit. */
  stop(): Promise<Result>;
}

/** Starts `command ...args` (a `serve` child, maybe wrapped) and waits for its "serving ... on URL" line. */
export async function serveChild(
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ServeChild> {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = completion(child);
  let seen = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const match = / on (http:\/\/\S+\/)\n/.exec(seen);
      if (match) resolve(match[1] as string);
    });
    done.then((result) => reject(new Error(`serve exited with ${result.code}: ${result.stderr}`)), reject);
  });
  return {
    child,
    url,
    port: Number(new URL(url).port),
    stop: () => {
      child.kill('SIGTERM');
      return done;
    },
  };
}

/** The shell block that follows `<!-- marker -->` in the README or docs/. */
export async function readmeBlock(marker: string): Promise<string> {
  return docBlock(marker, 'sh');
}

/** Opens a raw connection, writes `data`, and resolves to what the server sent: up to a JSON answer's end, or until it closed. */
export function raw(port: number, data: string | Buffer): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  socket.write(data);
  let text = '';
  return new Promise((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (/\r\n\r\n\{[\s\S]*\}\n$/.test(text)) socket.destroy();
    });
    socket.on('close', () => resolve(text));
  });
}
