// requeue from the command line and over HTTP: expired leases by age, a parked file by name.
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import type { FileStore } from '../lib/index.js';
import { errorMessage, runCli } from './cli-helpers.js';
import { namesIn, tempStore } from './helpers.js';
import { expectError, start } from './server-helpers.js';

async function commit(store: FileStore, name: string): Promise<void> {
  const writer = store.create(name);
  writer.end('x');
  await finished(writer);
}

/** `old` (delivered once) and `parked` (parked after 3) claimed 300 ms ago, `young` just now. */
async function leasedFiles(store: FileStore): Promise<void> {
  for (const name of ['old', 'parked']) {
    await commit(store, name);
    await store.claim(name);
  }
  await utimes(join(store.root, 'cur', 'old'), new Date(), 1);
  await utimes(join(store.root, 'cur', 'parked'), new Date(), 86_400 + 3);
  await sleep(300);
  await commit(store, 'young');
  await store.claim('young');
}

describe('requeue DIR', () => {
  it('--older-than moves expired leases back to new/ and prints them; parked and young files stay', async () => {
    const store = await tempStore({ durability: 'none' });
    await leasedFiles(store);

    expect(await runCli(['requeue', store.root, '--older-than', '250ms'])).toMatchObject({
      code: 0,
      stdout: 'old\n',
      stderr: '',
    });
    expect(await namesIn(store, 'new')).toEqual(['old']);
    expect(await namesIn(store, 'cur')).toEqual(['parked', 'young']);
    expect(await runCli(['requeue', store.root, '--older-than', '1h', '--json'])).toMatchObject({
      code: 0,
      stdout: '',
      stderr: '',
    });
  });

  it('--max-deliveries parks an expired file delivered that often, with a line on stderr', async () => {
    const store = await tempStore({ durability: 'none' });
    await leasedFiles(store);

    const result = await runCli(['requeue', store.root, '--older-than', '250', '--max-deliveries', '1', '--json']);

    expect(result).toMatchObject({
      code: 0,
      stdout: '',
      stderr: 'maildir-filestore: parked: old stays in cur/ after 1 deliveries (requeue it by name to retry)\n',
    });
    expect(await namesIn(store, 'cur')).toEqual(['old', 'parked', 'young']);
  });

  it('NAME moves a parked file back by hand; a missing one is ENOENT, exit 1', async () => {
    const store = await tempStore({ durability: 'none' });
    await leasedFiles(store);

    expect(await runCli(['requeue', store.root, 'parked', '--json'])).toMatchObject({
      code: 0,
      stdout: '{"name":"parked","area":"new"}\n',
      stderr: '',
    });
    expect(await namesIn(store, 'new')).toEqual(['parked']);
    const missing = await runCli(['requeue', store.root, 'parked']);
    expect(missing.code).toBe(1);
    errorMessage(missing.stderr, 'ENOENT');
  });

  it.each([
    ['neither --older-than nor NAME', []],
    ['both', ['--older-than', '1s', 'x']],
    ['a bad age', ['--older-than', 'soon']],
    ['a bad name', ['.hidden']],
  ])('is a usage error (exit 2) with %s', async (_, args) => {
    const store = await tempStore({ durability: 'none' });
    const result = await runCli(['requeue', store.root, ...args]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
  });
});

describe('POST /requeue', () => {
  it('?olderThan=MS requeues expired leases, ?name=NAME a file by hand: 200 {"requeued": [...]}', async () => {
    const { store, base } = await start();
    await leasedFiles(store);

    const byAge = await fetch(`${base}/requeue?olderThan=250`, { method: 'POST' });
    expect(byAge.status).toBe(200);
    expect(await byAge.json()).toEqual({ requeued: ['old'] });
    const byName = await fetch(`${base}/requeue?name=parked`, { method: 'POST' });
    expect(await byName.json()).toEqual({ requeued: ['parked'] });
    expect(await (await fetch(`${base}/files?area=new`)).json()).toEqual(expect.arrayContaining(['old', 'parked']));
    expect(await (await fetch(`${base}/files?area=cur`)).json()).toEqual(['young']);
  });

  it('answers 400 for a bad query, 404 for a name not in cur/, 409 when new/ holds it too', async () => {
    const { store, base } = await start();
    await commit(store, 'both');
    await writeFile(join(store.root, 'cur', 'both'), 'other');

    await expectError(await fetch(`${base}/requeue`, { method: 'POST' }), 400, 'ERR_BAD_REQUEST');
    await expectError(await fetch(`${base}/requeue?olderThan=soon`, { method: 'POST' }), 400, 'ERR_BAD_REQUEST');
    await expectError(await fetch(`${base}/requeue?name=..`, { method: 'POST' }), 400, 'ERR_INVALID_NAME');
    await expectError(await fetch(`${base}/requeue?name=missing`, { method: 'POST' }), 404, 'ENOENT');
    await expectError(await fetch(`${base}/requeue?name=both`, { method: 'POST' }), 409, 'EEXIST');
    await expectError(await fetch(`${base}/requeue`), 405, 'ERR_METHOD_NOT_ALLOWED');
  });
});
