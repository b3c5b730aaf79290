import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_NAMES } from '../src/collectors/index.js';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';
import { maintenanceRows } from './helpers/jobs.js';

const TOKEN = 'test-token-0123456789abcdef';

/**
 * Jobs enabled but scheduled once a year, so only the test triggers them. Only the connectivity collector
 * polls: the shutdown test measures the jobs' part of the shutdown, not a slow first poll of the others.
 */
const JOBS_YAML = `
collectors:
${COLLECTOR_NAMES.map((name) => `  ${name}: { enabled: ${name === 'connectivity'}, interval: 300ms, timeout: 2s }`).join('\n')}
jobs:
  analyze: { schedule: "0 0 1 1 *" }
  vacuum-analyze: { schedule: "0 0 1 1 *", lock_timeout: 20s }
  reindex-vector: { schedule: "0 0 1 1 *" }
  log-retention: { schedule: "0 0 1 1 *" }
`;

const post = (url: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers });

describe('serve with a jobs token', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  const lastSuccess = new Date('2026-01-02T03:04:05Z');
  beforeAll(async () => {
    db = await createTestDatabase();
    // A success recorded by an earlier run (or another replica): the metric starts from it.
    await db.pool.query("INSERT INTO maintenance_log (job, status, started_at, finished_at, host) VALUES ('vacuum-analyze', 'success', $1, $1, 'earlier')", [lastSuccess]);
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(JOBS_YAML)], {
      JOBS_API_TOKEN: TOKEN,
      INSTANCE_NAME: 'http-test',
      // backup (off by default, runnable by name) fails here: the failure path of a job under serve.
      PG_DUMP_PATH: '/nonexistent/pg_dump',
      BACKUP_DIRECTORY: mkdtempSync(join(tmpdir(), 'jobs-http-backups-')),
    });
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('rejects a missing or wrong token with 401 and logs the attempt without the token', async () => {
    const missing = await post(`${serve.url}/jobs/analyze/run`);
    expect(missing.status).toBe(401);
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/);
    const wrong = await post(`${serve.url}/jobs/analyze/run`, { Authorization: 'Bearer wrong-secret-token' });
    expect(wrong.status).toBe(401);
    const almost = await post(`${serve.url}/jobs/analyze/run`, { Authorization: `Basic ${TOKEN}` });
    expect(almost.status).toBe(401);
    await eventually(async () => (serve.logs().match(/POST \/jobs rejected/g) ?? []).length >= 3, 'three rejections logged');
    expect(serve.logs()).not.toContain('wrong-secret-token');
    expect(serve.logs()).not.toContain(TOKEN);
    expect(await maintenanceRows(db.pool, 'analyze')).toEqual([]);
  });

  it('runs the job with the right token: 200 with the result, recorded, counted', async () => {
    const response = await post(`${serve.url}/jobs/analyze/run`, { Authorization: `Bearer ${TOKEN}` });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({ job: 'analyze', result: 'success', dry_run: false });
    expect(body.statements).toContain('ANALYZE "public"."chunk_embeddings"');
    const rows = await maintenanceRows(db.pool, 'analyze');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ id: String(body.maintenance_log_id), status: 'success', host: 'http-test' });
    expect(rows[0]!.details.trigger).toBe('http');

    const text = await serve.metrics();
    expect(sampleValue(text, 'rag_maintenance_job_runs_total', { job_name: 'analyze', result: 'success' })).toBe(1);
    expect(sampleValue(text, 'rag_maintenance_job_runs_total', { job_name: 'analyze', result: 'failure' })).toBe(0);
    expect(sampleValue(text, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'analyze' })).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(sampleValue(text, 'rag_maintenance_job_duration_seconds_count', { job_name: 'analyze' })).toBe(1);
  });

  it('publishes every scheduled job from the start, last success read back from maintenance_log', async () => {
    const text = await serve.metrics();
    for (const job of ['analyze', 'vacuum-analyze', 'reindex-vector', 'log-retention']) {
      expect(sampleValue(text, 'rag_maintenance_job_running', { job_name: job }), job).toBe(0);
      expect(sampleValue(text, 'rag_maintenance_job_next_run_timestamp_seconds', { job_name: job }), job).toBeGreaterThan(Date.now() / 1000);
    }
    // backup is disabled by default: no series for it.
    expect(sampleValue(text, 'rag_maintenance_job_running', { job_name: 'backup' })).toBeUndefined();
    expect(sampleValue(text, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'vacuum-analyze' })).toBe(lastSuccess.getTime() / 1000);
    expect(sampleValue(text, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'reindex-vector' })).toBe(0);
  });

  it('a failing job answers 500, is recorded and counted, and the exporter carries on', async () => {
    const response = await post(`${serve.url}/jobs/backup/run`, { Authorization: `Bearer ${TOKEN}` });
    expect(response.status).toBe(500);
    const body = await response.json();
    expect(body).toMatchObject({ job: 'backup', result: 'failure' });
    expect(body.message).toContain('/nonexistent/pg_dump not found');
    expect((await maintenanceRows(db.pool, 'backup')).map((r) => r.status)).toEqual(['failed']);
    // /metrics renders at most once a second: wait for the render that follows the run.
    const text = await eventually(async () => {
      const t = await serve.metrics();
      return sampleValue(t, 'rag_maintenance_job_runs_total', { job_name: 'backup', result: 'failure' }) === 1 ? t : undefined;
    }, 'the failure counted in /metrics', 10_000);
    expect(sampleValue(text, 'pg_up')).toBe(1);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
  });

  it('passes promtool check metrics with every job series present', async () => {
    const result = spawnSync('promtool', ['check', 'metrics'], { input: await serve.metrics(), encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    const problems = `${result.stdout}${result.stderr}`.split('\n').filter((l) => /rag_maintenance|rag_backup/.test(l));
    expect(problems).toEqual([]);
  });

  it('answers 404 for an unknown job and 409 while the job is already running', async () => {
    const unknown = await post(`${serve.url}/jobs/defrag/run`, { Authorization: `Bearer ${TOKEN}` });
    expect(unknown.status).toBe(404);

    // Keep vacuum-analyze waiting for a lock (its lock_timeout is 20s) so the second request finds it running.
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE key_concepts IN ACCESS EXCLUSIVE MODE');
    const first = post(`${serve.url}/jobs/vacuum-analyze/run`, { Authorization: `Bearer ${TOKEN}` });
    await eventually(async () => sampleValue(await serve.metrics(), 'rag_maintenance_job_running', { job_name: 'vacuum-analyze' }) === 1, 'vacuum-analyze running');
    const second = await post(`${serve.url}/jobs/vacuum-analyze/run`, { Authorization: `Bearer ${TOKEN}` });
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ result: 'skipped', skip_reason: 'already-running' });
    await blocker.query('ROLLBACK');
    await blocker.end();
    expect((await first).status).toBe(200);
  });
});

