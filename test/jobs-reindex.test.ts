import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideReindex } from '../src/jobs/reindex-vector.js';
import { recommendedLists } from '../src/pgvector/vector-index.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { flushStats, insertDocuments, maintenanceRows, randomVector, testConfig, testRunner, type TestRunner } from './helpers/jobs.js';

const VECTOR_SEARCH = readFileSync(new URL('../sql/queries/vector_search.sql', import.meta.url), 'utf8');

async function indexState(pool: pg.Pool, name = 'idx_embeddings_vector'): Promise<{ oid: number; valid: boolean } | undefined> {
  const { rows } = await pool.query(
    'SELECT c.oid::int8 AS oid, i.indisvalid AS valid FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid WHERE c.relname = $1',
    [name],
  );
  return rows[0] ? { oid: Number(rows[0].oid), valid: rows[0].valid } : undefined;
}

describe('reindex-vector on the real vector index', () => {
  let db: TestDatabase;
  let t: TestRunner;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertDocuments(db.pool, 300);
    await db.pool.query('ANALYZE chunk_embeddings');
    t = testRunner(db.url, testConfig());
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  it('rebuilds while a loop of vector searches keeps running without an error; the index stays valid and used', async () => {
    const before = await indexState(db.pool);
    const searcher = new pg.Client({ connectionString: db.url });
    await searcher.connect();
    let stop = false;
    let searches = 0;
    let searchesDuringRebuild = 0;
    let rebuilding = false;
    const errors: string[] = [];
    const loop = (async () => {
      while (!stop) {
        try {
          const { rows } = await searcher.query(VECTOR_SEARCH, [randomVector(), 5]);
          if (rows.length !== 5) errors.push(`got ${rows.length} rows`);
          searches++;
          if (rebuilding) searchesDuringRebuild++;
        } catch (err) {
          errors.push((err as Error).message);
        }
      }
    })();
    try {
      while (searches < 3) await new Promise((r) => setTimeout(r, 10));
      rebuilding = true;
      const result = await t.runner.run('reindex-vector', {
        trigger: 'manual',
        force: true,
        progress: () => undefined,
      });
      rebuilding = false;
      expect(result.result, result.message).toBe('success');
      expect(result.message).toContain('forced');
      expect(result.statements).toEqual(['REINDEX INDEX CONCURRENTLY "public"."idx_embeddings_vector"']);
    } finally {
      stop = true;
      await loop;
      await searcher.end();
    }
    // The loop ran throughout, and searches completed while the job ran.
    expect(errors).toEqual([]);
    expect(searchesDuringRebuild).toBeGreaterThan(0);

    const after = await indexState(db.pool);
    expect(after!.valid).toBe(true);
    expect(after!.oid).not.toBe(before!.oid);
    // 300 rows is too few for the planner to prefer the index on cost, so the plan check forbids
    // sequential scans: what is asserted is that the rebuilt index matches the search's ORDER BY.
    const client = await db.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const plan = await client.query(`EXPLAIN ${VECTOR_SEARCH.replace(/\$1/g, `'${randomVector()}'`).replace(/\$2::integer/g, '5')}`);
      expect(plan.rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/Index Scan using idx_embeddings_vector/);
    } finally {
      await client.query('RESET enable_seqscan');
      client.release();
    }
  });

  it('with nothing changed since the last rebuild it skips and says why', async () => {
    const before = await indexState(db.pool);
    const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
    expect(result.result).toBe('success');
    expect(result.message).toMatch(/nothing to do: rebuild not needed: index valid; 0 rows inserted\/updated\/deleted since the last rebuild = 0\.0% of 300 rows <= 20\.0%/);
    expect(result.statements).toEqual([]);
    expect((await indexState(db.pool))!.oid).toBe(before!.oid);
    const last = (await maintenanceRows(db.pool, 'reindex-vector')).at(-1)!;
    expect(last.message).toBe(result.message);
    expect(last.details.rebuild).toBe(false);
  });

  it('rebuilds once the changed share passes the threshold, counting from the last rebuild', async () => {
    const before = await indexState(db.pool);
    await flushStats(db.pool, 'DELETE FROM chunk_embeddings WHERE id IN (SELECT id FROM chunk_embeddings LIMIT 70)');
    const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
    expect(result.result, result.message).toBe('success');
    expect(result.message).toMatch(/^rebuild: 70 rows inserted\/updated\/deleted since the last rebuild = 23\.3% of 300 rows > 20\.0%/);
    expect((await indexState(db.pool))!.oid).not.toBe(before!.oid);
  });

  it('drops the invalid _ccnew index an interrupted REINDEX CONCURRENTLY left behind', async () => {
    // A writer's open transaction makes REINDEX CONCURRENTLY wait after it has created (and committed)
    // idx_embeddings_vector_ccnew; cancelling it there leaves that index behind, invalid, as a crash would.
    const writer = new pg.Client({ connectionString: db.url });
    const reindexer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    await reindexer.connect();
    try {
      await writer.query('BEGIN');
      await writer.query('UPDATE chunk_embeddings SET model_name = model_name WHERE id = (SELECT id FROM chunk_embeddings LIMIT 1)');
      const pid = (await reindexer.query('SELECT pg_backend_pid() AS pid')).rows[0].pid;
      const interrupted = reindexer.query('REINDEX INDEX CONCURRENTLY idx_embeddings_vector').then(() => undefined, (err: { code?: string }) => err.code);
      for (let i = 0; i < 500 && !(await indexState(db.pool, 'idx_embeddings_vector_ccnew')); i++) await new Promise((r) => setTimeout(r, 20));
      await db.pool.query('SELECT pg_cancel_backend($1)', [pid]);
      expect(await interrupted).toBe('57014');
    } finally {
      await writer.query('ROLLBACK');
      await writer.end();
      await reindexer.end();
    }
    expect((await indexState(db.pool, 'idx_embeddings_vector_ccnew'))!.valid).toBe(false);
    const critical = await db.pool.query("SELECT status FROM system_health_check() WHERE component = 'invalid_indexes'");
    expect(critical.rows[0].status).toBe('CRITICAL');
    const before = await indexState(db.pool);

    const dry = await t.runner.run('reindex-vector', { trigger: 'manual', dryRun: true });
    expect(dry.statements).toEqual(['DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_embeddings_vector_ccnew"']);
    expect(await indexState(db.pool, 'idx_embeddings_vector_ccnew')).toBeDefined();

    const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
    expect(result.result, result.message).toBe('success');
    expect(result.message).toMatch(/^dropped idx_embeddings_vector_ccnew; rebuild not needed: index valid/);
    expect(await indexState(db.pool, 'idx_embeddings_vector_ccnew')).toBeUndefined();
    expect((await indexState(db.pool))!.oid).toBe(before!.oid);
    const health = await db.pool.query("SELECT status FROM system_health_check() WHERE component = 'invalid_indexes'");
    expect(health.rows[0].status).toBe('HEALTHY');
  });

  it('rebuilds an invalid vector index', async () => {
    await db.pool.query("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_embeddings_vector'::regclass");
    const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
    expect(result.result, result.message).toBe('success');
    expect(result.message).toContain('the index is invalid');
    expect((await indexState(db.pool))!.valid).toBe(true);
  });
});

