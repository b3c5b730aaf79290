import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Scheduler } from '../src/jobs/scheduler.js';
import { createLogger } from '../src/log.js';
import { adminQuery, createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';
import { maintenanceRows, testConfig, testRunner, type TestRunner } from './helpers/jobs.js';

describe('a job whose lock cannot be taken in time', () => {
  let db: TestDatabase;
  let t: TestRunner;
  let blocker: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase();
    t = testRunner(
      db.url,
      testConfig((c) => {
        c.jobs.analyze.lock_timeout = 300;
        c.jobs['log-retention'].lock_timeout = 300;
      }),
    );
    blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker.end().catch(() => undefined);
    await t.close();
    await db.drop();
  });

  it('ends `failure` by its lock_timeout, recorded with the error, and the next job still runs', async () => {
    // A conflicting lock held by another session for as long as the test wants (an ALTER TABLE would).
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE chunk_embeddings IN ACCESS EXCLUSIVE MODE');
    try {
      const specs = [
        { job: 'analyze' as const, schedule: '0 2 * * *', timezone: 'UTC' },
        { job: 'log-retention' as const, schedule: '0 2 * * *', timezone: 'UTC' },
      ];
      const scheduler = new Scheduler(specs, t.runner, createLogger('silent'));
      const slot = new Date('2026-02-01T02:00:00Z');
      const analyzeRun = scheduler.fire('analyze', slot);
      const retentionRun = scheduler.fire('log-retention', slot);
      await Promise.all([analyzeRun, retentionRun]);

      const [analyze] = await maintenanceRows(db.pool, 'analyze');
      expect(analyze!.status).toBe('failed');
      expect(analyze!.message).toMatch(/ANALYZE failed on chunk_embeddings \(lock not available within lock_timeout.*lock timeout/);
      const failed = analyze!.details.failed as { table: string; code: string }[];
      expect(failed).toEqual([expect.objectContaining({ table: 'chunk_embeddings', code: '55P03' })]);
      // The other managed tables were still analyzed.
      expect(analyze!.details.tables).toContain('framework_documents');
      expect(analyze!.details.tables).not.toContain('chunk_embeddings');

      const [retention] = await maintenanceRows(db.pool, 'log-retention');
      expect(retention!.status).toBe('success');
    } finally {
      await blocker.query('ROLLBACK');
    }
    // Nothing was left waiting behind the lock, and the job's session let go of its advisory lock.
    const { rows } = await db.pool.query("SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database())");
    expect(rows[0].n).toBe(0);
  });

  it('a statement cut by statement_timeout ends `failure` naming it', async () => {
    // No lock_timeout: the wait for the lock is what runs into the statement_timeout.
    const slow = testRunner(db.url, testConfig((c) => Object.assign(c.jobs['vacuum-analyze'], { lock_timeout: 0, statement_timeout: 300 })));
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE framework_documents IN ACCESS EXCLUSIVE MODE');
    try {
      const result = await slow.runner.run('vacuum-analyze', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toMatch(/framework_documents \(statement cancelled by statement_timeout/);
    } finally {
      await blocker.query('ROLLBACK');
      await slow.close();
    }
  });
});

describe('identifiers from the config', () => {
  const db = useTestDatabase();

  it('are quoted, never spliced: odd table names work and cannot inject a statement', async () => {
    await db.pool.query('CREATE TABLE "Chunk ""Notes""" (id int)');
    await db.pool.query('CREATE TABLE victim (id int)');
    const tables = ['Chunk "Notes"', 'victim; DROP TABLE victim', 'framework_documents'];
    const t = testRunner(db.url, testConfig((c) => (c.managed_tables = tables)));
    try {
      const result = await t.runner.run('analyze', { trigger: 'manual' });
      expect(result.result, result.message).toBe('success');
      expect(result.statements).toEqual(['ANALYZE "public"."Chunk ""Notes"""', 'ANALYZE "public"."framework_documents"']);
      expect(result.message).toContain('not found in schema public: victim; DROP TABLE victim');
      const analyzed = await db.pool.query(`SELECT last_analyze IS NOT NULL AS done FROM pg_stat_user_tables WHERE relname = 'Chunk "Notes"'`);
      expect(analyzed.rows[0].done).toBe(true);
      expect((await db.pool.query("SELECT to_regclass('victim') IS NOT NULL AS present")).rows[0].present).toBe(true);
    } finally {
      await t.close();
    }
  });
});

describe('a role that may not maintain the tables', () => {
  let db: TestDatabase;
  const role = `jobs_nonowner_${Date.now()}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    // The monitoring role of the schema (SELECT, maintenance_log writes), but not the tables' owner.
    await db.pool.query(`CREATE ROLE ${role} LOGIN IN ROLE pgvector_exporter`);
  });
  afterAll(async () => {
    await db.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });

  it('fails ANALYZE instead of letting PostgreSQL skip the tables with a warning', async () => {
    const url = new URL(db.url);
    url.username = role;
    const t = testRunner(url.toString(), testConfig());
    try {
      const result = await t.runner.run('analyze', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toMatch(/^ANALYZE failed on framework_documents \(permission denied: ANALYZE would skip it/);
      expect((result.details.forbidden_tables as string[]).length).toBeGreaterThan(5);
      const rows = await maintenanceRows(db.pool, 'analyze');
      expect(rows.map((r) => r.status)).toEqual(['failed']);
    } finally {
      await t.close();
    }
  });
});
