// Guarantees 5 and 8 on a network file system (issue 12): a GlusterFS volume
// mounted by two "hosts" (each its own network, mount, UTS and PID
// namespaces; spec/glusterfs/run.sh), writers and consumers on both. Pass:
// every file claimed exactly once, none lost or partial, no claim() or
// consume() rejection. Needs root, /dev/fuse and Debian's glusterfs-server
// and glusterfs-client (.ci/run installs them); skipped with the reason
// elsewhere. The figures it prints are the ones docs/reliability.md quotes.
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('./glusterfs/run.sh', import.meta.url));
const WORKER = fileURLToPath(new URL('./glusterfs/worker.mjs', import.meta.url));
const PHASE_TIMEOUT = 120_000;

function unavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (namespaces, mounts)';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  for (const tool of ['glusterd', 'gluster', 'mount.glusterfs', 'unshare', 'nsenter', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status !== 0) {
      return `needs ${tool} (Debian: glusterfs-server, glusterfs-client, util-linux, iproute2)`;
    }
  }
  if (spawnSync('unshare', ['--net', '--pid', '--fork', 'true'], { stdio: 'ignore' }).status !== 0) {
    return 'cannot create namespaces here';
  }
  return null;
}

const reason = unavailable();

interface Ready {
  server: number;
  a: number;
  b: number;
  mount: string;
  log: string;
}

interface Report {
  ev: string;
  host: string;
  name?: string;
  whole?: boolean;
  t?: number;
  ms?: number;
  code?: string | null;
  message?: string;
  sha?: string;
  files?: Record<string, string>;
  event?: { type: string; name: string };
}

/** A worker process inside a host's namespaces. */
class Worker {
  readonly reports: Report[] = [];
  readonly exit: Promise<{ code: number | null; stderr: string }>;
  readonly #child: ChildProcessWithoutNullStreams;
  #listeners: Array<() => void> = [];

  constructor(hostPid: number, role: string, args: object) {
    this.#child = spawn('nsenter', [
      '-t',
      String(hostPid),
      '-n',
      '-m',
      '-u',
      '-p',
      '--',
      process.execPath,
      WORKER,
      role,
      JSON.stringify(args),
    ]);
    let out = '';
    let stderr = '';
    this.#child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      let eol = out.indexOf('\n');
      while (eol >= 0) {
        this.reports.push(JSON.parse(out.slice(0, eol)) as Report);
        out = out.slice(eol + 1);
        eol = out.indexOf('\n');
      }
      for (const listener of this.#listeners) listener();
    });
    this.#child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    this.exit = new Promise((resolve) => this.#child.on('close', (code) => resolve({ code, stderr })));
  }

  all(ev: string): Report[] {
    return this.reports.filter((r) => r.ev === ev);
  }

  /** Resolves once `done()` holds for the reports so far. */
  until(done: () => boolean, timeout = PHASE_TIMEOUT): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done()) return;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== check);
        resolve();
      };
      const timer = setTimeout(() => reject(new Error(`timed out; reports: ${this.reports.length}`)), timeout);
      this.#listeners.push(check);
      check();
    });
  }

  send(word: string): void {
    if (this.#child.stdin.writable) this.#child.stdin.write(`${word}\n`);
  }
}

/** Runs `role` on a host and waits for its end; its reports. */
async function once(hostPid: number, role: string, args: object): Promise<Report[]> {
  const worker = new Worker(hostPid, role, args);
  const { code, stderr } = await worker.exit;
  expect(code, stderr).toBe(0);
  return worker.reports;
}

async function ready(workers: Worker[]): Promise<void> {
  await Promise.all(workers.map((w) => w.until(() => w.all('ready').length > 0)));
}

function claimedNames(workers: Worker[]): string[] {
  return workers.flatMap((w) => w.all('claimed').map((r) => r.name ?? ''));
}

function rejections(workers: Worker[]): Report[] {
  return workers.flatMap((w) => w.all('rejected'));
}

/** Resolves once `done()` holds, checked every 50 ms. */
function waitUntil(done: () => boolean, timeout = PHASE_TIMEOUT / 2): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setInterval(() => {
      if (done()) resolve();
      else if (Date.now() - started > timeout) reject(new Error('timed out'));
      else return;
      clearInterval(timer);
    }, 50);
  });
}