describe('reindex-vector on an IVFFlat index', () => {
  let db: TestDatabase;
  let t: TestRunner;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('CREATE TABLE small_vectors (id int PRIMARY KEY, v vector(3))');
    await db.pool.query('INSERT INTO small_vectors SELECT g, ARRAY[random(), random(), random()]::vector(3) FROM generate_series(1, 3500) g');
    await db.pool.query('ANALYZE small_vectors');
    await db.pool.query('CREATE INDEX small_vectors_ivf ON small_vectors USING ivfflat (v vector_l2_ops) WITH (lists = 1)');
    t = testRunner(db.url, testConfig((c) => Object.assign(c.jobs['reindex-vector'], { index: 'small_vectors_ivf', maintenance_work_mem: '96MB' })));
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  it('rebuilds with new lists when the rows outgrew them, and says so', async () => {
    const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
    expect(result.result, result.message).toBe('success');
    expect(result.message).toContain('lists=1 but 3500 rows want ~4');
    expect(result.statements).toEqual([
      'ALTER INDEX "public"."small_vectors_ivf" SET (lists = 4)',
      "SET maintenance_work_mem = '96MB'",
      'REINDEX INDEX CONCURRENTLY "public"."small_vectors_ivf"',
    ]);
    const { rows } = await db.pool.query("SELECT reloptions FROM pg_class WHERE relname = 'small_vectors_ivf'");
    expect(rows[0].reloptions).toEqual(['lists=4']);
  });
});

describe('reindex-vector with a misconfigured index name', () => {
  it('fails, naming the index and the setting', async () => {
    const db = await createTestDatabase();
    const t = testRunner(db.url, testConfig((c) => (c.jobs['reindex-vector'].index = 'idx_no_such_index')));
    try {
      const result = await t.runner.run('reindex-vector', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toBe('index "public"."idx_no_such_index" not found (jobs.reindex-vector.index / schema)');
      expect((await maintenanceRows(db.pool, 'reindex-vector')).map((r) => r.status)).toEqual(['failed']);
    } finally {
      await t.close();
      await db.drop();
    }
  });
});

describe('the reindex decision', () => {
  const counters = { inserted: 1000, updated: 0, hotUpdated: 0, deleted: 0 };
  it('follows pgvector lists advice: rows/1000 up to 1M rows, sqrt(rows) above', () => {
    expect(recommendedLists(250_000)).toBe(250);
    expect(recommendedLists(4_000_000)).toBe(2000);
    expect(decideReindex({ force: false, valid: true, rows: 250_000, counters, baseline: counters, changeThreshold: 0.2, lists: 100, listsGrowthFactor: 2 }).reasons).toEqual([
      'lists=100 but 250000 rows want ~250',
    ]);
  });
  it('treats counters below the baseline as a statistics reset: unknown share, skip, new baseline', () => {
    const d = decideReindex({ force: false, valid: true, rows: 1000, counters: { ...counters, inserted: 10 }, baseline: counters, changeThreshold: 0.2, listsGrowthFactor: 2 });
    expect(d.rebuild).toBe(false);
    expect(d.rebaseline).toBe(true);
    expect(d.reasons.join(' ')).toContain('statistics were reset');
  });
  it('does not count HOT updates, which never touch an index', () => {
    const d = decideReindex({ force: false, valid: true, rows: 1000, counters: { inserted: 0, updated: 900, hotUpdated: 850, deleted: 0 }, changeThreshold: 0.2, listsGrowthFactor: 2 });
    expect(d.changed).toBe(50);
    expect(d.rebuild).toBe(false);
  });
});