describe('serve without a jobs token, or with --no-jobs', () => {
  const db = useTestDatabase();

  it('has no jobs endpoint without a token', async () => {
    const serve = await startServe(['--database-url', db.url, '--config', writeConfig(JOBS_YAML)]);
    try {
      const response = await post(`${serve.url}/jobs/analyze/run`, { Authorization: `Bearer ${TOKEN}` });
      expect(response.status).toBe(404);
      expect(sampleValue(await serve.metrics(), 'rag_maintenance_job_running', { job_name: 'analyze' })).toBe(0);
    } finally {
      await serve.stop();
    }
  });

  it('--no-jobs runs no scheduler and no endpoint, even with a token', async () => {
    const serve = await startServe(['--database-url', db.url, '--config', writeConfig(JOBS_YAML), '--no-jobs'], { JOBS_API_TOKEN: TOKEN });
    try {
      expect((await post(`${serve.url}/jobs/analyze/run`, { Authorization: `Bearer ${TOKEN}` })).status).toBe(404);
      const text = await serve.metrics();
      expect(text).toContain('# TYPE rag_maintenance_job_runs_total counter');
      expect(sampleValue(text, 'rag_maintenance_job_running', { job_name: 'analyze' })).toBeUndefined();
    } finally {
      expect((await serve.stop()).code).toBe(0);
    }
  });

  it('SIGTERM during a run cancels it, records the failure, and exits 0', async () => {
    const serve = await startServe(['--database-url', db.url, '--config', writeConfig(JOBS_YAML)], { JOBS_API_TOKEN: TOKEN });
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE key_concepts IN ACCESS EXCLUSIVE MODE');
    try {
      void post(`${serve.url}/jobs/vacuum-analyze/run`, { Authorization: `Bearer ${TOKEN}` }).catch(() => undefined);
      await eventually(async () => (await maintenanceRows(db.pool, 'vacuum-analyze')).some((r) => r.status === 'running'), 'run started');
      const stopped = await serve.stop();
      expect(stopped.code, `${stopped.ms} ms\n${serve.logs().split('\n').filter((l) => !l.includes('"collector"')).slice(-8).join('\n')}`).toBe(0);
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    const rows = await maintenanceRows(db.pool, 'vacuum-analyze');
    expect(rows.at(-1)).toMatchObject({ status: 'failed' });
    expect(rows.at(-1)!.message).toMatch(/statement cancelled on request: canceling statement due to user request|interrupted by shutdown/);
  });
});
