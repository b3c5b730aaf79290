import pg from 'pg';
import { migrate } from '../../src/db/migrate.js';
import { LocalCluster, type LocalClusterOptions } from '../../src/local-cluster/cluster.js';
import { seedDocuments } from './seed.js';

/**
 * A PostgreSQL cluster of a test's own (the end-to-end tests stop and start it) with the RAG database
 * `rag` migrated and seeded, a small pool on it, and the search service's log workload: fast queries of
 * every type written to query_performance_log every half second, as a live service would.
 */
export interface RagCluster {
  cluster: LocalCluster;
  /** Two connections on `rag`, for the test's own statements (errors while the server is down are ignored). */
  db: pg.Pool;
  /** Stops the workload, ends the pool and removes the cluster. */
  remove(): Promise<void>;
}

export interface RagClusterOptions {
  settings?: LocalClusterOptions['settings'];
  /** Documents with embeddings. */
  documents: number;
  /** Documents without embeddings (embedding completeness below 1). */
  unembedded?: number;
  /** CHECKPOINT after seeding: pg_basebackup (a standby) otherwise waits for a spread checkpoint. */
  checkpoint?: boolean;
}

export async function startRagCluster(options: RagClusterOptions): Promise<RagCluster> {
  const cluster = await LocalCluster.start(options.settings ? { settings: options.settings } : {});
  try {
    const admin = new pg.Client({ connectionString: cluster.url() });
    await admin.connect();
    try {
      await admin.query('CREATE DATABASE rag');
    } finally {
      await admin.end();
    }
    const client = new pg.Client({ connectionString: cluster.url('rag') });
    await client.connect();
    try {
      await migrate(client);
      await seedDocuments(client, { count: options.documents, prefix: 'doc', withEmbeddings: true });
      if (options.unembedded) await seedDocuments(client, { count: options.unembedded, prefix: 'unembedded' });
      await client.query('ANALYZE');
      if (options.checkpoint) await client.query('CHECKPOINT');
    } finally {
      await client.end();
    }
  } catch (err) {
    cluster.remove();
    throw err;
  }
  const db = new pg.Pool({ connectionString: cluster.url('rag'), max: 2 });
  db.on('error', () => undefined);
  const workload = setInterval(() => {
    db.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, rows_returned)
       SELECT t, 20 + random() * 60, 10 FROM unnest(ARRAY['vector_search', 'hybrid_search', 'insert']) t, generate_series(1, 5)`,
    ).catch(() => undefined);
  }, 500);
  return {
    cluster,
    db,
    async remove() {
      clearInterval(workload);
      await db.end().catch(() => undefined);
      cluster.remove();
    },
  };
}
