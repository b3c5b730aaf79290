import type pg from 'pg';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { jobRunnerSettings } from '../../src/commands/assembly.js';
import { resolveConnection } from '../../src/db/connection.js';
import { createJobRunner } from '../../src/jobs/index.js';
import type { JobRunner, RunObserver } from '../../src/jobs/runner.js';
import { createLogger, type Logger } from '../../src/log.js';

/** The default config, adjusted by the test. */
export function testConfig(adjust: (config: Config) => void = () => undefined): Config {
  const config = loadConfig({ env: {} });
  adjust(config);
  return config;
}

export interface TestRunner {
  runner: JobRunner;
  pool: pg.Pool;
  close(): Promise<void>;
}

/** A runner as serve and `jobs run` build it (createJobRunner), against the test database, as sidecar `host` (logging to `extra.log` if given). */
export function testRunner(url: string, config: Config, host = 'test-sidecar', extra: { observer?: RunObserver; log?: Logger } = {}): TestRunner {
  const connection = resolveConnection(url, {});
  const log = extra.log ?? createLogger(process.env.TEST_LOG_LEVEL === undefined ? 'silent' : (process.env.TEST_LOG_LEVEL as 'info'));
  const settings = jobRunnerSettings(config);
  const { runner, pool, close } = createJobRunner(
    { ...settings, host, connectTimeoutMs: 5000, pool: { ...settings.pool, applicationName: `test-jobs ${host}`, max: 3, connectTimeoutMs: 5000 } },
    connection,
    log,
    extra,
  );
  return { runner, pool, close };
}

/** A random 3,072-dimension vector in pgvector's text form. */
export function randomVector(dims = 3072): string {
  return `[${Array.from({ length: dims }, () => (Math.random() * 2 - 1).toFixed(4)).join(',')}]`;
}

/**
 * n documents with one random embedding each (generated server-side: no 3,072-value literals on the
 * wire). The session's table statistics are flushed, so pg_stat_user_tables shows the inserts at once.
 */
export async function insertDocuments(pool: pg.Pool, n: number, prefix = 'doc'): Promise<void> {
  await flushStats(
    pool,
    `WITH d AS (
       INSERT INTO framework_documents (chunk_id, source_file, section, title, content)
       SELECT $2 || '-' || g || '-' || md5(random()::text), 'guide.md', 'section', 'title ' || g, 'content ' || g
         FROM generate_series(1, $1::int) g
       RETURNING id)
     INSERT INTO chunk_embeddings (document_id, embedding)
     SELECT d.id, (SELECT array_agg(random() * 2 - 1)::vector(3072) FROM generate_series(1, 3072) WHERE d.id IS NOT NULL)
       FROM d`,
    [n, prefix],
  );
}

/** Makes the pg_stat_user_tables counters of this session's writes visible to others now. */
export async function flushStats(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query(sql, params);
    await client.query('SELECT pg_stat_force_next_flush()');
    await client.query('SELECT 1');
  } finally {
    client.release();
  }
}

export async function maintenanceRows(pool: pg.Pool, job: string): Promise<{ id: string; status: string; message: string; host: string; details: Record<string, unknown> }[]> {
  const { rows } = await pool.query('SELECT id, status, message, host, details FROM maintenance_log WHERE job = $1 ORDER BY id', [job]);
  return rows;
}
