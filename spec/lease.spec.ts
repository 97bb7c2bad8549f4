// Leased consumers: renewal, release, requeue, repair of pairs, collisions, poison files.
// Crashes are real: child processes killed with SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { link, lstat, readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { FileStore, type Entry, type LeaseEvent } from '../lib/index.js';
import { docBlock } from './doc-blocks.js';
import { DIST, namesIn, tempDir, tempStore } from './helpers.js';

async function commit(store: FileStore, name?: string, data = 'x'): Promise<string> {
  const writer = store.create(name);
  writer.end(data);
  await finished(writer);
  return writer.name;
}

const running = new Set<ChildProcess>();

afterEach(() => {
  for (const proc of running) proc.kill('SIGKILL');
  running.clear();
});

/**
 * A leased follower in its own process. It logs `start NAME PID DELIVERY TIME`
 * and `end NAME PID TIME` lines to LOG, holds each file HOLD ms (SLOW_HOLD ms
 * for names ending in -slow), then acknowledges it by removing it. LOOPS
 * loops run side by side, each holding one file; CRASH_ON names a file on
 * which the process SIGKILLs itself; HOLD_FOREVER=1 never finishes a file.
 */
const CONSUMER = `
const { FileStore } = await import(process.env.DIST);
const { appendFileSync } = await import('node:fs');
const store = new FileStore(process.env.STORE, { durability: 'none' });
const ac = new AbortController();
process.once('SIGTERM', () => ac.abort());
const log = (line) => appendFileSync(process.env.LOG, line + '\\n');
const options = {
  follow: true, signal: ac.signal, lease: Number(process.env.LEASE), pollInterval: Number(process.env.POLL),
  maxDeliveries: Number(process.env.MAX ?? 5), onEvent: (event) => log('event ' + event.type + ' ' + event.name),
};
async function loop() {
  for await (const entry of store.consume(options)) {
    log(['start', entry.name, process.pid, entry.deliveries, Date.now()].join(' '));
    console.log('got ' + entry.name);
    if (process.env.CRASH_ON === entry.name) process.kill(process.pid, 'SIGKILL');
    if (process.env.HOLD_FOREVER === '1') await new Promise(() => {});
    await new Promise((resolve) => setTimeout(resolve, Number(entry.name.endsWith('-slow') ? process.env.SLOW_HOLD : process.env.HOLD)));
    log(['end', entry.name, process.pid, Date.now(), entry.signal.aborted ? 'lost' : 'held'].join(' '));
    await store.remove(entry.name, 'cur');
  }
}
await Promise.all(Array.from({ length: Number(process.env.LOOPS ?? 1) }, loop));
`;

interface Consumer {
  proc: ChildProcess;
  /** Resolves when the consumer has printed `got` lines for `count` files. */
  got(count: number): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

function consumer(env: Record<string, string>): Consumer {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', CONSUMER], {
    env: { ...process.env, DIST, POLL: '100', HOLD: '20', SLOW_HOLD: '20', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(proc);
  let stderr = '';
  let got = 0;
  const waiters: { count: number; resolve: () => void }[] = [];
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    got += chunk.split('\n').filter((line) => line.startsWith('got ')).length;
    for (const waiter of waiters.filter((w) => got >= w.count)) waiter.resolve();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) =>
    proc.on('close', (code, signal) => {
      running.delete(proc);
      resolve({ code, signal, stderr });
    }),
  );
  return {
    proc,
    exited,
    got: (count) =>
      new Promise<void>((resolve, reject) => {
        if (got >= count) return resolve();
        waiters.push({ count, resolve });
        void exited.then(({ stderr: err }) => reject(new Error(`consumer exited after ${got} files: ${err}`)));
      }),
  };
}

interface Processing {
  name: string;
  pid: number;
  deliveries: number;
  start: number;
  end: number | undefined;
  lost: boolean;
}

