import type pg from 'pg';
import { seededRandom } from './embedding-space.js';
import { createEmbeddingSpace, ensureConcepts, generateDocument, insertDocuments, type SyntheticDocument } from './documents.js';

/**
 * Seeds a synthetic corpus: documents, metadata, 3,072-dimension embeddings, key concepts and source
 * lines, satisfying every constraint of the data model. Shared by the demo and the benchmark.
 *
 * On an empty chunk_embeddings table the vector index is dropped, the rows are loaded, and the index
 * is rebuilt from its own definition, all in one transaction: building HNSW once over all rows is
 * several times faster than growing it row by row, and an interrupted seed rolls back to the
 * original schema, index included. On a table that already holds rows the index stays in place.
 */
export const VECTOR_INDEX = 'idx_embeddings_vector';

/**
 * Measured on a shared 2-core machine (PostgreSQL 15, pgvector 0.8, HNSW m=16, ef_construction=64):
 * 10,000 chunks load in ~20 s and index in ~17 s, ~40 s in all, leaving room within the minute for
 * a slower machine; 1,000 take ~4 s. See docs/operations.md.
 */
export const DEFAULT_DEMO_DOCUMENTS = 10_000;

export type SeedProgress =
  | { phase: 'documents'; done: number; total: number }
  | { phase: 'index'; done: number; total: number; step: string }
  | { phase: 'analyze' };

export interface SeedOptions {
  documents: number;
  /** Documents per INSERT statement (each carries ~28 KB of vector text). */
  batchSize?: number;
  /** PRNG seed: the same seed gives the same corpus. */
  seed?: number;
  /** chunk_id prefix, unique per seeding run when seeding into a database that already holds chunks. */
  chunkPrefix?: string;
  onProgress?: (progress: SeedProgress) => void;
  /** Aborting rolls the seed back: between batches, or by cancelling the index build. */
  signal?: AbortSignal;
}

export interface SeedResult {
  documents: number;
  /** Whether the vector index was dropped and rebuilt after the load. */
  indexRebuilt: boolean;
  loadMs: number;
  indexMs: number;
  analyzeMs: number;
}

const SEEDED_TABLES = ['framework_documents', 'chunk_embeddings', 'framework_metadata', 'key_concepts', 'document_concepts', 'source_lines'];
/**
 * Analysed too, though the seed leaves them empty (or only audited): the search service fills them
 * next, and a never-analysed table trips StatisticsStale long before autovacuum gets to it.
 */
const LOG_TABLES = ['security_audit_log', 'query_performance_log', 'query_performance_archive', 'maintenance_log'];

