import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_NAMES } from '../src/collectors/index.js';
import { runCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * Features, not failures: a database without the RAG schema, without pg_stat_statements, or a role
 * without a grant has every collector succeed; what is absent reads pgvector_exporter_feature_enabled 0
 * with one info line naming it, and appears as soon as the schema, the extension or the grant does.
 */
const ALL_COLLECTORS_FAST = `
collectors:
${COLLECTOR_NAMES.map((name) => `  ${name}: { enabled: true, interval: 300ms, timeout: 5s }`).join('\n')}
jobs:
  enabled: false
`;

const feature = (text: string, name: string) => sampleValue(text, 'pgvector_exporter_feature_enabled', { feature: name });

/**
 * Every collector has succeeded at least `polls` times. The bound is generous: with all twelve collectors
 * at 300 ms (recall included) a machine at load average 20 once took longer than the default 20 s.
 */
const POLLED_BOUND_MS = 90_000;
async function allPolled(serve: ServeProcess, polls = 2): Promise<string> {
  return eventually(async () => {
    const text = await serve.metrics();
    const ok = COLLECTOR_NAMES.every((c) => (sampleValue(text, 'pgvector_exporter_collector_polls_total', { collector: c, result: 'success' }) ?? 0) >= polls);
    return ok ? text : undefined;
  }, `${polls} successful polls of every collector`, POLLED_BOUND_MS);
}

function failures(text: string): string[] {
  return COLLECTOR_NAMES.filter((c) => (sampleValue(text, 'pgvector_exporter_collector_polls_total', { collector: c, result: 'failure' }) ?? 0) > 0);
}

function infoLines(logs: string, featureName: string, msg: string): number {
  return logs.split('\n').filter((l) => l.includes(`"feature":"${featureName}"`) && l.includes(`"msg":"${msg}"`)).length;
}

describe('a pgvector database with a schema of its own', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    await db.pool.query('CREATE EXTENSION vector');
    await db.pool.query('CREATE SCHEMA shop');
    await db.pool.query('CREATE TABLE shop.items (id bigserial PRIMARY KEY, embedding vector(3))');
    await db.pool.query('INSERT INTO shop.items (embedding) SELECT ARRAY[random(), random(), random()]::vector(3) FROM generate_series(1, 200)');
    await db.pool.query('CREATE INDEX items_embedding_idx ON shop.items USING hnsw (embedding vector_l2_ops)');
    serve = await startServe(['--config', writeConfig(ALL_COLLECTORS_FAST), '--database-url', db.url]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('no collector fails; the RAG parts and pg_stat_statements read as features 0, each logged once', { timeout: POLLED_BOUND_MS + 30_000 }, async () => {
    const text = await allPolled(serve, 3);
    expect(failures(text)).toEqual([]);
    for (const name of ['health_check', 'query_log', 'embeddings', 'embedding_failures', 'recall', 'expected_indexes', 'pg_stat_statements']) {
      expect(feature(text, name), name).toBe(0);
      expect(infoLines(serve.logs(), name, 'not in this database: not collected'), name).toBe(1);
    }
    expect(feature(text, 'pg_monitor')).toBe(1);
    expect(text).not.toMatch(/^pg_index_expected_present/m);
    expect(text).not.toMatch(/^rag_health_check_status/m);
    expect(serve.logs()).toMatch(/"feature":"query_log","reason":"table query_performance_log not found \(the RAG schema of sql\/migrations is not installed in this database\)"/);
    expect(serve.logs()).not.toContain('collector failed');
  });

  it('features appear while it runs: pg_stat_statements created, then the RAG schema migrated', async () => {
    await db.pool.query('CREATE EXTENSION pg_stat_statements');
    await eventually(async () => feature(await serve.metrics(), 'pg_stat_statements') === 1, 'pg_stat_statements enabled');
    const migrated = await runCli(['migrate', '--database-url', db.url]);
    expect(migrated.code).toBe(0);
    const text = await eventually(async () => {
      const t = await serve.metrics();
      return ['health_check', 'query_log', 'embeddings', 'embedding_failures', 'recall', 'expected_indexes'].every((f) => feature(t, f) === 1) ? t : undefined;
    }, 'the RAG features enabled after migrate');
    expect(sampleValue(text, 'pg_index_expected_present', { indexrelname: 'idx_embeddings_vector' })).toBe(1);
    await eventually(async () => /^rag_health_check_status\{/m.test(await serve.metrics()), 'health check series');
    expect(infoLines(serve.logs(), 'health_check', 'now in this database: collected')).toBe(1);
    expect(failures(await serve.metrics())).toEqual([]);
  });
});

describe('a role without the grants', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  const role = `nogrants_${randomBytes(4).toString('hex')}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query(`CREATE ROLE ${role} LOGIN`);
    const url = new URL(db.url);
    url.username = role;
    url.password = '';
    serve = await startServe(['--config', writeConfig(ALL_COLLECTORS_FAST), '--database-url', url.toString()]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
    await db?.pool.query('SELECT 1').catch(() => undefined);
    const { adminQuery } = await import('./helpers/database.js');
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });

  it('names the missing GRANT once, keeps every collector working, and follows the grant', { timeout: POLLED_BOUND_MS + 30_000 }, async () => {
    const text = await allPolled(serve, 2);
    expect(failures(text)).toEqual([]);
    expect(feature(text, 'query_log')).toBe(0);
    expect(feature(text, 'embeddings')).toBe(0);
    expect(feature(text, 'pg_monitor')).toBe(0);
    const logs = serve.logs();
    expect(logs).toContain(`permission denied: GRANT SELECT ON query_performance_log TO ${role}`);
    expect(logs).toContain(`permission denied: GRANT SELECT ON framework_documents TO ${role}; GRANT SELECT ON chunk_embeddings TO ${role}`);
    expect(logs).toContain(`GRANT pg_monitor TO ${role}`);
    expect(infoLines(logs, 'query_log', 'not in this database: not collected')).toBe(1);

    await db.pool.query(`GRANT SELECT ON query_performance_log TO ${role}`);
    await eventually(async () => feature(await serve.metrics(), 'query_log') === 1, 'query_log enabled after the grant');
    expect(failures(await serve.metrics())).toEqual([]);
  });
});