async function processings(log: string): Promise<{ runs: Processing[]; events: string[] }> {
  const text = await readFile(log, 'utf8').catch(() => '');
  const runs: Processing[] = [];
  const events: string[] = [];
  for (const line of text.split('\n').filter(Boolean)) {
    const [kind, name, ...rest] = line.split(' ') as [string, string, ...string[]];
    if (kind === 'event') events.push(`${name} ${rest[0]}`);
    if (kind === 'start') {
      runs.push({
        name,
        pid: Number(rest[0]),
        deliveries: Number(rest[1]),
        start: Number(rest[2]),
        end: undefined,
        lost: false,
      });
    }
    if (kind === 'end') {
      const run = runs.find((r) => r.name === name && r.pid === Number(rest[0]) && r.end === undefined);
      if (run !== undefined) {
        run.end = Number(rest[1]);
        run.lost = rest[2] === 'lost';
      }
    }
  }
  return { runs, events };
}

/** Pairs of runs of one file by two processes whose processing overlapped while both were alive. */
function overlaps(runs: Processing[], deaths: Map<number, number>): string[] {
  const found: string[] = [];
  for (const a of runs) {
    for (const b of runs) {
      if (a === b || a.name !== b.name || a.start > b.start) continue;
      const aEnd = a.end ?? deaths.get(a.pid) ?? Number.POSITIVE_INFINITY;
      if (b.start < aEnd) found.push(`${a.name}: ${a.pid} until ${aEnd}, ${b.pid} from ${b.start}`);
    }
  }
  return found;
}

async function collect(entries: AsyncIterable<Entry>): Promise<Entry[]> {
  const found: Entry[] = [];
  for await (const entry of entries) found.push(entry);
  return found;
}

/** The entries, each acknowledged (removed) in the loop body. */
async function collectAcked(store: FileStore, entries: AsyncIterable<Entry>): Promise<Entry[]> {
  const found: Entry[] = [];
  for await (const entry of entries) {
    found.push(entry);
    await store.remove(entry.name, 'cur');
  }
  return found;
}

