import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCorpus } from '../src/demo/corpus.js';
import { Workload, type WorkloadQueryType } from '../src/demo/workload.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

interface LogRow {
  query_type: string;
  duration_ms: number;
  rows_returned: number | null;
  query_hash: string | null;
  error: string | null;
}

describe('the demo workload', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let workload: Workload;
  const errors: string[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    await seedCorpus(db.pool, { documents: 80 });
    pool = new pg.Pool({ connectionString: db.url, application_name: 'rag-search', max: 4 });
    workload = new Workload(pool, { rate: 40, seed: 7, onError: (_t, e) => errors.push(e.message) });
  });
  afterAll(async () => {
    await workload.stop();
    await pool.end();
    await db.drop();
  });

  const lastLog = async (type: WorkloadQueryType): Promise<LogRow> => {
    const { rows } = await db.pool.query<LogRow>(
      'SELECT query_type, duration_ms, rows_returned, query_hash, error FROM query_performance_log WHERE query_type = $1 ORDER BY id DESC LIMIT 1',
      [type],
    );
    return rows[0]!;
  };

  it('runs each operation through the shipped queries and logs it with its measured duration', async () => {
    await workload.runOnce('vector_search');
    await workload.runOnce('hybrid_search');
    await workload.runOnce('insert');
    const vector = await lastLog('vector_search');
    expect(vector).toMatchObject({ rows_returned: 10, error: null });
    expect(vector.duration_ms).toBeGreaterThan(0);
    expect(vector.query_hash).toMatch(/^[0-9a-f]{16}$/);
    const hybrid = await lastLog('hybrid_search');
    expect(hybrid.error).toBeNull();
    expect(hybrid.rows_returned).toBeGreaterThan(0);
    expect(hybrid.query_hash).not.toBe(vector.query_hash);
    expect(await lastLog('insert')).toMatchObject({ rows_returned: 1, error: null });
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM framework_documents WHERE chunk_id LIKE 'live-%'");
    expect(rows[0].n).toBe(1);
  });

  it('pads a slow operation with server-side sleep, counted in its duration', async () => {
    await workload.runOnce('vector_search', 300);
    expect((await lastLog('vector_search')).duration_ms).toBeGreaterThanOrEqual(300);
  });

  it('logs a failing query with its error', async () => {
    await db.pool.query('ALTER TABLE chunk_embeddings RENAME TO chunk_embeddings_away');
    try {
      await workload.runOnce('vector_search');
    } finally {
      await db.pool.query('ALTER TABLE chunk_embeddings_away RENAME TO chunk_embeddings');
    }
    const failed = await lastLog('vector_search');
    expect(failed.error).toContain('chunk_embeddings');
    expect(failed.rows_returned).toBeNull();
    expect(errors.at(-1)).toContain('chunk_embeddings');
    errors.length = 0;
  });

  it('runs at its rate on connections named after the service, logging every operation', async () => {
    const before = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM query_performance_log');
    const base = { ...workload.stats.completed };
    workload.start();
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const apps = await db.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'rag-search' AND datname = current_database()",
    );
    await workload.stop();
    const after = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM query_performance_log');
    const done = (Object.keys(base) as WorkloadQueryType[]).reduce((sum, t) => sum + workload.stats.completed[t] - base[t], 0);
    expect(errors).toEqual([]);
    expect(done).toBeGreaterThan(10);
    expect(after.rows[0]!.n - before.rows[0]!.n).toBe(done);
    expect(apps.rows[0]!.n).toBeGreaterThan(0);
    expect(workload.stats.completed.vector_search).toBeGreaterThan(workload.stats.completed.insert);
  });
});
