// Running the compiled CLI and server as child processes, reading the docs' shell examples, and raw HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { run } from '../lib/cli/run.js';
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

/** What {@link runCli} gives the command as standard input and how the streams look. */
export interface InProcessOptions {
  /** Standard input's bytes (default: none, an empty pipe). */
  input?: string | Buffer;
  /** Standard input itself (instead of `input`), e.g. one that never ends. */
  stdin?: Readable;
  /** Standard input claims to be a terminal. */
  stdinTTY?: boolean;
  /** Standard error claims to be a terminal (progress lines are drawn). */
  stderrTTY?: boolean;
  env?: NodeJS.ProcessEnv;
  /** Aborts the command as SIGINT/SIGTERM would. */
  signal?: AbortSignal;
}

/** The result of {@link runCli}: exit code and what the command wrote. */
export interface InProcessResult {
  code: number;
  stdout: string;
  /** Standard output's bytes, for binary output (export). */
  stdoutBytes: Buffer;
  stderr: string;
}

/** Runs `maildir-filestore ...args` in this process through `run(argv, io)`, with in-memory streams. */
export async function runCli(args: string[], options: InProcessOptions = {}): Promise<InProcessResult> {
  const source = options.stdin ?? Readable.from(options.input === undefined ? [] : [Buffer.from(options.input)]);
  const stdin = Object.assign(source, {
    isTTY: options.stdinTTY === true ? true : undefined,
  });
  const stdout = new Collector(false);
  const stderr = new Collector(options.stderrTTY === true);
  const code = await run(args, {
    stdin,
    stdout,
    stderr,
    env: options.env ?? process.env,
    signal: options.signal ?? new AbortController().signal,
  });
  return { code, stdout: stdout.text, stdoutBytes: Buffer.concat(stdout.chunks), stderr: stderr.text };
}

/** A Writable that keeps what is written, a terminal or not. */
export class Collector extends Writable {
  readonly isTTY: boolean | undefined;
  readonly chunks: Buffer[] = [];

  constructor(isTTY: boolean) {
    super();
    this.isTTY = isTTY ? true : undefined;
  }

  get text(): string {
    return Buffer.concat(this.chunks).toString();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, cb: () => void): void {
    this.chunks.push(chunk);
    cb();
  }
}

/** Exactly one line on stderr: `maildir-filestore: CODE: ...`; returns its message. */
export function errorMessage(stderr: string, code: string): string {
  const prefix = `maildir-filestore: ${code}: `;
  if (!stderr.endsWith('\n') || stderr.trimEnd().includes('\n') || !stderr.startsWith(prefix)) {
    throw new Error(`expected one error line with ${code}, got ${JSON.stringify(stderr)}`);
  }
  return stderr.slice(prefix.length, -1);
}
