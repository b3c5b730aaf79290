import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jobRunnerSettings, jobSchedules } from '../src/commands/assembly.js';
import { resolveConnection } from '../src/db/connection.js';
import { JobService } from '../src/jobs/service.js';
import { createLogger } from '../src/log.js';
import { CLI } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { testConfig } from './helpers/jobs.js';

/** A run whose process was SIGKILLed is closed as failed (interrupted) by the next sidecar that looks. */
describe('interrupted runs', () => {
  let db: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    dir = mkdtempSync(join(tmpdir(), 'pgve-interrupted-'));
  });
  afterAll(async () => {
    await db.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  const lastRun = async () =>
    (await db.pool.query<{ status: string; message: string | null; started_at: Date }>("SELECT status, message, started_at FROM maintenance_log WHERE job = 'analyze' ORDER BY id DESC LIMIT 1")).rows[0];

  it('closes a SIGKILLed run once its lock and session are gone, and leaves a live run alone', async () => {
    const config = join(dir, 'config.yaml');
    writeFileSync(config, 'jobs:\n  analyze:\n    lock_timeout: 0\n    statement_timeout: 0\n');
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE framework_documents IN ACCESS EXCLUSIVE MODE');
    const child = spawn(process.execPath, [CLI, 'jobs', 'run', 'analyze', '--config', config], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url },
      stdio: 'ignore',
    });
    const exited = new Promise((resolve) => child.on('exit', resolve));
    const sidecar = () =>
      new JobService({
        runner: jobRunnerSettings(testConfig()),
        schedules: jobSchedules(testConfig()),
        connection: resolveConnection(db.url, {}),
        log: createLogger('silent'),
        registry: new Registry(),
      });
    try {
      // The run is under way: its row reads running and its ANALYZE waits for the lock.
      await expect.poll(async () => (await lastRun())?.status, { timeout: 30_000, interval: 100 }).toBe('running');
      await expect
        .poll(async () => (await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'pgvector-exporter job analyze%' AND wait_event_type = 'Lock'")).rows[0].n, { timeout: 30_000, interval: 100 })
        .toBe(1);

      // A sidecar that looks now leaves it alone: the lock is held, the backend alive.
      await expect.poll(async () => Date.now() - (await lastRun())!.started_at.getTime(), { timeout: 30_000, interval: 200 }).toBeGreaterThan(2500);
      const early = sidecar();
      await early.start();
      await early.stop();
      expect((await lastRun())?.status).toBe('running');

      child.kill('SIGKILL');
      await exited;
      // The orphaned backend finishes its ANALYZE once the table is free, finds its client gone and exits.
      await blocker.query('COMMIT');
      await expect
        .poll(async () => (await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name LIKE 'pgvector-exporter job analyze%'")).rows[0].n, { timeout: 30_000, interval: 100 })
        .toBe(0);
      expect((await lastRun())?.status).toBe('running');

      const next = sidecar();
      await next.start();
      await next.stop();
      const row = await lastRun();
      expect(row?.status).toBe('failed');
      expect(row?.message).toMatch(/^interrupted: /);
    } finally {
      child.kill('SIGKILL');
      await blocker.end().catch(() => undefined);
    }
  });
});