export async function seedCorpus(pool: pg.Pool, options: SeedOptions): Promise<SeedResult> {
  const client = await pool.connect();
  let result: SeedResult;
  try {
    await ensureConcepts(client);
    await client.query('BEGIN');
    try {
      const indexDefinition = await dropVectorIndexIfEmpty(client);
      const loadStart = Date.now();
      await loadDocuments(client, options);
      const loadMs = Date.now() - loadStart;
      const indexStart = Date.now();
      if (indexDefinition) await buildIndex(pool, client, indexDefinition, options);
      const indexMs = Date.now() - indexStart;
      await client.query('COMMIT');
      result = { documents: options.documents, indexRebuilt: indexDefinition !== undefined, loadMs, indexMs, analyzeMs: 0 };
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    // Fresh statistics: the planner needs them to pick the vector index, and the health check
    // reports never-analysed non-empty tables as stale.
    options.onProgress?.({ phase: 'analyze' });
    const analyzeStart = Date.now();
    await client.query(`ANALYZE ${[...SEEDED_TABLES, ...LOG_TABLES].join(', ')}`);
    result.analyzeMs = Date.now() - analyzeStart;
  } finally {
    client.release();
  }
  return result;
}

/** Returns the index definition when it was dropped (table empty), undefined otherwise. */
async function dropVectorIndexIfEmpty(client: pg.PoolClient): Promise<string | undefined> {
  const { rows } = await client.query<{ definition: string | null; empty: boolean }>(
    `SELECT (SELECT pg_get_indexdef(c.oid) FROM pg_class c
              WHERE c.relname = $1 AND c.relkind = 'i' AND c.relnamespace = current_schema()::regnamespace) AS definition,
            NOT EXISTS (SELECT 1 FROM chunk_embeddings) AS empty`,
    [VECTOR_INDEX],
  );
  const { definition, empty } = rows[0]!;
  if (!definition || !empty) return undefined;
  await client.query(`DROP INDEX ${VECTOR_INDEX}`);
  return definition;
}

/** Generates the next batch while the database inserts the current one. */
async function loadDocuments(client: pg.PoolClient, options: SeedOptions): Promise<void> {
  const total = options.documents;
  const batchSize = options.batchSize ?? 50;
  const seed = options.seed ?? 1;
  const prefix = options.chunkPrefix ?? 'demo';
  const space = createEmbeddingSpace(seed);
  const random = seededRandom(seed * 7919 + 17);
  const batch = (start: number): SyntheticDocument[] =>
    Array.from({ length: Math.min(batchSize, total - start) }, (_, k) => {
      const n = start + k;
      return generateDocument(space, random, `${prefix}-${String(n).padStart(6, '0')}`, n);
    });
  options.onProgress?.({ phase: 'documents', done: 0, total });
  let next = total > 0 ? batch(0) : [];
  for (let start = 0; start < total; start += batchSize) {
    options.signal?.throwIfAborted();
    const inserting = insertDocuments(client, next);
    next = start + batchSize < total ? batch(start + batchSize) : [];
    await inserting;
    options.onProgress?.({ phase: 'documents', done: Math.min(start + batchSize, total), total });
  }
}

/**
 * Builds the index with enough maintenance_work_mem for the HNSW graph (pgvector slows down
 * sharply once the graph no longer fits), reporting pg_stat_progress_create_index as it goes.
 */
async function buildIndex(pool: pg.Pool, client: pg.PoolClient, definition: string, options: SeedOptions): Promise<void> {
  // ~6 KB of halfvec plus neighbour lists per element, with headroom.
  const neededMb = 64 + Math.ceil((options.documents * 10) / 1024);
  await client.query(
    `SELECT set_config('maintenance_work_mem', greatest(pg_size_bytes(current_setting('maintenance_work_mem')) / 1024 / 1024, $1::int)::text || 'MB', true)`,
    [Math.min(neededMb, 2048)],
  );
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  const pid = rows[0]!.pid;
  options.signal?.throwIfAborted();
  const cancel = () => void pool.query('SELECT pg_cancel_backend($1)', [pid]).catch(() => undefined);
  options.signal?.addEventListener('abort', cancel, { once: true });
  const stop = watchIndexBuild(pool, pid, options);
  try {
    await client.query(definition);
  } finally {
    options.signal?.removeEventListener('abort', cancel);
    await stop();
  }
  options.signal?.throwIfAborted();
  options.onProgress?.({ phase: 'index', done: options.documents, total: options.documents, step: 'done' });
}

/** Polls the build's progress from a second connection until stopped. */
function watchIndexBuild(pool: pg.Pool, pid: number, options: SeedOptions): () => Promise<void> {
  let stopped = false;
  const report = options.onProgress;
  const poll = async () => {
    while (!stopped && report) {
      const { rows } = await pool
        .query<{ phase: string; tuples_done: string; tuples_total: string }>(
          'SELECT phase, tuples_done, tuples_total FROM pg_stat_progress_create_index WHERE pid = $1',
          [pid],
        )
        .catch(() => ({ rows: [] }));
      const row = rows[0];
      if (row && !stopped) {
        // The table's row count is not yet known to the catalog inside the seeding transaction.
        const total = Number(row.tuples_total) || options.documents;
        report({ phase: 'index', done: Math.min(Number(row.tuples_done), total), total, step: row.phase });
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  };
  const polling = poll();
  return async () => {
    stopped = true;
    await polling;
  };
}
