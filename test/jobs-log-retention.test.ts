import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobProgress } from '../src/jobs/job.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { testConfig, testRunner, type TestRunner } from './helpers/jobs.js';

const OLD = 1050;
const RECENT = 200;
const EXPIRED = 130;
const BATCH = 100;

describe('log-retention', () => {
  let db: TestDatabase;
  let t: TestRunner;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, ts)
       SELECT 'vector_search', g, now() - interval '40 days' - g * interval '1 second' FROM generate_series(1, $1::int) g`,
      [OLD],
    );
    await db.pool.query(`INSERT INTO query_performance_log (query_type, duration_ms, ts) SELECT 'insert', g, now() - interval '29 days' FROM generate_series(1, $1::int) g`, [RECENT]);
    await db.pool.query(
      `INSERT INTO query_performance_archive (id, query_type, duration_ms, ts)
       SELECT -g, 'vector_search', g, now() - interval '400 days' FROM generate_series(1, $1::int) g`,
      [EXPIRED],
    );
    await db.pool.query(`INSERT INTO query_performance_archive (id, query_type, duration_ms, ts) SELECT -1000 - g, 'insert', g, now() - interval '300 days' FROM generate_series(1, 7) g`);
    t = testRunner(
      db.url,
      testConfig((c) => Object.assign(c.jobs['log-retention'], { batch_size: BATCH, batch_pause: 20, lock_timeout: 1000 })),
    );
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  it('moves exactly the rows past the horizon, in batches, while a writer keeps inserting unblocked', async () => {
    const oldIds = (await db.pool.query("SELECT id FROM query_performance_log WHERE ts < now() - interval '30 days' ORDER BY id")).rows.map((r) => String(r.id));
    expect(oldIds).toHaveLength(OLD);

    // The search service: one session inserting log rows as fast as it can.
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    const writerPid = (await writer.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
    const inserts: { start: number; end: number }[] = [];
    const blockedSamples: number[][] = [];
    let stop = false;
    const writing = (async () => {
      while (!stop) {
        const start = Date.now();
        await writer.query("INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('vector_search', 1)");
        inserts.push({ start, end: Date.now() });
      }
    })();
    // Watches whether the writer ever waits on someone else's lock.
    const watching = (async () => {
      while (!stop) {
        const { rows } = await db.pool.query('SELECT pg_blocking_pids($1) AS pids', [writerPid]);
        if (rows[0].pids.length > 0) blockedSamples.push(rows[0].pids);
        await new Promise((r) => setTimeout(r, 2));
      }
    })();

    const batches: JobProgress[] = [];
    let result;
    try {
      while (inserts.length < 5) await new Promise((r) => setTimeout(r, 5));
      result = await t.runner.run('log-retention', { trigger: 'manual', progress: (e) => batches.push(e) });
    } finally {
      stop = true;
      await Promise.all([writing, watching]);
      await writer.end();
    }
    expect(result.result, result.message).toBe('success');
    expect(result.details).toMatchObject({ archived: OLD, archive_batches: Math.ceil(OLD / BATCH), expired: EXPIRED, expire_batches: Math.ceil(EXPIRED / BATCH) });

    // Exactly the old rows moved: none left behind, none too many, the recent and the written ones stay.
    const archived = (await db.pool.query('SELECT id FROM query_performance_archive WHERE id > 0 ORDER BY id')).rows.map((r) => String(r.id));
    expect(archived).toEqual(oldIds);
    const left = await db.pool.query("SELECT count(*)::int AS total, count(*) FILTER (WHERE ts < now() - interval '30 days')::int AS old FROM query_performance_log");
    expect(left.rows[0]).toEqual({ total: RECENT + inserts.length, old: 0 });
    // Archived rows inside the archive horizon stay; those past it are gone.
    const archiveLeft = await db.pool.query('SELECT count(*)::int AS n FROM query_performance_archive WHERE id < 0');
    expect(archiveLeft.rows[0].n).toBe(7);

    // Each batch was its own transaction: the archived rows carry one inserting transaction id per batch.
    const xids = await db.pool.query('SELECT count(DISTINCT xmin::text)::int AS n FROM query_performance_archive WHERE id > 0');
    expect(xids.rows[0].n).toBe(Math.ceil(OLD / BATCH));

    // The writer was never waiting on a lock, and its inserts went on between the batches.
    expect(blockedSamples).toEqual([]);
    const archiveBatches = batches.filter((b) => b.step === 'archive');
    expect(archiveBatches).toHaveLength(Math.ceil(OLD / BATCH));
    const first = archiveBatches[0]!.startedAt.getTime();
    const last = archiveBatches.at(-1)!.finishedAt.getTime();
    const during = inserts.filter((i) => i.end >= first && i.end <= last).length;
    expect(during).toBeGreaterThan(0);

    const longestBatch = Math.max(...archiveBatches.map((b) => b.finishedAt.getTime() - b.startedAt.getTime()));
    const longestInsert = Math.max(...inserts.map((i) => i.end - i.start));
    console.log(`log-retention: ${archiveBatches.length} batches of ${BATCH}, longest batch ${longestBatch} ms; writer: ${inserts.length} inserts, ${during} during the job, longest ${longestInsert} ms`);
  });

  it('with nothing past the horizon it changes nothing and says so', async () => {
    const result = await t.runner.run('log-retention', { trigger: 'manual' });
    expect(result.result).toBe('success');
    expect(result.message).toMatch(/^nothing to do: 0 log row\(s\) older than .* 0 archived row\(s\)/);
  });
});
