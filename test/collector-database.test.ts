import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DATABASE_SQL, databaseCollector, databaseSamples, type DatabaseRow } from '../src/collectors/database.js';
import { type TestDatabase } from './helpers/database.js';
import { collectorContext, connect, exporterLogin, flushStats, samplesOf, valueOf, useDatabaseClient } from './helpers/collector-context.js';

describe('database collector', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const collector = databaseCollector();

  useDatabaseClient((opened) => ({ db, client } = opened));

  it('publishes pg_stat_database for the target database only, with its size and frozenxid age', async () => {
    const samples = await collector.collect(collectorContext(client));
    const datnames = new Set(samples.filter((s) => s.labels?.datname).map((s) => s.labels!.datname));
    expect([...datnames]).toEqual([db.name]);
    for (const family of collector.families) expect(samplesOf(samples, family.name), family.name).toHaveLength(1);

    const { rows } = await db.pool.query<{ age: string; max: string; size: string; oid: string }>(
      "SELECT age(datfrozenxid) AS age, current_setting('autovacuum_freeze_max_age') AS max, pg_database_size(oid) AS size, oid::text AS oid FROM pg_database WHERE datname = current_database()",
    );
    expect(valueOf(samples, 'pg_stat_database_numbackends', { datid: rows[0]!.oid })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'pg_settings_autovacuum_freeze_max_age')).toBe(Number(rows[0]!.max));
    expect(valueOf(samples, 'pg_database_frozenxid_age')).toBeGreaterThanOrEqual(Number(rows[0]!.age) - 5);
    expect(valueOf(samples, 'pg_database_size_bytes')).toBeGreaterThan(1_000_000);
  });

  it('follows the database: commits, rollbacks, inserted rows, temp files, deadlock-free work', async () => {
    const before = await collector.collect(collectorContext(client));
    const writer = await connect(db.url, 'writer');
    try {
      await writer.query('CREATE TABLE t (id int)');
      await writer.query('INSERT INTO t SELECT generate_series(1, 500)');
      await writer.query('BEGIN');
      await writer.query('INSERT INTO t VALUES (0)');
      await writer.query('ROLLBACK');
      // A sort bigger than work_mem spills to a temporary file.
      await writer.query("SET work_mem = '64kB'");
      await writer.query('SELECT g FROM generate_series(1, 20000) g ORDER BY g DESC');
      await flushStats(writer);
    } finally {
      await writer.end();
    }
    const after = await collector.collect(collectorContext(client));
    const delta = (family: string) => valueOf(after, family) - valueOf(before, family);
    expect(delta('pg_stat_database_xact_commit')).toBeGreaterThanOrEqual(3);
    expect(delta('pg_stat_database_xact_rollback')).toBeGreaterThanOrEqual(1);
    expect(delta('pg_stat_database_tup_inserted')).toBeGreaterThanOrEqual(500);
    expect(delta('pg_stat_database_temp_files')).toBeGreaterThanOrEqual(1);
    expect(delta('pg_stat_database_temp_bytes')).toBeGreaterThan(0);
    expect(delta('pg_stat_database_deadlocks')).toBe(0);
  });

  it('leaves a NULL column out instead of publishing 0', async () => {
    const [row] = (await client.query<DatabaseRow>(DATABASE_SQL)).rows;
    const samples = databaseSamples({ ...row!, frozenxid_age: null, temp_bytes: null });
    expect(samplesOf(samples, 'pg_database_frozenxid_age')).toHaveLength(0);
    expect(samplesOf(samples, 'pg_stat_database_temp_bytes')).toHaveLength(0);
    expect(samplesOf(samples, 'pg_stat_database_xact_commit')).toHaveLength(1);
  });

  it('works with the least-privilege pgvector_exporter role alone', async () => {
    const login = await exporterLogin(db.pool, db.url);
    try {
      const samples = await collector.collect(collectorContext(login.client));
      expect(valueOf(samples, 'pg_database_size_bytes')).toBeGreaterThan(0);
      expect(valueOf(samples, 'pg_database_frozenxid_age')).toBeGreaterThanOrEqual(0);
    } finally {
      await login.drop();
    }
  });
});