/** Every name once, sorted; duplicates are kept so that a comparison shows them. */
const sorted = (names: string[]): string[] => [...names].sort();

function quantile(values: number[], q: number): number {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

const figures: string[] = [];
afterAll(() => {
  if (figures.length > 0) console.log(`glusterfs:\n  ${figures.join('\n  ')}`);
});

describe.skipIf(reason !== null)(`GlusterFS, two hosts${reason === null ? '' : ` (skipped: ${reason})`}`, () => {
  describe.each(['one-brick', 'replica-2'])('%s volume', (volume) => {
    let work = '';
    let cluster: ChildProcessWithoutNullStreams | null = null;
    let hosts: Ready = { server: 0, a: 0, b: 0, mount: '', log: '' };
    let phase = 0;
    const store = (): string => join(hosts.mount, `phase-${++phase}`, 'store');

    beforeAll(async () => {
      work = await mkdtemp(join(tmpdir(), 'filestore-gluster-'));
      const child = spawn(RUN, [work, volume, 'coherent']);
      cluster = child;
      hosts = await new Promise<Ready>((resolve, reject) => {
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          const line = /^READY (.*)$/m.exec(out);
          if (line?.[1] !== undefined) resolve(JSON.parse(line[1]) as Ready);
        });
        child.on('close', (code) => reject(new Error(`run.sh exited ${code} before READY; see ${work}/run.log`)));
      });
    }, PHASE_TIMEOUT);

    afterAll(async () => {
      const child = cluster;
      if (child !== null && child.exitCode === null) {
        const closed = new Promise((resolve) => child.on('close', resolve));
        child.stdin.end();
        const timer = setTimeout(() => child.kill('SIGTERM'), 20_000);
        await closed;
        clearTimeout(timer);
      }
      if (work !== '') await rm(work, { recursive: true, force: true });
    }, PHASE_TIMEOUT);

    /** Producers on both hosts, consumers on both hosts doing `after` with each file. */
    async function produceAndConsume(after: string[], count: number) {
      const root = store();
      await once(hosts.a, 'prepare', { root });
      const producers = [hosts.a, hosts.b].map((pid) => new Worker(pid, 'produce', { root, count }));
      const consumers = after.flatMap((what) =>
        [hosts.a, hosts.b].map((pid) => new Worker(pid, 'consume', { root, after: what })),
      );
      const all = [...producers, ...consumers];
      await ready(all);
      for (const w of all) w.send('go');
      await Promise.all(producers.map((w) => w.exit));
      const made = producers.flatMap((w) => w.all('made').map((r) => r.name ?? ''));
      const total = (): number => consumers.reduce((s, w) => s + w.all('claimed').length, 0);
      await waitUntil(() => total() >= made.length || rejections(consumers).length > 0).catch(() => {});
      // a little longer, so that a duplicate claim would show
      await new Promise((resolve) => setTimeout(resolve, 1000));
      for (const w of consumers) w.send('stop');
      await Promise.all(consumers.map((w) => w.exit));
      const commitMs = Math.max(...producers.map((w) => w.all('done')[0]?.ms ?? Number.NaN));
      return { root, made, consumers, commitsPerSecond: (2 * count) / (commitMs / 1000) };
    }

    function expectExactlyOnce(made: string[], consumers: Worker[]): void {
      expect(rejections(consumers)).toEqual([]);
      const claimed = claimedNames(consumers);
      expect(sorted(claimed)).toEqual(sorted(made));
      expect(consumers.flatMap((w) => w.all('claimed').filter((r) => r.whole !== true))).toEqual([]);
      expect(
        consumers.flatMap((w) => w.all('claimed').map((r) => r.host)).filter((h, i, a) => a.indexOf(h) === i).length,
      ).toBe(2);
    }

    it(
      'claims kept in cur/: every file claimed exactly once, whole',
      async () => {
        const { root, made, consumers, commitsPerSecond } = await produceAndConsume(['keep', 'keep'], 200);
        expectExactlyOnce(made, consumers);
        const [digest] = (await once(hosts.b, 'digest', { root, area: 'cur' })).filter((r) => r.ev === 'digest');
        expect(sorted(Object.keys(digest?.files ?? {}))).toEqual(sorted(made));
        figures.push(
          `${volume}: keep: ${made.length} files, 4 consumers, exactly once; ${commitsPerSecond.toFixed(0)} commits/s from 2 hosts`,
        );
      },
      PHASE_TIMEOUT,
    );

    it(
      'claims removed or moved away at once: every file claimed exactly once, whole',
      async () => {
        const { made, consumers } = await produceAndConsume(['remove', 'move'], 200);
        expectExactlyOnce(made, consumers);
        figures.push(`${volume}: remove/move: ${made.length} files, 4 consumers, exactly once`);
      },
      PHASE_TIMEOUT,
    );

    it(
      "caller-chosen names colliding across hosts: one winner each, EEXIST for the others, the winner's bytes",
      async () => {
        const root = store();
        await once(hosts.a, 'prepare', { root });
        const names = Array.from({ length: 150 }, (_, i) => `job-${String(i).padStart(3, '0')}`);
        const writers = [hosts.a, hosts.b, hosts.a, hosts.b].map((pid) => new Worker(pid, 'collide', { root, names }));
        await ready(writers);
        for (const w of writers) w.send('go');
        await Promise.all(writers.map((w) => w.exit));
        expect(rejections(writers)).toEqual([]);
        const won = writers.flatMap((w) => w.all('won'));
        expect(sorted(won.map((r) => r.name ?? ''))).toEqual(names);
        expect(writers.reduce((s, w) => s + w.all('lost').length, 0)).toBe(3 * names.length);
        const [digest] = (await once(hosts.a, 'digest', { root, area: 'new' })).filter((r) => r.ev === 'digest');
        for (const r of won) expect(digest?.files?.[r.name ?? ''], r.name).toBe(r.sha);
        figures.push(`${volume}: collide: ${names.length} names x 4 writers on 2 hosts, one winner each`);
      },
      PHASE_TIMEOUT,
    );

    it(
      'claim races on the same files, winners removing at once: each claimed exactly once, no rejection',
      async () => {
        const root = store();
        await once(hosts.a, 'prepare', { root });
        const producer = new Worker(hosts.a, 'produce', { root, count: 300, maxSize: 512 });
        await ready([producer]);
        producer.send('go');
        await producer.exit;
        const made = producer.all('made').map((r) => r.name ?? '');
        const racers = [
          [hosts.a, false],
          [hosts.b, true],
          [hosts.a, true],
          [hosts.b, false],
        ].map(([pid, reverse]) => new Worker(Number(pid), 'race', { root, reverse, after: 'remove' }));
        await ready(racers);
        for (const w of racers) w.send('go');
        await Promise.all(racers.map((w) => w.exit));
        expectExactlyOnce(made, racers);
        figures.push(`${volume}: race: ${made.length} files, 4 claimers on 2 hosts, exactly once`);
      },
      PHASE_TIMEOUT,
    );

    it(
      "follow mode picks up the other host's commits within about one pollInterval",
      async () => {
        const root = store();
        await once(hosts.a, 'prepare', { root });
        const pollInterval = 250;
        const consumer = new Worker(hosts.a, 'consume', { root, pollInterval });
        const producer = new Worker(hosts.b, 'produce', { root, count: 30, pause: 70 });
        await ready([consumer, producer]);
        consumer.send('go');
        producer.send('go');
        await producer.exit;
        const made = new Map(producer.all('made').map((r) => [r.name ?? '', r.t ?? 0]));
        await consumer.until(() => consumer.all('claimed').length >= made.size);
        consumer.send('stop');
        await consumer.exit;
        expectSingleHostOnce(consumer, [...made.keys()]);
        const latencies = consumer.all('claimed').map((r) => (r.t ?? 0) - (made.get(r.name ?? '') ?? 0));
        expect(Math.max(...latencies)).toBeLessThan(pollInterval + 2000);
        figures.push(
          `${volume}: pickup from the other host, pollInterval ${pollInterval} ms: p50 ${quantile(latencies, 0.5)} ms, p90 ${quantile(latencies, 0.9)} ms, max ${Math.max(...latencies)} ms`,
        );
      },
      PHASE_TIMEOUT,
    );
  });
});

function expectSingleHostOnce(consumer: Worker, made: string[]): void {
  expect(rejections([consumer])).toEqual([]);
  expect(sorted(claimedNames([consumer]))).toEqual(sorted(made));
  expect(consumer.all('claimed').filter((r) => r.whole !== true)).toEqual([]);
}
