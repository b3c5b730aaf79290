import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { onCleanup } from './cleanup.js';

/** The repository's sql/migrations, found from bench/ (source) and dist-bench/bench/ (compiled) alike. */
const MIGRATIONS = fileURLToPath(new URL(import.meta.url.includes('/dist-bench/') ? '../../sql/migrations/' : '../sql/migrations/', import.meta.url));

export const BENCH_DATABASE = 'rag_bench';
/** Each exporter logs in as its own role, so pg_stat_statements.userid separates their database time. */
export const OUR_ROLE = 'bench_pgve';
/** A second instance of this exporter at its default poll intervals, for the as-deployed comparison. */
export const OUR_DEFAULTS_ROLE = 'bench_pgve_defaults';
/** A third instance with only the collectors that cover what the peer's defaults cover, every 1 s. */
export const OUR_OVERLAP_ROLE = 'bench_pgve_overlap';
export const PEER_ROLE = 'bench_peer';

export interface BenchDatabase {
  cluster: LocalCluster;
  url(user?: string): string;
  /** A superuser client on the bench database (reconnected by callers after a restart). */
  connect(applicationName?: string): Promise<pg.Client>;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
}

export async function startDatabase(): Promise<BenchDatabase> {
  const cluster = await LocalCluster.start({
    settings: { 'pg_stat_statements.max': '10000', shared_buffers: "'256MB'", max_wal_size: "'4GB'", checkpoint_timeout: "'30min'" },
  });
  onCleanup('PostgreSQL cluster', () => cluster.remove());
  const db: BenchDatabase = {
    cluster,
    url: (user = 'postgres') => cluster.url(BENCH_DATABASE, user),
    async connect(applicationName = 'bench') {
      const client = new pg.Client({ connectionString: cluster.url(BENCH_DATABASE), application_name: applicationName });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async query(sql, params) {
      const client = await db.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
  };
  const admin = new pg.Client({ connectionString: cluster.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${BENCH_DATABASE}`);
  } finally {
    await admin.end();
  }
  const client = await db.connect('bench-migrate');
  try {
    await migrate(client, loadMigrations(MIGRATIONS));
    await createRoles(client);
  } finally {
    await client.end();
  }
  return db;
}

/**
 * Our exporter gets the project's least-privilege role (pgvector_exporter: pg_monitor plus reads);
 * the peer gets pg_monitor, which is what postgres_exporter's documentation asks for.
 */
async function createRoles(client: pg.Client): Promise<void> {
  await client.query(`CREATE ROLE ${OUR_ROLE} LOGIN IN ROLE pgvector_exporter`);
  await client.query(`CREATE ROLE ${OUR_DEFAULTS_ROLE} LOGIN IN ROLE pgvector_exporter`);
  await client.query(`CREATE ROLE ${OUR_OVERLAP_ROLE} LOGIN IN ROLE pgvector_exporter`);
  await client.query(`CREATE ROLE ${PEER_ROLE} LOGIN IN ROLE pg_monitor`);
}

/**
 * Another migrated database in the same cluster (same roles), for scenarios that compare two databases
 * side by side; the returned handle points at it.
 */
export async function addMigratedDatabase(db: BenchDatabase, name: string): Promise<BenchDatabase> {
  const admin = new pg.Client({ connectionString: db.cluster.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const other: BenchDatabase = {
    cluster: db.cluster,
    url: (user = 'postgres') => db.cluster.url(name, user),
    async connect(applicationName = 'bench') {
      const client = new pg.Client({ connectionString: db.cluster.url(name), application_name: applicationName });
      client.on('error', () => undefined);
      await client.connect();
      return client;
    },
    async query(sql, params) {
      const client = await other.connect();
      try {
        return (await client.query(sql, params)).rows;
      } finally {
        await client.end();
      }
    },
  };
  const client = await other.connect('bench-migrate');
  try {
    await migrate(client, loadMigrations(MIGRATIONS));
  } finally {
    await client.end();
  }
  return other;
}

/** Versions for the report's machine section. */
export async function serverVersions(db: BenchDatabase): Promise<{ postgres: string; pgvector: string }> {
  const [row] = await db.query<{ postgres: string; pgvector: string }>(
    "SELECT current_setting('server_version') AS postgres, (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector",
  );
  return row!;
}
