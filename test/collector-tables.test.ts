import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { tablesCollector, type TablesOptions } from '../src/collectors/tables.js';
import { DEFAULT_MANAGED_TABLES } from '../src/config/schema.js';
import { type TestDatabase } from './helpers/database.js';
import { collectorContext, exporterLogin, flushStats, samplesOf, valueOf, useDatabaseClient } from './helpers/collector-context.js';

describe('tables collector', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const options: TablesOptions = { schema: 'public', tables: DEFAULT_MANAGED_TABLES };
  const collect = async (opts = options, c: pg.Client = client) => tablesCollector(opts).collect(collectorContext(c));
  const table = (relname: string) => ({ relname, schemaname: 'public' });

  useDatabaseClient((opened) => ({ db, client } = opened));

  it('publishes one series per family for each managed table, and nothing else', async () => {
    const samples = await collect();
    const relnames = new Set(samples.map((s) => s.labels!.relname));
    expect([...relnames].sort()).toEqual([...DEFAULT_MANAGED_TABLES].sort());
    for (const family of tablesCollector(options).families) {
      expect(samplesOf(samples, family.name), family.name).toHaveLength(DEFAULT_MANAGED_TABLES.length);
    }
    expect(samples.every((s) => s.labels!.datname === db.name)).toBe(true);
  });

  it('reads never-analyzed tables as last_analyze 0 and an infinite analyze age, then follows ANALYZE', async () => {
    const before = await collect();
    expect(valueOf(before, 'pg_stat_user_tables_last_analyze', table('framework_documents'))).toBe(0);
    expect(valueOf(before, 'pg_stat_user_tables_last_autoanalyze', table('framework_documents'))).toBe(0);
    expect(valueOf(before, 'pg_stat_user_tables_last_analyze_age_seconds', table('framework_documents'))).toBe(Infinity);

    await client.query('ANALYZE framework_documents');
    const after = await collect();
    const now = Date.now() / 1000;
    expect(Math.abs(valueOf(after, 'pg_stat_user_tables_last_analyze', table('framework_documents')) - now)).toBeLessThan(60);
    expect(valueOf(after, 'pg_stat_user_tables_last_analyze_age_seconds', table('framework_documents'))).toBeLessThan(60);
  });

  it('follows inserted and deleted rows: live and dead tuples, modifications since analyze, sizes', async () => {
    const before = await collect();
    await client.query(
      "INSERT INTO key_concepts (concept_name) SELECT 'concept ' || g FROM generate_series(1, 300) g",
    );
    await client.query("DELETE FROM key_concepts WHERE concept_name LIKE 'concept 1%'");
    await flushStats(client);
    const after = await collect();
    const kc = table('key_concepts');
    const deleted = 111; // concept 1, 10-19, 100-199
    expect(valueOf(after, 'pg_stat_user_tables_n_tup_ins', kc) - valueOf(before, 'pg_stat_user_tables_n_tup_ins', kc)).toBe(300);
    expect(valueOf(after, 'pg_stat_user_tables_n_tup_del', kc) - valueOf(before, 'pg_stat_user_tables_n_tup_del', kc)).toBe(deleted);
    expect(valueOf(after, 'pg_stat_user_tables_n_live_tup', kc)).toBe(300 - deleted);
    expect(valueOf(after, 'pg_stat_user_tables_n_dead_tup', kc)).toBe(deleted);
    expect(valueOf(after, 'pg_stat_user_tables_n_mod_since_analyze', kc)).toBe(300 + deleted);
    expect(valueOf(after, 'pg_stat_user_tables_dead_tuple_ratio', kc)).toBeCloseTo(deleted / 300);
    expect(valueOf(after, 'pg_table_size_bytes', kc)).toBeGreaterThan(valueOf(before, 'pg_table_size_bytes', kc));
    expect(valueOf(after, 'pg_total_relation_size_bytes', kc)).toBeGreaterThan(valueOf(after, 'pg_table_size_bytes', kc));

    await client.query('VACUUM key_concepts');
    await flushStats(client);
    const vacuumed = await collect();
    expect(valueOf(vacuumed, 'pg_stat_user_tables_n_dead_tup', kc)).toBe(0);
    expect(valueOf(vacuumed, 'pg_stat_user_tables_last_vacuum', kc)).toBeGreaterThan(0);
  });

  it('sizes the daily-partitioned query log as the sum of its partitions, and follows rows written to it', async () => {
    const log = table('query_performance_log');
    const before = await collect();
    const { rows } = await client.query<{ size: string }>(
      "SELECT sum(pg_total_relation_size(relid))::text AS size FROM pg_partition_tree('query_performance_log')",
    );
    expect(valueOf(before, 'pg_total_relation_size_bytes', log)).toBe(Number(rows[0]!.size));
    expect(valueOf(before, 'pg_total_relation_size_bytes', log)).toBeGreaterThan(0);
    await client.query(
      "INSERT INTO query_performance_log (query_type, duration_ms) SELECT 'vector_search', 1 FROM generate_series(1, 2000)",
    );
    await client.query("DELETE FROM query_performance_log WHERE id IN (SELECT id FROM query_performance_log WHERE query_type = 'vector_search' LIMIT 500)");
    await flushStats(client);
    const after = await collect();
    expect(valueOf(after, 'pg_table_size_bytes', log)).toBeGreaterThan(valueOf(before, 'pg_table_size_bytes', log));
    // The activity counters are the partitions' (the parent itself has no storage and counts nothing).
    const { rows: leaves } = await client.query<{ ins: string; del: string; dead: string }>(
      `SELECT sum(s.n_tup_ins)::text AS ins, sum(s.n_tup_del)::text AS del, sum(s.n_dead_tup)::text AS dead
         FROM pg_partition_tree('query_performance_log') t JOIN pg_stat_user_tables s ON s.relid = t.relid WHERE t.isleaf`,
    );
    expect(valueOf(after, 'pg_stat_user_tables_n_tup_ins', log)).toBe(Number(leaves[0]!.ins));
    expect(valueOf(after, 'pg_stat_user_tables_n_tup_ins', log)).toBeGreaterThanOrEqual(2000);
    expect(valueOf(after, 'pg_stat_user_tables_n_tup_del', log)).toBe(500);
    expect(valueOf(after, 'pg_stat_user_tables_n_dead_tup', log)).toBe(Number(leaves[0]!.dead));
    expect(valueOf(after, 'pg_stat_user_tables_dead_tuple_ratio', log)).toBeGreaterThan(0);
  });

  it('reads idx_scan 0 for a table without an index (NULL in pg_stat_user_tables)', async () => {
    await client.query('CREATE TABLE no_index (id int)');
    const samples = await collect({ ...options, tables: ['no_index'] });
    expect(valueOf(samples, 'pg_stat_user_tables_idx_scan', table('no_index'))).toBe(0);
    expect(valueOf(samples, 'pg_stat_user_tables_dead_tuple_ratio', table('no_index'))).toBe(0);
  });

  it('stays bounded with hundreds of other tables in the database', async () => {
    const before = await collect();
    await client.query(`DO $$ BEGIN FOR i IN 1..300 LOOP EXECUTE format('CREATE TABLE extra_%s (id int PRIMARY KEY)', i); END LOOP; END $$`);
    const after = await collect();
    expect(after).toHaveLength(before.length);
  });

  it('skips a configured table that does not exist, and works with the pgvector_exporter role alone', async () => {
    const login = await exporterLogin(db.pool, db.url);
    try {
      const samples = await collect({ ...options, tables: ['chunk_embeddings', 'no_such_table'] }, login.client);
      expect(new Set(samples.map((s) => s.labels!.relname))).toEqual(new Set(['chunk_embeddings']));
      expect(valueOf(samples, 'pg_total_relation_size_bytes', table('chunk_embeddings'))).toBeGreaterThan(0);
    } finally {
      await login.drop();
    }
  });
});
