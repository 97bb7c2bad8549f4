// exportTar of a live store: writer processes commit self-checking files into
// new/ and a consumer process claims them into cur/ while this process exports
// both areas again and again. Every archive must parse, hold each name once,
// and hold only whole files (each body checks its own length and SHA-256):
// files that vanish are skipped, none is torn. Short in `npm test`, long in a
// soak (FILESTORE_SOAK=1).
// TMPDIR: one round's store at a time, at most 2 x MAX_FILES files of up to
// 4 KiB plus the seed (about 4 MiB): under 50 MiB, however fast the writers are.
import { rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { expect, it } from 'vitest';
import { BATCH_NAMES } from '../lib/tar/reader.js';
import { tempStore } from './helpers.js';
import { entriesOf } from './tar-helpers.js';
import { rounds, selfCheckingBody, SOAK, startWorker, TIMEOUT, verifiesSelf } from './reliability.js';

/** Files each writer process commits at most in a round. */
const MAX_FILES = 5000;

/** One round: a fresh store, seeded, with two writer processes and a consumer process; `exports` exports of each area. */
async function round(exports: number): Promise<number> {
  const store = await tempStore({ durability: 'none' });
  // enough files that most of each export goes through the reader thread, some of them large
  for (let i = 0; i < 4 * BATCH_NAMES; i++) {
    await writeFile(join(store.root, 'new', `seed-${i}`), selfCheckingBody(i % 16 === 0 ? 200_000 : (i * 97) % 3000));
  }
  const writers = [0, 1].map((tag) =>
    startWorker('crash-writer', { root: store.root, concurrency: 4, maxBytes: 4000, maxFiles: MAX_FILES, tag }),
  );
  const consumer = startWorker('consume', { root: store.root });
  await Promise.all(writers.map((writer) => writer.waitFor('started')));
  await consumer.waitFor('ready');
  consumer.send('go');
  let exported = 0;
  try {
    for (let i = 0; i < exports; i++) {
      for (const area of ['new', 'cur'] as const) {
        const entries = await entriesOf(store.exportTar(area));
        const names = entries.map((entry) => entry.name);
        expect(new Set(names).size, `${area}: each name once`).toBe(names.length);
        for (const { name, size, body } of entries) {
          expect(body.length, name).toBe(size);
          expect(verifiesSelf(body), `${area}/${name} is whole`).toBe(true);
        }
        exported += entries.length;
      }
    }
  } finally {
    for (const writer of writers) writer.child.kill('SIGKILL');
    consumer.send('stop');
    await consumer.exit;
    await rm(dirname(store.root), { recursive: true, force: true });
  }
  return exported;
}

it(
  'exports only whole files, each once, while writers commit and a consumer claims',
  async () => {
    const rounds_ = rounds(2, 40);
    let exported = 0;
    for (let r = 0; r < rounds_; r++) exported += await round(4);
    expect(exported).toBeGreaterThan(rounds_ * 4 * 4 * BATCH_NAMES);
    if (SOAK) console.log(`tar-live: ${rounds_} rounds, ${exported} files exported, all whole, each once per archive`);
  },
  TIMEOUT,
);
