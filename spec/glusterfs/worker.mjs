// One role of the GlusterFS suite, run inside a "host" namespace by
// spec/glusterfs.spec.ts: node worker.mjs ROLE JSON_ARGS. Reports JSON lines
// on stdout ({"ev": ...}); reads commands ("go", "stop") from stdin.
// Every file written carries its length and hash in its first line, so a
// reader can tell a whole file from a partial one.
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { mkdir, readFile, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { FileStore } from 'maildir-filestore';

const [role, json] = process.argv.slice(2);
const args = JSON.parse(json ?? '{}');
const host = hostname();

function report(ev, fields = {}) {
  process.stdout.write(`${JSON.stringify({ ev, host, ...fields })}\n`);
}

const commands = createInterface({ input: process.stdin });
const waiters = new Map();
const received = new Set();
commands.on('line', (line) => {
  const word = line.trim();
  received.add(word);
  waiters.get(word)?.();
});
const command = (word) =>
  received.has(word) ? Promise.resolve() : new Promise((resolve) => waiters.set(word, resolve));

/** A file's bytes: "LENGTH SHA256\n" then LENGTH random bytes. */
function body(size) {
  const payload = randomBytes(size);
  const sha = createHash('sha256').update(payload).digest('hex');
  return Buffer.concat([Buffer.from(`${size} ${sha}\n`), payload]);
}

/** Whether `data` is a whole file as `body` made it. */
function whole(data) {
  const eol = data.indexOf(10);
  if (eol < 0) return false;
  const [size, sha] = data.subarray(0, eol).toString().split(' ');
  const payload = data.subarray(eol + 1);
  return payload.length === Number(size) && createHash('sha256').update(payload).digest('hex') === sha;
}

async function commit(store, name, data) {
  const writer = store.create(name);
  await pipeline(Readable.from([data]), writer);
  return writer.name;
}

const roles = {
  /** Commits `count` files with generated names, reporting each after its 'finish'. */
  async produce({ root, count, maxSize = 4096, pause = 0 }) {
    const store = new FileStore(root, { durability: 'none' });
    report('ready');
    await command('go');
    const t0 = performance.now();
    for (let i = 0; i < count; i++) {
      const name = await commit(store, undefined, body(randomInt(maxSize + 1)));
      report('made', { name, t: Date.now() });
      if (pause > 0) await new Promise((resolve) => setTimeout(resolve, pause));
    }
    report('done', { ms: performance.now() - t0 });
  },

  /**
   * consume() in follow mode until "stop": checks each file, then keeps it in
   * cur/ (`keep`), removes it (`remove`) or moves it out of the store (`move`).
   */
  async consume({ root, after = 'keep', pollInterval = 200 }) {
    const store = new FileStore(root, { durability: 'none' });
    const stop = new AbortController();
    const archive = join(root, '..', 'archive');
    await mkdir(archive, { recursive: true });
    report('ready');
    await command('go');
    command('stop').then(() => stop.abort());
    try {
      for await (const entry of store.consume({
        follow: true,
        pollInterval,
        signal: stop.signal,
        onEvent: (event) => report('event', { event }),
      })) {
        const data = await readFile(entry.path);
        report('claimed', { name: entry.name, whole: whole(data), t: Date.now() });
        if (after === 'remove') await store.remove(entry.name, 'cur');
        else if (after === 'move') await rename(entry.path, join(archive, `${host}-${entry.name}`));
      }
    } catch (err) {
      report('rejected', { code: err.code ?? null, message: String(err.message) });
      process.exitCode = 1;
    }
    report('done');
    commands.close();
  },

  /** Lists new/, waits for "go", then claims every name in the given order. */
  async race({ root, reverse = false, after = 'keep' }) {
    const store = new FileStore(root, { durability: 'none' });
    const names = [];
    for await (const entry of store.list('new')) names.push(entry.name);
    names.sort();
    if (reverse) names.reverse();
    report('ready', { listed: names.length });
    await command('go');
    let lost = 0;
    for (const name of names) {
      try {
        if (await store.claim(name)) {
          const data = await readFile(store.path(name, 'cur'));
          report('claimed', { name, whole: whole(data) });
          if (after === 'remove') await store.remove(name, 'cur');
        } else lost++;
      } catch (err) {
        report('rejected', { name, code: err.code ?? null, message: String(err.message) });
        process.exitCode = 1;
      }
    }
    report('done', { lost });
    commands.close();
  },

  /** Waits for "go", then commits each of `names` (chosen by the caller, the same on every host). */
  async collide({ root, names }) {
    const store = new FileStore(root, { durability: 'none' });
    report('ready');
    await command('go');
    for (const name of names) {
      const data = body(randomInt(2048));
      const sha = createHash('sha256').update(data).digest('hex');
      try {
        await commit(store, name, data);
        report('won', { name, sha });
      } catch (err) {
        report(err.code === 'EEXIST' ? 'lost' : 'rejected', { name, code: err.code ?? null });
      }
    }
    report('done');
    commands.close();
  },
};

/** Prints the sha256 of every file of an area, then ends. */
roles.digest = async ({ root, area }) => {
  const store = new FileStore(root);
  const files = {};
  for await (const entry of store.list(area)) {
    files[entry.name] = createHash('sha256')
      .update(await readFile(entry.path))
      .digest('hex');
  }
  report('digest', { files });
  commands.close();
};

/** Creates the store's areas. */
roles.prepare = async ({ root }) => {
  await new FileStore(root).prepare();
  report('done');
  commands.close();
};

const run = roles[role];
if (run === undefined) throw new Error(`unknown role ${role}`);
await run(args);
if (role === 'produce') commands.close();
