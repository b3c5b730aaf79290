import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { FatalError } from '../errors.js';
import { splitSqlScript } from './sql-script.js';

/** sql/ sits two levels above both src/db/ and dist/db/. */
export const SQL_DIR = fileURLToPath(new URL('../../sql/', import.meta.url));
export const MIGRATIONS_DIR = `${SQL_DIR}migrations/`;

/** Serialises concurrent `migrate` runs (several sidecars starting at once). */
export const MIGRATE_LOCK_KEY = 'pgvector-exporter:migrate';

export interface Migration {
  version: string;
  name: string;
  file: string;
  sql: string;
  checksum: string;
}

export interface MigrationResult {
  applied: string[];
  alreadyApplied: number;
  /** Files applied earlier whose content has changed since: reported, never re-run. */
  changed: string[];
  notices: string[];
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((file) => /^\d{3,}_[\w-]+\.sql$/.test(file))
    .sort()
    .map((file) => {
      const sql = readFileSync(`${dir}${file}`, 'utf8');
      const [version, ...rest] = file.replace(/\.sql$/, '').split('_');
      return { version: version!, name: rest.join('_'), file, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Applies every migration not yet recorded in schema_migrations, each in its own transaction.
 * A failing file is rolled back whole and the error names the file, line and statement.
 */
export async function migrate(client: pg.Client, migrations = loadMigrations()): Promise<MigrationResult> {
  const notices: string[] = [];
  const onNotice = (msg: { message?: string }) => notices.push(msg.message ?? String(msg));
  client.on('notice', onNotice);
  try {
    await assertPgvectorAvailable(client);
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [MIGRATE_LOCK_KEY]);
    try {
      await ensureMigrationsTable(client);
      const { rows } = await client.query<{ version: string; checksum: string }>('SELECT version, checksum FROM schema_migrations');
      const done = new Map(rows.map((r) => [r.version, r.checksum]));
      const result: MigrationResult = { applied: [], alreadyApplied: 0, changed: [], notices };
      for (const migration of migrations) {
        const checksum = done.get(migration.version);
        if (checksum !== undefined) {
          result.alreadyApplied += 1;
          if (checksum !== migration.checksum) result.changed.push(migration.file);
          continue;
        }
        await applyOne(client, migration);
        result.applied.push(migration.file);
      }
      return result;
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [MIGRATE_LOCK_KEY]).catch(() => undefined);
    }
  } finally {
    client.off('notice', onNotice);
  }
}

/**
 * Finishes the online conversion of an unpartitioned query log (migration 007): moves the old rows
 * into the partitioned tables, `batchRows` per transaction, newest first, until none is left. Safe to
 * interrupt and to run again (the log-retention job also carries it on). Returns the rows moved.
 */
export async function convertQueryLog(client: pg.Client, batchRows = 10_000, onBatch?: (moved: number) => void): Promise<number> {
  const { rows } = await client.query<{ pending: boolean }>(
    "SELECT to_regproc('query_log_convert_step') IS NOT NULL AND (to_regclass('query_performance_log_unpartitioned') IS NOT NULL OR to_regclass('query_performance_archive_unpartitioned') IS NOT NULL) AS pending",
  );
  if (!rows[0]!.pending) return 0;
  let total = 0;
  for (;;) {
    const moved = Number((await client.query<{ moved: string }>('SELECT query_log_convert_step($1::int) AS moved', [batchRows])).rows[0]!.moved);
    if (moved <= 0) return total;
    total += moved;
    onBatch?.(total);
  }
}

/** The runner's own bookkeeping table (the migrations do not create it). */
export async function ensureMigrationsTable(client: pg.Client): Promise<void> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version text PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())`);
}

export async function assertPgvectorAvailable(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ default_version: string | null }>(
    "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'",
  );
  if (rows.length === 0) {
    throw new FatalError(
      'the pgvector extension ("vector") is not installed on this PostgreSQL server; install it (e.g. scripts/setup-system.sh, or the postgresql-NN-pgvector package) and run migrate again',
    );
  }
}

async function applyOne(client: pg.Client, migration: Migration): Promise<void> {
  await client.query('BEGIN');
  try {
    for (const statement of splitSqlScript(migration.sql)) {
      try {
        await client.query(statement.text);
      } catch (err) {
        const message = (err as Error).message;
        throw new FatalError(
          `migration ${migration.file} failed at line ${statement.line}: ${message}\n  statement: ${abbreviate(statement.text)}`,
        );
      }
    }
    await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
      migration.version,
      migration.name,
      migration.checksum,
    ]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}

function abbreviate(sql: string): string {
  const oneLine = sql.replace(/\s+/g, ' ');
  return oneLine.length > 200 ? `${oneLine.slice(0, 197)}...` : oneLine;
}
