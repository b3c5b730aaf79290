import { PassThrough } from 'node:stream';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Collector } from '../src/collectors/collector.js';
import { connectivityCollector } from '../src/collectors/connectivity.js';
import { databaseCollector } from '../src/collectors/database.js';
import { tablesCollector } from '../src/collectors/tables.js';
import { DEFAULT_MANAGED_TABLES } from '../src/config/schema.js';
import { createLogger } from '../src/log.js';
import { registerSelfMetrics } from '../src/metrics/self-metrics.js';
import { Poller } from '../src/poller/poller.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { sampleValue } from './helpers/exporter.js';
import { insertDocuments } from './helpers/jobs.js';

/**
 * Tables locked ACCESS EXCLUSIVE by another session (a migration): pg_up keeps telling the truth on its own
 * connection, the collectors that need the locked tables give up fast, the others keep their connections,
 * and the tables collector loses only the locked tables' sizes.
 */
const reading = (name: string, table: string): Collector => ({
  name,
  families: [{ name: `test_${name}`, help: `${name} test gauge`, type: 'gauge', labelNames: [] }],
  async collect({ query }) {
    const [row] = await query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
    return [{ family: `test_${name}`, value: row!.n }];
  },
});

describe('a pool under locked tables', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  let ownPool: pg.Pool;
  let blocker: pg.Client;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertDocuments(db.pool, 5);
    pool = new pg.Pool({ connectionString: db.url, max: 2, connectionTimeoutMillis: 2000, application_name: 'pgvector-exporter' });
    ownPool = new pg.Pool({ connectionString: db.url, max: 1, connectionTimeoutMillis: 2000, application_name: 'pgvector-exporter pg_up' });
    blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
  });
  afterAll(async () => {
    await blocker?.end().catch(() => undefined);
    await Promise.all([pool?.end(), ownPool?.end()]);
    await db?.drop();
  });

  function poller(collectors: Collector[], timeoutMs: number, logs?: PassThrough) {
    const registry = new Registry();
    const p = new Poller({
      collectors,
      schedule: () => ({ intervalMs: 60_000, timeoutMs }),
      pool,
      ownPool,
      log: createLogger('info', logs ?? new PassThrough()),
      observer: registerSelfMetrics(registry),
      maxBackoffMs: 1000,
    });
    return { p, self: () => registry.metrics() };
  }

  it('keeps pg_up 1, the unrelated collectors and the unlocked tables while three RAG tables are locked', async () => {
    await blocker.query('BEGIN');
    await blocker.query('LOCK TABLE chunk_embeddings, framework_documents, key_concepts IN ACCESS EXCLUSIVE MODE');
    try {
      const { p, self } = poller(
        [
          reading('embeddings_count', 'chunk_embeddings'),
          reading('documents_count', 'framework_documents'),
          reading('concepts_count', 'key_concepts'),
          connectivityCollector(),
          databaseCollector(),
          tablesCollector({ schema: 'public', tables: DEFAULT_MANAGED_TABLES }),
        ],
        8000,
      );
      for (let round = 0; round < 3; round++) {
        await p.pollAll();
        const text = p.render();
        expect(sampleValue(text, 'pg_up'), `round ${round}`).toBe(1);
        const metrics = await self();
        expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: 'database' })).toBe(1);
        expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: 'tables' })).toBe(1);
        expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: 'embeddings_count' })).toBe(0);
        // The locked table keeps its statistics, loses only its sizes; the others keep everything.
        const locked = { datname: db.name, schemaname: 'public', relname: 'chunk_embeddings' };
        const free = { datname: db.name, schemaname: 'public', relname: 'source_lines' };
        expect(sampleValue(text, 'pg_stat_user_tables_n_live_tup', locked)).toBeDefined();
        expect(sampleValue(text, 'pg_table_size_bytes', locked)).toBeUndefined();
        expect(sampleValue(text, 'pg_table_size_bytes', free)).toBeDefined();
      }
    } finally {
      await blocker.query('ROLLBACK');
    }
    const { p } = poller([tablesCollector({ schema: 'public', tables: DEFAULT_MANAGED_TABLES })], 8000);
    await p.pollAll();
    expect(sampleValue(p.render(), 'pg_table_size_bytes', { datname: db.name, schemaname: 'public', relname: 'chunk_embeddings' })).toBeGreaterThan(0);
  });

  it('says "no free connection in the exporter\'s pool", naming the holders, when a collector waits for a slot', async () => {
    let logs = '';
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => (logs += d.toString()));
    const sleeper = (name: string): Collector => ({
      name,
      families: [{ name: `test_${name}`, help: 'sleeps', type: 'gauge', labelNames: [] }],
      async collect({ query }) {
        await query('SELECT pg_sleep(4)');
        return [{ family: `test_${name}`, value: 1 }];
      },
    });
    const { p, self } = poller([sleeper('sleeper_a'), sleeper('sleeper_b'), databaseCollector()], 6000, sink);
    await p.pollAll();
    expect(sampleValue(await self(), 'pgvector_exporter_collector_success', { collector: 'database' })).toBe(0);
    expect(logs).toMatch(/"collector":"database"[^\n]*no free connection in the exporter's pool within its connect timeout \(database\.pool_max 2, held by: sleeper_a, sleeper_b\)/);
    expect(logs).not.toMatch(/"collector":"database"[^\n]*timeout exceeded when trying to connect/);
  });
});
