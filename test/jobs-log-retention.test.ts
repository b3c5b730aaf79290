import { PassThrough } from 'node:stream';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JobProgress } from '../src/jobs/job.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually } from './helpers/exporter.js';
import { testConfig, testRunner, type TestRunner } from './helpers/jobs.js';

const OLD = 1050;
const RECENT = 200;
const EXPIRED = 130;
const ANCIENT_DEFAULT = 3;

/** xmin of each row by id: a row that was copied gets a new xmin, a partition that was moved keeps them. */
async function xmins(pool: pg.Pool, table: string, where: string): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ id: string; x: string }>(`SELECT id::text, xmin::text AS x FROM ${table} WHERE ${where} ORDER BY id`);
  return new Map(rows.map((r) => [r.id, r.x]));
}

describe('log-retention on the partitioned log', () => {
  let db: TestDatabase;
  let t: TestRunner;
  beforeAll(async () => {
    db = await createTestDatabase();
    // Rows written 40 days ago landed in their day's partitions then (the job keeps them ahead).
    await db.pool.query(
      `SELECT query_log_add_partition('query_performance_log', d::date)
         FROM generate_series((now() - interval '41 days') AT TIME ZONE 'UTC', (now() - interval '28 days') AT TIME ZONE 'UTC', interval '1 day') d`,
    );
    await db.pool.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, ts)
       SELECT 'vector_search', g, now() - interval '40 days' - g * interval '1 second' FROM generate_series(1, $1::int) g`,
      [OLD],
    );
    await db.pool.query(`INSERT INTO query_performance_log (query_type, duration_ms, ts) SELECT 'insert', g, now() - interval '29 days' FROM generate_series(1, $1::int) g`, [RECENT]);
    // Rows of a day without a partition (DEFAULT), and one at -infinity (no day at all).
    await db.pool.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, ts, error) VALUES
         ('embedding_generation', 1, now() - interval '100 days', 'rate limited'), ('embedding_generation', 2, now() - interval '100 days', 'rate limited'),
         ('embedding_generation', 3, '-infinity', 'rate limited')`,
    );
    await db.pool.query(
      `INSERT INTO query_performance_archive (id, query_type, duration_ms, ts)
       SELECT -g, 'vector_search', g, now() - interval '400 days' FROM generate_series(1, $1::int) g`,
      [EXPIRED],
    );
    await db.pool.query(`INSERT INTO query_performance_archive (id, query_type, duration_ms, ts) SELECT -1000 - g, 'insert', g, now() - interval '300 days' FROM generate_series(1, 7) g`);
    t = testRunner(
      db.url,
      testConfig((c) => Object.assign(c.jobs['log-retention'], { batch_size: 100, batch_pause: 20, lock_timeout: 1000, partitions_ahead: 10 })),
    );
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
  });

  it('moves whole days to the archive without copying a row, while a writer keeps inserting; nothing lost', async () => {
    const oldRows = await xmins(db.pool, 'query_performance_log', "ts < now() - interval '30 days' AND ts > now() - interval '50 days'");
    expect(oldRows.size).toBe(OLD);

    // The search service: one session inserting log rows as fast as it can.
    const writer = new pg.Client({ connectionString: db.url });
    await writer.connect();
    const inserts: { start: number; end: number }[] = [];
    const failures: string[] = [];
    let stop = false;
    const writing = (async () => {
      while (!stop) {
        const start = Date.now();
        try {
          await writer.query("INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('vector_search', 1)");
          inserts.push({ start, end: Date.now() });
        } catch (err) {
          failures.push((err as Error).message);
          if (failures.length > 10) break;
        }
      }
    })();

    const steps: JobProgress[] = [];
    let result;
    try {
      while (inserts.length < 5) await new Promise((r) => setTimeout(r, 5));
      result = await t.runner.run('log-retention', { trigger: 'manual', progress: (e) => steps.push(e) });
      const n = inserts.length;
      while (inserts.length < n + 5 && failures.length === 0) await new Promise((r) => setTimeout(r, 5));
    } finally {
      stop = true;
      await writing;
      await writer.end();
    }
    expect(failures).toEqual([]);
    expect(result.result, result.message).toBe('success');
    expect(result.details).toMatchObject({ days_dropped: 1, default_rows_retired: 2 });
    expect(result.details.days_archived).toBeGreaterThanOrEqual(2); // 40 days ago (one or two UTC days) + 100 days ago

    // The old rows are in the archive with their original xmin: moved as partitions, not copied.
    const archived = await xmins(db.pool, 'query_performance_archive', "id > 0 AND ts > now() - interval '50 days'");
    expect(archived).toEqual(oldRows);
    const left = await db.pool.query(
      "SELECT count(*)::int AS total, count(*) FILTER (WHERE ts < now() - interval '30 days')::int AS old FROM query_performance_log",
    );
    expect(left.rows[0]).toEqual({ total: RECENT + inserts.length, old: 0 });
    // The DEFAULT partition's rows: those of 100 days ago got their day and went to the archive (with
    // their error text), -infinity was retired row by row to the archive and expired there.
    const errors = await db.pool.query("SELECT count(*)::int AS n FROM query_performance_archive WHERE error = 'rate limited'");
    expect(errors.rows[0].n).toBe(ANCIENT_DEFAULT - 1);
    // Archived rows inside the archive horizon stay; the day past it is dropped.
    const archiveLeft = await db.pool.query('SELECT count(*)::int AS n FROM query_performance_archive WHERE id < 0');
    expect(archiveLeft.rows[0].n).toBe(7);
    // Partitions are kept `partitions_ahead` days ahead.
    const ahead = await db.pool.query(
      "SELECT max(lo) - date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS ahead FROM query_log_partitions('query_performance_log')",
    );
    expect(ahead.rows[0].ahead).toMatchObject({ days: 10 });

    const detach = steps.filter((s) => s.step === 'archive');
    const longestInsert = Math.max(...inserts.map((i) => i.end - i.start));
    console.log(`log-retention: ${detach.length} day(s) archived, longest ${Math.max(...detach.map((s) => s.finishedAt.getTime() - s.startedAt.getTime()))} ms; writer: ${inserts.length} inserts, longest ${longestInsert} ms`);
  });

  it('a day whose lock is not granted within lock_timeout is tried again, then archived', async () => {
    await db.pool.query(
      `SELECT query_log_add_partition('query_performance_log', ((now() - interval '35 days') AT TIME ZONE 'UTC')::date)`,
    );
    await db.pool.query("INSERT INTO query_performance_log (query_type, duration_ms, ts) VALUES ('insert', 1, now() - interval '35 days')");
    // The job's own log: its first DETACH giving up on the lock is a line of it.
    const logged: Record<string, unknown>[] = [];
    const stream = new PassThrough();
    stream.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) logged.push(JSON.parse(line) as Record<string, unknown>);
    });
    const retrying = testRunner(db.url, testConfig((c) => Object.assign(c.jobs['log-retention'], { lock_timeout: 1000 })), 'test-sidecar', {
      log: createLogger('info', stream),
    });
    // A reader in a long transaction holds ACCESS SHARE on the log: DETACH must wait for it.
    const reader = new pg.Client({ connectionString: db.url });
    await reader.connect();
    let run: ReturnType<typeof retrying.runner.run> | undefined;
    try {
      await reader.query('BEGIN');
      await reader.query('SELECT count(*) FROM query_performance_log');
      run = retrying.runner.run('log-retention', { trigger: 'manual' });
      // The first attempt runs into lock_timeout while the reader holds on ...
      const refused = () => logged.filter((line) => line.msg === 'query log partition: lock not granted within lock_timeout; trying again');
      await eventually(async () => refused().length > 0, 'the first DETACH refused by lock_timeout', 30_000, 20);
      expect(refused()[0]).toMatchObject({ level: 'warn', attempt: 1 });
      // ... and only then is the lock released: the day can only be archived by a later attempt.
      await reader.query('COMMIT');
      const result = await run;
      expect(result.result, result.message).toBe('success');
      expect(result.details).toMatchObject({ days_archived: 1 });
    } finally {
      await reader.end();
      // A failed expectation above must not leave the run holding the job's lock for the next test.
      await run?.catch(() => undefined);
      await retrying.close();
    }
    const left = await db.pool.query("SELECT count(*)::int AS n FROM query_performance_log WHERE ts < now() - interval '30 days'");
    expect(left.rows[0].n).toBe(0);
  });

  it('with nothing past the horizon it archives nothing and says so', async () => {
    const result = await t.runner.run('log-retention', { trigger: 'manual' });
    expect(result.result).toBe('success');
    expect(result.message).toMatch(/^archived 0 day\(s\) of the log \(about 0 rows\), dropped 0 archived day\(s\)/);
  });
});
