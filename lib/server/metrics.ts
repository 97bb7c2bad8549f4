/**
 * `GET /metrics` in the Prometheus text format, with prom-client (the
 * format's reference client for Node, a runtime dependency): what the store
 * holds (from the cached {@link AreaStats} count, so a scrape never walks a
 * directory itself more than once per interval), what this server did
 * (commits, claims won and lost, errors by code, request durations), and
 * the process's own figures (open and maximum file descriptors, memory,
 * event-loop lag).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { AREAS } from '../names.js';
import type { AreaStats } from './area-stats.js';

const PREFIX = 'maildir_filestore_';

let processRegistry: Registry | null = null;

/** The process metrics, registered once per process however many servers it runs. */
function processMetrics(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/** The counters of one server, and its `/metrics` text. */
export class ServerMetrics {
  readonly #registry = new Registry();
  readonly #commits: Counter;
  readonly #claims: Counter;
  readonly #lostClaims: Counter;
  readonly #errors: Counter<'code' | 'status'>;
  readonly #durations: Histogram<'method' | 'route' | 'status'>;
  readonly #refused: Counter;
  readonly #files: Gauge<'area'>;
  readonly #bytes: Gauge<'area'>;
  readonly #countAge: Gauge;
  readonly #stats: AreaStats;

  constructor(stats: AreaStats, openConnections: () => number) {
    const registers = [this.#registry];
    this.#commits = new Counter({
      name: `${PREFIX}commits_total`,
      help: 'Files committed through this server',
      registers,
    });
    this.#claims = new Counter({ name: `${PREFIX}claims_total`, help: 'Claims this server won', registers });
    this.#lostClaims = new Counter({
      name: `${PREFIX}claims_lost_total`,
      help: 'Claims this server lost (the file was taken or gone)',
      registers,
    });
    this.#errors = new Counter({
      name: `${PREFIX}errors_total`,
      help: 'Error answers, by error code and HTTP status',
      labelNames: ['code', 'status'],
      registers,
    });
    this.#durations = new Histogram({
      name: `${PREFIX}http_request_duration_seconds`,
      help: 'Time from a request to the end of its answer, by route pattern',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120],
      registers,
    });
    this.#refused = new Counter({
      name: `${PREFIX}connections_refused_total`,
      help: 'Connections answered 503 because the server had maxConnections open',
      registers,
    });
    new Gauge({
      name: `${PREFIX}connections`,
      help: 'Open client connections',
      registers,
      collect() {
        this.set(openConnections());
      },
    });
    this.#files = new Gauge({
      name: `${PREFIX}files`,
      help: 'Files per area (a cached count, see count_age_seconds)',
      labelNames: ['area'],
      registers,
    });
    this.#bytes = new Gauge({
      name: `${PREFIX}bytes`,
      help: 'Bytes of the files per area (a cached count)',
      labelNames: ['area'],
      registers,
    });
    this.#countAge = new Gauge({
      name: `${PREFIX}count_age_seconds`,
      help: 'Age of the cached count of files and bytes',
      registers,
    });
    this.#stats = stats;
  }

  /** Counts `n` committed files. */
  committed(n = 1): void {
    this.#commits.inc(n);
  }

  /** Counts a claim, won or lost. */
  claimed(won: boolean): void {
    (won ? this.#claims : this.#lostClaims).inc();
  }

  /** Counts an error answer. */
  failed(code: string, status: number): void {
    this.#errors.inc({ code, status: String(status) });
  }

  /** Counts a connection refused at the cap. */
  refusedConnection(): void {
    this.#refused.inc();
  }

  /** Records a request's duration under its route pattern (`none` when no route matched). */
  observe(method: string, route: string, status: number, seconds: number): void {
    this.#durations.observe({ method, route, status: String(status) }, seconds);
  }

  /** The content type of {@link text}. */
  get contentType(): string {
    return this.#registry.contentType;
  }

  /** The exposition text: this server's metrics and the process's. */
  async text(): Promise<string> {
    try {
      const count = await this.#stats.get();
      for (const area of AREAS) {
        this.#files.set({ area }, count.areas[area].files);
        this.#bytes.set({ area }, count.areas[area].bytes);
      }
      this.#countAge.set((Date.now() - count.countedAt) / 1000);
    } catch {
      // an area that cannot be read: /healthz says why; the last values stay
    }
    return Registry.merge([this.#registry, processMetrics()]).metrics();
  }
}
