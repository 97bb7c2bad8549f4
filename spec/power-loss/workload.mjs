// The power-loss explorer's workload: every kind of store operation, each
// announced in the journal before it starts ("begin") and after it is
// acknowledged to the caller ("ack"). The journal is written with writeSync on
// the main thread, so each line is one write(2) in the system-call trace, in
// order with the file-system calls around it.
//
//   node workload.mjs LIBRARY_URL STORE DURABILITY JOURNAL ARCHIVE
import { createHash } from 'node:crypto';
import { createReadStream, openSync, writeSync } from 'node:fs';
import { selfChecking as body } from './self-checking.mjs';

const [libraryUrl, root, durability, journalPath, archivePath] = process.argv.slice(2);
const { FileStore } = await import(libraryUrl);
const store = new FileStore(root, { durability });
const journal = openSync(journalPath, 'a');
const log = (record) => writeSync(journal, `${JSON.stringify(record)}\n`);
const sha = (data) => createHash('sha256').update(data).digest('hex');

/** Writes `data` in chunks of 16 KiB, so a large file takes several write calls. */
function commit(name, data, options) {
  return new Promise((resolve, reject) => {
    const writer = store.create(name, options);
    writer.on('error', reject);
    writer.on('finish', () => resolve(writer.name));
    for (let at = 0; at < data.length; at += 16384) writer.write(data.subarray(at, at + 16384));
    writer.end();
  });
}

let nextId = 0;
async function step(record, run) {
  const id = nextId++;
  log({ phase: 'begin', id, ...record });
  const result = await run();
  log({ phase: 'ack', id, ...record, ...result });
}

// concurrent commits of generated names (rename) and of chosen names (link + unlink)
const sizes = [0, 100, 5000, 40000, 700, 20000];
await Promise.all(
  sizes.map((bytes, i) => {
    const data = body(i, bytes);
    return step({ op: 'commit', area: 'new', sha: sha(data), seq: i }, async () => ({
      name: await commit(undefined, data),
    }));
  }),
);
for (const name of ['named-a', 'named-b']) {
  const data = body(name.length * 3 + name.charCodeAt(6), 3000);
  await step({ op: 'commit', area: 'new', name, sha: sha(data) }, async () => ({ name: await commit(name, data) }));
}
// a durable overwrite of a file that was there before the trace began
const replacement = body(99, 2500);
await step({ op: 'commit', area: 'new', name: 'pre-2', sha: sha(replacement) }, async () => ({
  name: await commit('pre-2', replacement, { overwrite: true }),
}));

const generated = [];
for await (const entry of store.list('new')) if (/^\d/.test(entry.name)) generated.push(entry.name);
generated.sort();

// claims, moves, copies, removes
for (const name of generated.slice(0, 3)) {
  await step({ op: 'claim', name }, async () => ({ won: await store.claim(name) }));
}
await step({ op: 'move', name: generated[3], from: 'new', to: 'cur' }, () =>
  store.move(generated[3], 'new', 'cur').then(() => ({})),
);
await step({ op: 'move', name: generated[0], from: 'cur', to: 'new' }, () =>
  store.move(generated[0], 'cur', 'new').then(() => ({})),
);
await step({ op: 'copy', name: 'named-a', from: 'new', to: 'cur' }, () =>
  store.copy('named-a', 'new', 'cur').then(() => ({})),
);
await step({ op: 'copy', name: 'pre-1', from: 'new', to: 'cur', overwrite: true }, () =>
  store.copy('pre-1', 'new', 'cur', { overwrite: true }).then(() => ({})),
);
await step({ op: 'remove', name: generated[1], area: 'cur' }, () => store.remove(generated[1], 'cur').then(() => ({})));

// an archive of three files, imported into new/
await step({ op: 'import', area: 'new' }, async () => ({
  names: await store.importTar(createReadStream(archivePath)),
}));