describe('consume({ lease })', () => {
  it('yields entries with their delivery count; a file the body leaves in cur/ goes back to new/ at once', async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'kept');
    await commit(store, 'acked');
    const events: LeaseEvent[] = [];

    const seen: string[] = [];
    for await (const entry of store.consume({ lease: 10_000, onEvent: (event) => events.push(event) })) {
      seen.push(`${entry.name} ${entry.deliveries}`);
      expect(entry.signal.aborted).toBe(false);
      if (entry.name === 'acked') await store.remove(entry.name, 'cur');
    }

    expect(seen).toEqual(['acked 1', 'kept 1']);
    expect(await namesIn(store, 'new')).toEqual(['kept']);
    expect(await namesIn(store, 'cur')).toEqual([]);
    expect(events).toEqual([{ type: 'requeued', name: 'kept', deliveries: 1 }]);
    const again = await collect(store.consume({ lease: 10_000 }));
    expect(again.map((entry) => (entry as { deliveries?: number }).deliveries)).toEqual([2]);
  });

  it('releases the file the body is in when the loop is left by break or a throw', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a', 'b']) await commit(store, name);

    for await (const _ of store.consume({ lease: 10_000 })) break;
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
    await expect(
      (async () => {
        for await (const _ of store.consume({ lease: 10_000 })) throw new Error('body failed');
      })(),
    ).rejects.toThrow('body failed');
    expect(await namesIn(store, 'new')).toEqual(['a', 'b']);
    expect(await namesIn(store, 'cur')).toEqual([]);
  });

  it('keeps a file whose body runs 3x the lease, against a requeue by age racing it', { timeout: 20_000 }, async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'long');
    const lease = 400;
    let requeued: string[] = [];
    let racing = true;
    const requeuer = (async () => {
      while (racing) {
        requeued = requeued.concat(await store.requeue({ olderThan: lease }));
        await sleep(5);
      }
    })();

    for await (const entry of store.consume({ lease })) {
      await sleep(3 * lease);
      expect(entry.signal.aborted).toBe(false);
      expect(await namesIn(store, 'cur')).toEqual(['long']);
      await store.remove(entry.name, 'cur');
    }
    racing = false;
    await requeuer;
    expect(requeued).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
  });

  it('aborts the entry signal when a late owner finds its file delivered to another consumer', async () => {
    const store = await tempStore({ durability: 'none' });
    await commit(store, 'taken');
    const events: LeaseEvent[] = [];
    const entries = store.consume({ lease: 400, onEvent: (event) => events.push(event) });
    const first = await entries.next();
    expect(first.done).toBe(false);
    const entry = first.value as Entry & { signal: AbortSignal };

    // as if the owner had been silent for a lease: requeued and claimed elsewhere
    // (a renewal between the requeue's two looks makes it back off: then it is tried again)
    let requeued: string[] = [];
    for (let tries = 0; requeued.length === 0 && tries < 20; tries++) {
      await sleep(10);
      requeued = await store.requeue({ olderThan: 0 });
    }
    expect(requeued).toEqual(['taken']);
    const other = store.consume({ lease: 10_000 });
    expect((await other.next()).value).toMatchObject({ name: 'taken', deliveries: 2 });
    await sleep(300); // past the owner's next renewal (every quarter lease)

    expect(entry.signal.aborted).toBe(true);
    expect(entry.signal.reason).toMatchObject({ code: 'ERR_LEASE_LOST' });
    expect(events).toContainEqual({ type: 'lease-lost', name: 'taken' });
    await entries.return?.();
    expect(await namesIn(store, 'cur')).toEqual(['taken']); // the other consumer's, not released
    await other.return?.();
  });

  it.each([
    ['lease zero', { lease: 0 }],
    ['lease a string', { lease: '100' }],
    ['maxDeliveries without lease', { maxDeliveries: 3 }],
    ['maxDeliveries zero', { lease: 100, maxDeliveries: 0 }],
    ['maxDeliveries fractional', { lease: 100, maxDeliveries: 1.5 }],
    ['repairAfter negative', { repairAfter: -1 }],
    ['onEvent not a function', { onEvent: 'log' }],
  ])('throws ERR_INVALID_OPTION synchronously for %s', async (_, options) => {
    const store = await tempStore();
    expect(() => store.consume(options as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
  });
});

describe('a name in both new/ and cur/ never stops a consumer', () => {
  it.each([
    ['plain', {}],
    ['leased', { lease: 10_000 }],
  ])('%s: a different file of the name in cur/ is reported once and skipped; later files flow', async (_, options) => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['a-first', 'm-twice', 'z-last']) await commit(store, name, 'new one');
    await writeFile(join(store.root, 'cur', 'm-twice'), 'old one');
    const events: LeaseEvent[] = [];

    const seen = [];
    for await (const entry of store.consume({ ...options, onEvent: (event) => events.push(event) })) {
      seen.push(entry.name);
      await store.remove(entry.name, 'cur');
    }

    expect(seen).toEqual(['a-first', 'z-last']);
    expect(events).toEqual([{ type: 'collision', name: 'm-twice' }]);
    expect(await namesIn(store, 'new')).toEqual(['m-twice']);
    expect(await readFile(join(store.root, 'cur', 'm-twice'), 'utf8')).toBe('old one');
  });

  it.each([
    ['plain', {}],
    ['leased', { lease: 400 }],
  ] as [string, { lease?: number }][])(
    '%s: a half-claimed pair is skipped while young, then repaired and delivered',
    async (_, options) => {
      const store = await tempStore({ durability: 'none' });
      for (const name of ['a-first', 'm-pair', 'z-last']) await commit(store, name);
      await link(join(store.root, 'new', 'm-pair'), join(store.root, 'cur', 'm-pair')); // a claimer died here
      const events: LeaseEvent[] = [];
      const consumeOptions = { ...options, repairAfter: 400, onEvent: (event: LeaseEvent) => events.push(event) };

      const young = await collectAcked(store, store.consume(consumeOptions));
      expect(young.map((entry) => entry.name)).toEqual(['a-first', 'z-last']);
      expect(events).toEqual([]);
      await sleep(500);

      const old = await collectAcked(store, store.consume(consumeOptions));
      expect(old.map((entry) => entry.name)).toEqual(['m-pair']);
      expect(events).toContainEqual({ type: 'repaired', name: 'm-pair' });
      expect(await namesIn(store, 'new')).toEqual([]);
      expect(await namesIn(store, 'cur')).toEqual([]);
    },
  );
});

