import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertQueryLog, loadMigrations, migrate } from '../src/db/migrate.js';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';

/**
 * Migration 007: the partitioned query log, and the online conversion of an unpartitioned one while
 * the search service keeps inserting.
 */

const BEFORE_007 = loadMigrations().filter((m) => m.version < '007');

/** The search service: one session inserting log rows back to back until stopped; every failure kept. */
function startWriter(url: string) {
  const client = new pg.Client({ connectionString: url, application_name: 'search-service' });
  const ids: string[] = [];
  const failures: string[] = [];
  let longestMs = 0;
  let stop = false;
  const done = (async () => {
    await client.connect();
    while (!stop && failures.length < 100) {
      const started = Date.now();
      try {
        const { rows } = await client.query<{ id: string }>(
          "INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) VALUES ('vector_search', 12.5, 3) RETURNING id",
        );
        ids.push(rows[0]!.id);
      } catch (err) {
        failures.push((err as Error).message);
      }
      longestMs = Math.max(longestMs, Date.now() - started);
    }
    await client.end();
  })();
  return {
    ids,
    failures,
    get longestMs() {
      return longestMs;
    },
    async waitFor(n: number) {
      const target = ids.length + n;
      for (let i = 0; i < 2000 && ids.length < target && failures.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

describe('migration 007: partitioned query log', () => {
  const db = useTestDatabase();

  it('on a fresh install: daily partitions from yesterday to a week ahead, a DEFAULT partition, no leftover tables', async () => {
    const { rows } = await db.pool.query<{ partition: string; days: number | null; is_default: boolean }>(
      `SELECT partition::text, extract(day FROM lo - date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')::int AS days, is_default
         FROM query_log_partitions('query_performance_log') ORDER BY lo NULLS LAST`,
    );
    expect(rows.map((r) => r.days)).toEqual([-1, 0, 1, 2, 3, 4, 5, 6, 7, null]);
    expect(rows.at(-1)).toMatchObject({ partition: 'query_performance_log_default', is_default: true });
    const { rows: archive } = await db.pool.query("SELECT partition::text FROM query_log_partitions('query_performance_archive')");
    expect(archive).toEqual([{ partition: 'query_performance_archive_default' }]);
    const { rows: left } = await db.pool.query(
      "SELECT to_regclass('query_performance_log_unpartitioned') AS a, to_regclass('query_performance_archive_unpartitioned') AS b",
    );
    expect(left[0]).toEqual({ a: null, b: null });
  });

  it('accepts a row for any timestamp and keeps the roles working: the service inserts, the exporter reads and maintains', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE rag_read_write');
      await client.query(
        "INSERT INTO query_performance_log (query_type, duration_ms, ts) VALUES ('insert', 1, now()), ('insert', 2, '1999-12-31 23:00+00'), ('insert', 3, 'infinity')",
      );
      await client.query('SET LOCAL ROLE pgvector_exporter');
      const { rows } = await client.query<{ part: string; n: number }>(
        "SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM query_performance_log WHERE query_type = 'insert' GROUP BY 1 ORDER BY 1",
      );
      expect(rows.find((r) => r.part === 'query_performance_log_default')?.n).toBe(2);
      // The exporter's role runs the partition job (SECURITY DEFINER): the DEFAULT rows get their day.
      await client.query('SELECT query_log_maintain_partitions(7)');
      const { rows: after } = await client.query<{ part: string }>(
        "SELECT tableoid::regclass::text AS part FROM query_performance_log WHERE query_type = 'insert' ORDER BY ts",
      );
      expect(after.map((r) => r.part)).toEqual([
        'query_performance_log_p19991231',
        expect.stringMatching(/^query_performance_log_p\d{8}$/),
        'query_performance_log_default', // infinity has no day
      ]);
      // The exporter's role cannot drop or attach partitions by itself.
      await expect(client.query('ALTER TABLE query_performance_log DETACH PARTITION query_performance_log_p19991231')).rejects.toThrow(/owner/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });
});

describe('migration 007: online conversion of an unpartitioned log', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await migrate(client, BEFORE_007);
      // 20,000 rows over the last 10 days, and an archive of 2,000 rows 40-50 days old.
      await client.query(`INSERT INTO query_performance_log (query_type, duration_ms, ts)
        SELECT (ARRAY['vector_search','hybrid_search','embedding_generation'])[1 + g % 3], g % 900, now() - ((20001 - g) * interval '43 seconds') FROM generate_series(1, 20000) g`);
      await client.query(`INSERT INTO query_performance_archive (id, query_type, duration_ms, ts, error)
        SELECT -g, 'vector_search', g, now() - interval '40 days' - g * interval '7 minutes', CASE WHEN g % 10 = 0 THEN 'boom' END FROM generate_series(1, 2000) g`);
    } finally {
      await client.end();
    }
  });
  afterAll(async () => db?.drop());

  it('moves every row while a writer keeps inserting: no insert fails, none lost or doubled, resumable mid-way', async () => {
    const before = (await db.pool.query<{ id: string }>('SELECT id FROM query_performance_log ORDER BY id')).rows.map((r) => r.id);
    const archiveBefore = (await db.pool.query('SELECT md5(string_agg(q::text, \',\' ORDER BY id)) AS h FROM query_performance_archive q')).rows[0].h as string;
    const writer = startWriter(db.url);
    try {
      await convertWhileWriting(writer, before, archiveBefore);
    } finally {
      await writer.stop();
    }
  });

  async function convertWhileWriting(writer: ReturnType<typeof startWriter>, before: string[], archiveBefore: string): Promise<void> {
    const client = new pg.Client({ connectionString: db.url, application_name: 'migrate' });
    await client.connect();
    let converted = 0;
    try {
      await writer.waitFor(20);
      const result = await migrate(client);
      expect(result.applied).toEqual(loadMigrations().filter((m) => m.version >= '007').map((m) => m.file));
      await writer.waitFor(20);

      // A few batches, then the "migrate" process dies: every row is in exactly one of the two tables.
      for (let i = 0; i < 3; i++) converted += Number((await client.query('SELECT query_log_convert_step(1500) AS n')).rows[0].n);
      const { rows: mid } = await client.query<{ old: number; new_old: number }>(
        `SELECT (SELECT count(*) FROM query_performance_log_unpartitioned WHERE id <= $1)::int AS old,
                (SELECT count(*) FROM query_performance_log WHERE id <= $1)::int AS new_old`,
        [before.at(-1)],
      );
      expect(mid[0]!.old + mid[0]!.new_old).toBe(before.length);
      expect(converted).toBe(4500);
      // Newest first: the last hour (performance_dashboard's window) is already there.
      const { rows: dash } = await client.query<{ n: number }>("SELECT sum(query_count)::int AS n FROM performance_dashboard");
      const { rows: lastHour } = await client.query<{ n: number }>(
        "SELECT (SELECT count(*) FROM query_performance_log_unpartitioned WHERE ts >= now() - interval '1 hour')::int AS n",
      );
      expect(lastHour[0]!.n).toBe(0);
      expect(dash[0]!.n).toBeGreaterThan(80);
      await client.end();
    } catch (err) {
      await client.end();
      throw err;
    }

    // Resumed by a new session (migrate run again, or the log-retention job).
    const resume = new pg.Client({ connectionString: db.url });
    await resume.connect();
    try {
      converted += await convertQueryLog(resume, 1000);
    } finally {
      await resume.end();
    }
    await writer.waitFor(20);
    await writer.stop();

    expect(writer.failures).toEqual([]);
    // The old rows, the archive, and what the writer had inserted before the swap.
    expect(converted).toBeGreaterThanOrEqual(before.length + 2000);
    const { rows: gone } = await db.pool.query(
      "SELECT to_regclass('query_performance_log_unpartitioned') AS a, to_regclass('query_performance_archive_unpartitioned') AS b",
    );
    expect(gone[0]).toEqual({ a: null, b: null });
    const after = (await db.pool.query<{ id: string }>('SELECT id FROM query_performance_log ORDER BY id')).rows.map((r) => r.id);
    const expected = [...before, ...writer.ids].sort((a, b) => Number(a) - Number(b));
    expect(after).toEqual(expected);
    // The archive's rows, byte for byte (including the error rows another collector counts).
    const archiveAfter = (await db.pool.query('SELECT md5(string_agg(q::text, \',\' ORDER BY id)) AS h FROM query_performance_archive q')).rows[0].h as string;
    expect(archiveAfter).toBe(archiveBefore);
    // Nothing detoured through DEFAULT: every converted day got its partition.
    const { rows: inDefault } = await db.pool.query<{ n: number }>(
      'SELECT ((SELECT count(*) FROM query_performance_log_default) + (SELECT count(*) FROM query_performance_archive_default))::int AS n',
    );
    expect(inDefault[0]!.n).toBe(0);
    // The health check and the dashboard read the new layout.
    const { rows: health } = await db.pool.query("SELECT status, details FROM system_health_check() WHERE component = 'query_performance'");
    expect(health[0].details).toMatch(/vector_search p95 .* over \d+ queries/);
    console.log(`conversion: ${before.length} + 2000 archived rows moved; writer ${writer.ids.length} inserts, longest ${writer.longestMs} ms`);
  }
});
