import pg from 'pg';
import { LocalCluster, findPostgresBinDir } from '../../src/local-cluster/cluster.js';

/**
 * The PostgreSQL server behind the tests, in order of preference:
 * TEST_DATABASE_URL; a throwaway local cluster from the installed binaries; testcontainers (Docker).
 */
export interface TestServer {
  /** A superuser URL to the server's maintenance database. */
  adminUrl: string;
  kind: 'TEST_DATABASE_URL' | 'local cluster' | 'testcontainers';
  /** Present for a local cluster: lets tests stop/start the server or make a standby. */
  cluster?: LocalCluster;
  stop(): Promise<void>;
}

export const PASSWORD_CHECKED_ROLE = 'password_checked';

export async function startTestServer(): Promise<TestServer> {
  if (process.env.TEST_DATABASE_URL) {
    return { adminUrl: process.env.TEST_DATABASE_URL, kind: 'TEST_DATABASE_URL', stop: async () => undefined };
  }
  if (findPostgresBinDir()) {
    // Members of password_checked must give a password over TCP, so wrong-password handling can be tested.
    const cluster = await LocalCluster.start({ hba: [`host all +${PASSWORD_CHECKED_ROLE} 127.0.0.1/32 scram-sha-256`] });
    return { adminUrl: cluster.url(), kind: 'local cluster', cluster, stop: async () => cluster.remove() };
  }
  return startContainer();
}

async function startContainer(): Promise<TestServer> {
  // Only on machines with a Docker engine; imported lazily so the package is not needed elsewhere.
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await new PostgreSqlContainer('pgvector/pgvector:pg17')
    .withCommand(['postgres', '-c', 'shared_preload_libraries=pg_stat_statements'])
    .start();
  return { adminUrl: container.getConnectionUri(), kind: 'testcontainers', stop: async () => void (await container.stop()) };
}

export async function serverVersions(adminUrl: string): Promise<{ server: string; pgvector: string }> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ server: string; pgvector: string | null }>(
      "SELECT current_setting('server_version') AS server, (SELECT default_version FROM pg_available_extensions WHERE name = 'vector') AS pgvector",
    );
    return { server: rows[0]!.server, pgvector: rows[0]!.pgvector ?? 'not installed' };
  } finally {
    await client.end();
  }
}