describe('requeue()', () => {
  it('moves files whose lease is older than olderThan back to new/, leaves younger and parked ones', async () => {
    const store = await tempStore({ durability: 'none' });
    for (const name of ['old', 'parked', 'spent']) {
      await commit(store, name);
      await store.claim(name);
    }
    const cur = (name: string) => join(store.root, 'cur', name);
    await utimes(cur('old'), new Date(), 1); // delivered once
    await utimes(cur('spent'), new Date(), 2); // delivered twice
    await utimes(cur('parked'), new Date(), 86_400 + 3); // parked after 3 deliveries
    await sleep(300);
    await commit(store, 'young');
    await store.claim('young');
    const events: LeaseEvent[] = [];

    const requeued = await store.requeue({ olderThan: 250, maxDeliveries: 2, onEvent: (e) => events.push(e) });

    expect(requeued).toEqual(['old']);
    expect(events.sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { type: 'requeued', name: 'old', deliveries: 1 },
      { type: 'parked', name: 'spent', deliveries: 2 },
    ]);
    expect(await namesIn(store, 'new')).toEqual(['old']);
    expect(await namesIn(store, 'cur')).toEqual(['parked', 'spent', 'young']);
    expect((await lstat(cur('spent'))).mtimeMs).toBe((86_400 + 2) * 1000);
    expect(await store.requeue({ olderThan: 0 })).toEqual(['young']); // parked ones stay
    expect(await store.requeue({ names: ['parked'] })).toEqual(['parked']);
    expect(await namesIn(store, 'new')).toEqual(['old', 'parked', 'young']);
    const again = await collect(store.consume({ lease: 60_000, maxDeliveries: 2 }));
    expect(again).toMatchObject([
      { name: 'old', deliveries: 2 },
      { name: 'parked', deliveries: 1 },
      { name: 'young', deliveries: 1 },
    ]);
  });

  it('rejects bad options with ERR_INVALID_OPTION and by-hand names with ENOENT, EEXIST or ERR_INVALID_NAME', async () => {
    const store = await tempStore({ durability: 'none' });
    await expect(store.requeue({})).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(store.requeue({ olderThan: -1 })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION' });
    await expect(store.requeue({ olderThan: 1, maxDeliveries: 0 })).rejects.toMatchObject({
      code: 'ERR_INVALID_OPTION',
    });
    await expect(store.requeue({ names: ['../x'] })).rejects.toMatchObject({ code: 'ERR_INVALID_NAME' });
    await expect(store.requeue({ names: ['missing'] })).rejects.toMatchObject({ code: 'ENOENT' });
    await commit(store, 'both');
    await writeFile(join(store.root, 'cur', 'both'), 'other');
    await expect(store.requeue({ names: ['both'] })).rejects.toMatchObject({ code: 'EEXIST' });
  });
});

