// Bug: importTar hung forever when its source failed while an entry was being committed
// (pump destroys the extract without an error; tar-stream's iterator then never settles
// the next next()). Seen as a POST /import that never answered its 413.
import { PassThrough, type Readable } from 'node:stream';
import tarStream from 'tar-stream';
import { expect, it } from 'vitest';
import { importTar, type ImportTarError } from '../lib/tar/import.js';
import { namesIn, tempStore } from './helpers.js';

async function archive(entries: Array<[string, Buffer]>): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const [name, body] of entries) pack.entry({ name }, body);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack as unknown as Readable) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

it('rejects with the source error when the source fails while an entry is being committed', {
  timeout: 10_000,
}, async () => {
  const store = await tempStore({ durability: 'none' });
  const body = await archive([
    ['first', Buffer.from('whole')],
    ['second', Buffer.alloc(50_000, 1)],
  ]);
  const source = new PassThrough();
  source.write(body.subarray(0, 10_000)); // all of `first`, part of `second`
  const boom = Object.assign(new Error('the source failed'), { code: 'ESOURCE' });
  const failure = await importTar(source, {}, (name, _area, overwrite) => {
    const writer = store.create(name, { overwrite });
    // the source fails while `first` is still being written and committed
    if (name === 'first') source.destroy(boom);
    return writer;
  }).then(
    () => expect.fail('expected a rejection'),
    (err: ImportTarError) => err,
  );
  expect(failure).toBe(boom);
  expect(failure.committed).toEqual(['first']);
  expect(await namesIn(store, 'new')).toEqual(['first']);
  expect(await namesIn(store, 'tmp')).toEqual([]);
});
