// Tar archives for the import specs, built with tar-stream's pack; reading
// export streams back; descriptors a process holds open; GNU tar on a stream.
import { spawn } from 'node:child_process';
import { readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream, { type Header } from 'tar-stream';

/** One entry of {@link archive}: its header, and the body of a regular or contiguous file. */
export type ArchiveEntry = [Partial<Header> & { name: string }, (string | Buffer)?];

/** An archive made by tar-stream's pack from [header, body] pairs, with its end-of-archive blocks. */
export async function archive(entries: ArchiveEntry[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack as unknown as Readable) chunks.push(chunk as Buffer);
  })();
  for (const [header, body] of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null): void => (err ? reject(err) : resolve());
      if (header.type === undefined || header.type === 'file' || header.type === 'contiguous-file')
        pack.entry(header, body ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

/** The whole of a stream, as one buffer. */
export async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** The entries of a tar stream, in order, with their bodies, as tar-stream's extract reads them. */
export async function entriesOf(archive: Readable): Promise<Array<{ name: string; size: number; body: Buffer }>> {
  const extract = tarStream.extract();
  archive.on('error', (err) => extract.destroy(err));
  archive.pipe(extract);
  const entries: Array<{ name: string; size: number; body: Buffer }> = [];
  for await (const entry of extract) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry) chunks.push(chunk as Buffer);
    entries.push({ name: entry.header.name, size: entry.header.size ?? 0, body: Buffer.concat(chunks) });
  }
  return entries;
}

/** The paths under `dir` this process holds open (Linux: /proc/self/fd). */
export async function openFilesUnder(dir: string): Promise<string[]> {
  const fds = await readdir('/proc/self/fd');
  const targets = await Promise.all(fds.map((fd) => readlink(join('/proc/self/fd', fd)).catch(() => '')));
  return targets.filter((target) => target.startsWith(dir));
}

/**
 * Runs GNU `tar ARGS -f -` on `input` and resolves to its stdout, once tar
 * exited 0 and printed nothing on stderr: a warning is a failure (pass
 * `--warning=no-timestamp` where odd mtimes are the point). The child is
 * killed if the input fails.
 */
export async function gnuTar(input: Readable, args: string[]): Promise<string> {
  const child = spawn('tar', [...args, '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  const [stdout, stderr] = [collect(child.stdout), collect(child.stderr)];
  try {
    await pipeline(input, child.stdin);
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const [code, out, err] = await Promise.all([exited, stdout, stderr]);
  if (code !== 0 || err.length > 0) throw new Error(`tar ${args.join(' ')} exited ${code}: ${err.toString()}`);
  return out.toString('utf8');
}