describe('leased consumers in processes killed with SIGKILL', () => {
  it('a killed consumer holding files: each is processed by another within lease + one poll interval, never by two live ones at once', {
    timeout: 120_000,
  }, async () => {
    const rounds = Number(process.env.KILL_ROUNDS ?? 3);
    const lease = 1000;
    const poll = 100;
    const held = 5;
    const store = await tempStore({ durability: 'none' });
    const log = join(await tempDir(), 'log');
    const env = { STORE: store.root, LOG: log, LEASE: String(lease), POLL: String(poll) };
    const deaths = new Map<number, number>();
    const latencies: number[] = [];
    const survivors = [
      consumer({ ...env, SLOW_HOLD: String(3 * lease) }),
      consumer({ ...env, SLOW_HOLD: String(3 * lease) }),
    ];
    for (let round = 0; round < rounds; round++) {
      for (const survivor of survivors) survivor.proc.kill('SIGSTOP'); // let the victim take every file
      const names = [];
      for (let i = 0; i < held; i++) names.push(await commit(store, `r${round}-${i}${i === 0 ? '-slow' : ''}`));
      const victim = consumer({ ...env, LOOPS: String(held), HOLD_FOREVER: '1' });
      await victim.got(held);
      for (const survivor of survivors) survivor.proc.kill('SIGCONT');
      const killedAt = Date.now();
      victim.proc.kill('SIGKILL');
      await victim.exited;
      deaths.set(victim.proc.pid as number, killedAt);
      const deadline = Date.now() + 4 * lease + 10_000;
      for (;;) {
        const { runs } = await processings(log);
        const done = names.every((name) => runs.some((r) => r.name === name && r.pid !== victim.proc.pid && r.end));
        if (done) break;
        if (Date.now() > deadline) throw new Error(`round ${round}: not every file processed again`);
        await sleep(50);
      }
      const { runs } = await processings(log);
      for (const name of names) {
        const again = runs.find((r) => r.name === name && r.pid !== victim.proc.pid) as Processing;
        latencies.push(again.start - killedAt);
      }
    }
    for (const survivor of survivors) survivor.proc.kill('SIGTERM');
    await Promise.all(survivors.map((s) => s.exited));

    const { runs, events } = await processings(log);
    expect(overlaps(runs, deaths)).toEqual([]);
    expect(runs.filter((r) => r.lost)).toEqual([]);
    expect(Math.max(...latencies)).toBeLessThanOrEqual(lease + poll + 250);
    expect(events.filter((e) => e.startsWith('lease-lost'))).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual([]);
    console.log(
      `kill rounds: ${rounds} x ${held} files, lease ${lease} ms, poll ${poll} ms: redelivered after ` +
        `min ${Math.min(...latencies)} / median ${latencies.sort((a, b) => a - b)[latencies.length >> 1]} / max ${Math.max(...latencies)} ms`,
    );
  });

  it('requeuers racing owners: no file lost, none in two areas, none delivered while its owner renews it', {
    timeout: 60_000,
  }, async () => {
    const lease = 500;
    const store = await tempStore({ durability: 'none' });
    const log = join(await tempDir(), 'log');
    const names: string[] = [];
    for (let i = 0; i < 12; i++) names.push(await commit(store, `f${String(i).padStart(2, '0')}-slow`));
    const env = { STORE: store.root, LOG: log, LEASE: String(lease), POLL: '50', SLOW_HOLD: String(3 * lease) };
    const owners = [consumer({ ...env, LOOPS: '2' }), consumer({ ...env, LOOPS: '2' })];
    let racing = true;
    let requeued: string[] = [];
    const inBoth: string[] = [];
    const requeuers = Array.from({ length: 3 }, async () => {
      const racer = new FileStore(store.root, { durability: 'none' });
      while (racing) requeued = requeued.concat(await racer.requeue({ olderThan: lease }));
    });
    // cur/ read before new/: a claim moving a file forward between the reads is not seen twice;
    // a name seen in both is looked at again 50 ms later, past any live link-then-unlink
    const sampler = (async () => {
      while (racing) {
        const inCur = new Set(await namesIn(store, 'cur'));
        const candidates = (await namesIn(store, 'new')).filter((name) => inCur.has(name));
        if (candidates.length > 0) await sleep(50);
        for (const name of candidates) {
          const [inNew, stillInCur] = await Promise.all(
            ['new', 'cur'].map((area) =>
              lstat(join(store.root, area, name)).then(
                () => true,
                () => false,
              ),
            ),
          );
          if (inNew && stillInCur) inBoth.push(name);
        }
        await sleep(10);
      }
    })();

    await Promise.all(owners.map((owner) => owner.got(6)));
    racing = false;
    await Promise.all([...requeuers, sampler]);
    for (const owner of owners) owner.proc.kill('SIGTERM');
    await Promise.all(owners.map((owner) => owner.exited));

    const { runs } = await processings(log);
    expect(requeued).toEqual([]);
    expect(runs.map((r) => r.name).sort()).toEqual(names);
    expect(runs.every((r) => r.deliveries === 1 && r.end !== undefined && !r.lost)).toBe(true);
    expect(inBoth).toEqual([]);
    expect(await namesIn(store, 'new')).toEqual([]);
    expect(await namesIn(store, 'cur')).toEqual([]);
  });

  it('a poison file that kills its consumer every time is delivered exactly maxDeliveries times, then parked', {
    timeout: 60_000,
  }, async () => {
    const store = await tempStore({ durability: 'none' });
    const log = join(await tempDir(), 'log');
    await commit(store, 'poison');
    const env = { STORE: store.root, LOG: log, LEASE: '300', POLL: '50', MAX: '3', CRASH_ON: 'poison' };
    for (let i = 0; i < 3; i++) {
      const victim = consumer(env);
      expect((await victim.exited).signal).toBe('SIGKILL');
    }
    await commit(store, 'healthy');
    const last = consumer(env);
    await last.got(1);
    const deadline = Date.now() + 10_000;
    while (!(await processings(log)).events.includes('parked poison') && Date.now() < deadline) await sleep(50);
    last.proc.kill('SIGTERM');
    await last.exited;

    const { runs, events } = await processings(log);
    expect(runs.filter((r) => r.name === 'poison').map((r) => r.deliveries)).toEqual([1, 2, 3]);
    expect(runs.filter((r) => r.name === 'healthy').map((r) => r.end !== undefined)).toEqual([true]);
    expect(events).toContain('parked poison');
    expect(await namesIn(store, 'cur')).toEqual(['poison']);
    const listed = [];
    for await (const entry of store.list('cur')) listed.push(entry.name);
    expect(listed).toEqual(['poison']);
    expect(await store.requeue({ olderThan: 0 })).toEqual([]);
    expect(await store.requeue({ names: ['poison'] })).toEqual(['poison']);
    expect(await namesIn(store, 'new')).toEqual(['poison']);
  });
});

