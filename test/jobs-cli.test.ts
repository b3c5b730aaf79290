import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOB_NAMES } from '../src/jobs/index.js';
import { runCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { insertDocuments } from './helpers/jobs.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'jobs-cli-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configFile(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('bad job config is refused at start with exit code 2, naming it', () => {
  it('an invalid cron expression', async () => {
    const file = configFile('bad-cron.yaml', 'jobs:\n  analyze:\n    schedule: "61 2 * * *"\n');
    const result = await runCli(['jobs', 'list', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`${file}:3: jobs.analyze.schedule: "61 2 * * *" is not a valid cron expression`);
  });

  it('an unknown job name', async () => {
    const file = configFile('bad-job.yaml', 'jobs:\n  analyse:\n    enabled: true\n');
    const result = await runCli(['jobs', 'list', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}:2: unknown job "analyse" (known jobs: ${JOB_NAMES.join(', ')})`);
  });

  it('serve refuses them the same way, before listening', async () => {
    const file = configFile('bad-serve.yaml', 'jobs:\n  reindex-vector:\n    schedule: "every sunday"\n');
    const result = await runCli(['serve', '--config', file, '--web.listen-address', '127.0.0.1:0']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}:3: jobs.reindex-vector.schedule: "every sunday" is not a valid cron expression`);
  });

  it('an unknown job on the command line', async () => {
    const result = await runCli(['jobs', 'run', 'defrag', '--database-url', 'postgresql://127.0.0.1:1/x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('unknown job "defrag"');
  });
});

describe('jobs list and jobs run', () => {
  let db: TestDatabase;
  let backups: string;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertDocuments(db.pool, 30);
    await db.pool.query("INSERT INTO query_performance_log (query_type, duration_ms, ts) SELECT 'vector_search', 1, now() - interval '90 days' FROM generate_series(1, 25)");
    backups = join(dir, 'backups');
  });
  afterAll(async () => db.drop());

  /** Everything a job could change: row counts of every table, and every index's OID and file. */
  async function snapshot(): Promise<string> {
    const tables = await db.pool.query<{ relname: string }>("SELECT relname FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY relname");
    const counts: Record<string, number> = {};
    for (const { relname } of tables.rows) counts[relname] = Number((await db.pool.query(`SELECT count(*) AS n FROM "${relname}"`)).rows[0].n);
    const indexes = await db.pool.query(
      "SELECT relname, oid::int8 AS oid, relfilenode::int8 AS file FROM pg_class WHERE relkind = 'i' AND relnamespace = 'public'::regnamespace ORDER BY relname",
    );
    return JSON.stringify({ counts, indexes: indexes.rows });
  }

  it('--dry-run prints the statements of every job and leaves the database unchanged', async () => {
    const before = await snapshot();
    for (const job of JOB_NAMES) {
      const args = ['jobs', 'run', job, '--dry-run', '--database-url', db.url, ...(job === 'reindex-vector' ? ['--force'] : [])];
      const result = await runCli(args, { BACKUP_DIRECTORY: backups });
      expect(result.code, `${job}: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain(`${job}: dry run, nothing changed`);
      expect(result.stdout).toContain('would run:');
    }
    const analyze = await runCli(['jobs', 'run', 'analyze', '--dry-run', '--database-url', db.url]);
    expect(analyze.stdout).toContain('\n  ANALYZE "public"."chunk_embeddings"\n');
    const reindex = await runCli(['jobs', 'run', 'reindex-vector', '--dry-run', '--force', '--database-url', db.url]);
    expect(reindex.stdout).toContain('\n  REINDEX INDEX CONCURRENTLY "public"."idx_embeddings_vector"\n');
    const retention = await runCli(['jobs', 'run', 'log-retention', '--dry-run', '--database-url', db.url]);
    expect(retention.stdout).toContain("25 row(s) in the log's DEFAULT partition to place");
    expect(await snapshot()).toBe(before);
    expect(existsSync(backups) ? readdirSync(backups) : []).toEqual([]);
  });

  it('runs a job: exit 0 on success, recorded, then listed with its last result', async () => {
    const run = await runCli(['jobs', 'run', 'log-retention', '--database-url', db.url], { INSTANCE_NAME: 'cli-test' });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/log-retention: success in [\d.]+s: archived [12] day\(s\) of the log/);
    expect(run.stdout).toMatch(/recorded in maintenance_log \(id \d+\)/);

    const list = await runCli(['jobs', 'list', '--database-url', db.url]);
    expect(list.code).toBe(0);
    const lines = list.stdout.split('\n');
    expect(lines[0]).toMatch(/^job\s+enabled\s+schedule\s+timezone\s+next run\s+last result$/);
    expect(lines.find((l) => l.startsWith('log-retention'))).toMatch(/yes\s+30 1 \* \* \*\s+UTC\s+\d{4}-\d\d-\d\dT01:30:00\.000Z\s+success .* on cli-test: archived [12] day/);
    expect(lines.find((l) => l.startsWith('backup'))).toMatch(/^backup\s+no\s+.*\s-\s+never ran$/);
  });

  it('exits non-zero when the job is skipped (another instance holds its lock) or fails', async () => {
    const holder = new pg.Client({ connectionString: db.url });
    await holder.connect();
    try {
      await holder.query("SELECT pg_advisory_lock(hashtext('pgvector-exporter:job:analyze'))");
      const skipped = await runCli(['jobs', 'run', 'analyze', '--database-url', db.url]);
      expect(skipped.code).toBe(3);
      expect(skipped.stdout).toContain("analyze: skipped in");
      expect(skipped.stdout).toContain("another instance holds the job's advisory lock");
    } finally {
      await holder.end();
    }
    const failed = await runCli(['jobs', 'run', 'analyze', '--database-url', 'postgresql://postgres:pw@127.0.0.1:1/nowhere']);
    expect(failed.code).toBe(1);
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    expect(failed.stderr).toContain('analyze: failure');
    expect(failed.stderr).toContain('cannot connect');
    expect(failed.stderr).not.toContain(':pw@');
  });
});

describe('jobs list without a database', () => {
  it('still prints the schedules, marks the last results unknown, and exits 1 with one line on stderr', async () => {
    const result = await runCli(['jobs', 'list', '--database-url', 'postgresql://postgres:s3cret@127.0.0.1:1/nowhere']);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^analyze\s+yes\s+0 2 \* \* \*\s+UTC\s+\S+\s+unknown$/m);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('cannot reach PostgreSQL');
    expect(result.stderr).not.toContain('s3cret');
  });
});
