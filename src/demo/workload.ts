import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { SQL_DIR } from '../db/migrate.js';
import type { EmbeddingSpace } from './embedding-space.js';
import { seededRandom, vectorLiteral } from './embedding-space.js';
import { createEmbeddingSpace, generateDocument, insertDocuments, topicOf } from './documents.js';

/**
 * Plays the search service against the demo database: vector searches, hybrid searches (70 % vector,
 * 30 % full text) and inserts through the shipped queries in sql/queries, each timed and logged to
 * query_performance_log with log_query.sql, as the service itself would. Arrivals are Poisson at the
 * configured rate; a small share of queries is padded with pg_sleep so the latency histograms and
 * the slow-query alerts have a tail to show.
 *
 * The pool is the caller's and should carry the service's application_name (`rag-search` by
 * default), so the exporter counts these connections against the service's pool.
 */
export type WorkloadQueryType = 'vector_search' | 'hybrid_search' | 'insert';

export interface WorkloadOptions {
  /** Operations per second, all types together. */
  rate: number;
  /** Share of each type; defaults 60 % vector, 30 % hybrid, 10 % insert. */
  mix?: Partial<Record<WorkloadQueryType, number>>;
  /** Share of operations padded with pg_sleep into slow ones. */
  slowShare?: number;
  /** Padding range of a slow operation, in ms. */
  slowMs?: [number, number];
  /** Most operations in flight; arrivals beyond it are dropped (counted), never queued without bound. */
  maxInFlight?: number;
  seed?: number;
  /** chunk_id prefix of inserted documents (unique per run). */
  chunkPrefix?: string;
  /** Told about each failed operation (the failure is also logged to query_performance_log). */
  onError?: (type: WorkloadQueryType, error: Error) => void;
}

export interface WorkloadStats {
  completed: Record<WorkloadQueryType, number>;
  failed: number;
  dropped: number;
  slow: number;
}

export const QUERIES = {
  vectorSearch: readQuery('vector_search.sql'),
  hybridSearch: readQuery('hybrid_search.sql'),
  logQuery: readQuery('log_query.sql'),
};

function readQuery(file: string): string {
  return readFileSync(`${SQL_DIR}queries/${file}`, 'utf8');
}

/**
 * Below the 0.5 % error budget of the 99.5 % vector-search target, so a healthy demo burns no budget
 * and pages nobody; raise it (demo --slow-share) to watch the latency and burn-rate alerts fire.
 */
export const DEFAULT_SLOW_SHARE = 0.003;

const RESULT_LIMIT = 10;
const VECTOR_WEIGHT = 0.7;
const TEXT_WEIGHT = 0.3;

export class Workload {
  private readonly random: () => number;
  private readonly space: EmbeddingSpace;
  private readonly runId = Date.now().toString(36);
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private inserted = 0;
  readonly stats: WorkloadStats = { completed: { vector_search: 0, hybrid_search: 0, insert: 0 }, failed: 0, dropped: 0, slow: 0 };

  constructor(
    private readonly pool: pg.Pool,
    private readonly options: WorkloadOptions,
  ) {
    this.random = seededRandom(options.seed ?? Date.now());
    this.space = createEmbeddingSpace(1);
  }

  start(): void {
    if (this.timer || this.options.rate <= 0) return;
    this.scheduleNext();
  }

  /** Stops new arrivals and waits for the operations in flight. */
  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Runs one operation of the given type now (also used by tests). */
  async runOnce(type: WorkloadQueryType, slowMs = 0): Promise<void> {
    const started = process.hrtime.bigint();
    let rows: number | null = null;
    let error: Error | undefined;
    let hash: string;
    try {
      const op = this.prepare(type);
      hash = op.hash;
      rows = await op.run(slowMs);
    } catch (err) {
      error = err as Error;
      hash = type;
    }
    const durationMs = Number(process.hrtime.bigint() - started) / 1e6;
    await this.pool.query(QUERIES.logQuery, [type, durationMs, rows, hash, error ? error.message : null]);
    if (error) {
      this.stats.failed += 1;
      this.options.onError?.(type, error);
    } else {
      this.stats.completed[type] += 1;
    }
  }

  private scheduleNext(): void {
    // Exponential gaps give Poisson arrivals: bursts and lulls like real traffic.
    const gapMs = (-Math.log(1 - this.random()) / this.options.rate) * 1000;
    this.timer = setTimeout(() => {
      this.arrive();
      if (this.timer) this.scheduleNext();
    }, gapMs);
  }

  private arrive(): void {
    if (this.inFlight.size >= (this.options.maxInFlight ?? 16)) {
      this.stats.dropped += 1;
      return;
    }
    const slow = this.random() < (this.options.slowShare ?? DEFAULT_SLOW_SHARE);
    const [low, high] = this.options.slowMs ?? [600, 1500];
    if (slow) this.stats.slow += 1;
    const op = this.runOnce(this.pickType(), slow ? low + this.random() * (high - low) : 0).catch((err: Error) => {
      // Only logging the query itself can fail here (the database is gone); the demo reports it.
      this.stats.failed += 1;
      this.options.onError?.('vector_search', err);
    });
    this.inFlight.add(op);
    void op.finally(() => this.inFlight.delete(op));
  }

  private pickType(): WorkloadQueryType {
    const mix = { vector_search: 0.6, hybrid_search: 0.3, insert: 0.1, ...this.options.mix };
    const total = mix.vector_search + mix.hybrid_search + mix.insert;
    let r = this.random() * total;
    for (const type of ['vector_search', 'hybrid_search'] as const) {
      if (r < mix[type]) return type;
      r -= mix[type];
    }
    return 'insert';
  }

  /** The statement of one operation and a hash that identifies its shape, as a service would log it. */
  private prepare(type: WorkloadQueryType): { hash: string; run: (slowMs: number) => Promise<number> } {
    const topic = Math.floor(this.random() * this.space.topics);
    if (type === 'insert') {
      const chunkId = `live-${this.runId}-${++this.inserted}`;
      const doc = generateDocument(this.space, this.random, chunkId, topic);
      return { hash: queryHash('insert_document'), run: (slowMs) => this.timed(slowMs, () => insertDocuments(this.pool, [doc])) };
    }
    const embedding = vectorLiteral(this.space.embedding(topic, this.random));
    if (type === 'vector_search') {
      return {
        hash: queryHash(QUERIES.vectorSearch),
        run: (slowMs) => this.timed(slowMs, async () => (await this.pool.query(QUERIES.vectorSearch, [embedding, RESULT_LIMIT])).rowCount ?? 0),
      };
    }
    const words = topicOf(topic).words;
    const text = `${words[Math.floor(this.random() * words.length)]} ${words[Math.floor(this.random() * words.length)]}`;
    return {
      hash: queryHash(QUERIES.hybridSearch),
      run: (slowMs) =>
        this.timed(slowMs, async () => (await this.pool.query(QUERIES.hybridSearch, [embedding, text, RESULT_LIMIT, VECTOR_WEIGHT, TEXT_WEIGHT])).rowCount ?? 0),
    };
  }

  /** A slow operation is the real one plus server-side sleep: the database is busy for that long. */
  private async timed(slowMs: number, run: () => Promise<number>): Promise<number> {
    const rows = await run();
    if (slowMs > 0) await this.pool.query('SELECT pg_sleep($1)', [slowMs / 1000]);
    return rows;
  }
}

function queryHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}