it('runs the docs leased consumer example: a file left by a killed run is delivered again', {
  timeout: 30_000,
}, async () => {
  const script = docBlock('readme-lease', 'js')
    .replace("from 'maildir-filestore'", `from ${JSON.stringify(DIST)}`)
    .replace('lease: 30_000', 'lease: 600');
  const cwd = await tempDir();
  await writeFile(join(cwd, 'example.mjs'), script);
  const store = new FileStore(join(cwd, 'queue'), { durability: 'none' });
  await store.prepare();
  const name = await commit(store);
  await store.claim(name); // a consumer that died holding it
  const lines: string[] = [];
  const proc = spawn(process.execPath, ['example.mjs'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  let stderr = '';
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const exited = new Promise<number | null>((resolve) => proc.on('close', resolve));
  await new Promise<void>((resolve) =>
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      lines.push(...chunk.split('\n').filter(Boolean));
      if (lines.length > 0) resolve();
    }),
  );
  proc.kill('SIGTERM');

  expect(await exited).toBe(0);
  expect(lines).toEqual([`got ${name} delivery 1`]);
  expect(stderr).toBe(`requeued ${name}\n`);
  expect(await namesIn(store, 'new')).toEqual([]);
  expect(await namesIn(store, 'cur')).toEqual([]);
});
