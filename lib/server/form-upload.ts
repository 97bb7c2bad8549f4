/**
 * `POST /files` with a `multipart/form-data` body: what HTML forms, `curl -F`
 * and most upload widgets send.
 *
 * The envelope is parsed with busboy (a runtime dependency: a streaming
 * parser that has handled hostile envelopes in production for a decade; a
 * hand-written one would be the riskiest code of the server). Each file part
 * streams into its own store writer as it arrives, never buffered whole.
 *
 * All or nothing, as far as the file system allows: the writers are ended
 * (so committed, with the store's durability) only once the whole envelope
 * has been read and checked. An aborted upload, a broken envelope or a body
 * over `maxBytes` destroys every writer, so nothing reaches `new/` and the
 * tmp/ files are removed. Only a commit itself can still fail after others
 * succeeded (a name that appeared in `new/` meanwhile): that answer carries
 * `committed`, the names that were committed and stay.
 */
import busboy from 'busboy';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { finished } from 'node:stream/promises';
import type { FileWriter } from '../writer.js';
import { requestBody } from './body.js';
import { HttpError, sendJson } from './http-error.js';
import type { RequestContext } from './router.js';

/** At most this many files in one form (each holds a descriptor until the form is complete). */
export const MAX_FORM_FILES = 100;

/**
 * Is this `Content-Type` a multipart one? (Not `application/x-www-form-urlencoded`:
 * `curl --data-binary @file` labels raw uploads so.)
 */
export function isFormBody(contentType: string | undefined): boolean {
  return contentType !== undefined && /^\s*multipart\//i.test(contentType);
}

/** Stores each file part of a `multipart/form-data` body: `201 {"names": [...]}`. */
export async function formUpload(ctx: RequestContext): Promise<void> {
  const { req, res } = ctx;
  if (!/^\s*multipart\/form-data\b/i.test(req.headers['content-type'] ?? '')) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', 'POST /files takes a raw body or multipart/form-data with file parts');
  }
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: req.headers,
      defParamCharset: 'utf8',
      limits: { files: MAX_FORM_FILES, fields: 100, fieldSize: 64 * 1024, headerPairs: 100 },
    });
  } catch (err) {
    throw new HttpError(400, 'ERR_BAD_REQUEST', `malformed multipart/form-data: ${(err as Error).message}`);
  }
  const writers: FileWriter[] = [];
  try {
    await stage(ctx, parser, writers);
  } catch (err) {
    await Promise.all(writers.map((writer) => destroyed(writer)));
    throw err;
  }
  if (writers.length === 0) throw new HttpError(400, 'ERR_BAD_REQUEST', 'the form has no file part');
  const results = await Promise.allSettled(writers.map((writer) => finished(writer.end())));
  const committed = writers.filter((_, i) => results[i]?.status === 'fulfilled').map((writer) => writer.name);
  ctx.metrics.committed(committed.length);
  const failure = results.find((result) => result.status === 'rejected');
  if (failure !== undefined) throw Object.assign(failure.reason as Error, { committed });
  sendJson(res, 201, { names: committed });
}

/** Reads the whole envelope, each file part into a writer that is left open (not committed). */
async function stage(ctx: RequestContext, parser: busboy.Busboy, writers: FileWriter[]): Promise<void> {
  const { store } = ctx;
  const parts: Promise<void>[] = [];
  const chosen = new Set<string>();
  const body = requestBody(ctx);
  const parsed = new Promise<void>((resolve, reject) => {
    const refuse = (err: unknown): void => {
      reject(err);
      body.unpipe(parser);
      body.destroy();
      parser.destroy();
    };
    body.on('error', refuse);
    parser.on('error', (err: Error) =>
      refuse(new HttpError(400, 'ERR_BAD_REQUEST', `malformed multipart/form-data: ${err.message}`)),
    );
    parser.on('filesLimit', () =>
      refuse(new HttpError(413, 'ERR_TOO_MANY_FILES', `a form may carry at most ${MAX_FORM_FILES} files`)),
    );
    parser.on('fieldsLimit', () => refuse(new HttpError(413, 'ERR_TOO_MANY_FILES', 'too many form fields')));
    parser.on('file', (_field: string, stream: Readable, info: busboy.FileInfo) => {
      // errors of a part surface through the parser's 'error' (or the copy below)
      stream.on('error', () => {});
      // a form submitted with no file chosen sends a part with an empty filename
      if (info.filename === '' || info.filename === undefined) return void stream.resume();
      const name = validName(store, info.filename);
      if (name !== undefined && chosen.has(name)) {
        stream.resume();
        return refuse(new HttpError(400, 'ERR_BAD_REQUEST', `two parts are named ${JSON.stringify(name)}`));
      }
      if (name !== undefined) chosen.add(name);
      const writer = store.create(name);
      // a writer's error surfaces through `errored`, the copy and `finished`
      writer.on('error', () => {});
      writers.push(writer);
      const part = copy(stream, writer);
      part.catch(refuse);
      parts.push(part);
    });
    parser.on('close', resolve);
  });
  body.pipe(parser);
  await parsed;
  await Promise.all(parts);
}

function validName(store: RequestContext['store'], filename: string): string | undefined {
  try {
    store.path(filename, 'new');
    return filename;
  } catch {
    return undefined;
  }
}

/** Writes a part into the writer with backpressure, without ending it. */
async function copy(stream: Readable, writer: FileWriter): Promise<void> {
  for await (const chunk of stream) {
    if (!writer.write(chunk)) await once(writer, 'drain');
  }
  if (writer.errored) throw writer.errored;
}

function destroyed(writer: FileWriter): Promise<void> {
  if (writer.closed) return Promise.resolve();
  writer.destroy();
  return once(writer, 'close').then(() => undefined);
}
