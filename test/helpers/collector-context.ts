import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { isHistogramSample, type CollectContext, type Labels, type MetricFamily, type Sample } from '../../src/collectors/collector.js';
import { createLogger } from '../../src/log.js';
import { afterAll, beforeAll } from 'vitest';
import { createTestDatabase, type TestDatabase } from './database.js';

/**
 * A collect() context on one pg client, as the poller would hand it (silent log, empty pool stats), with
 * a deadline `timeoutMs` from now (the collector's timeout) and a signal aborted then.
 */
export function collectorContext(client: pg.Client | pg.Pool, timeoutMs = 60_000): CollectContext {
  return {
    query: async (sql, params) => (await client.query(sql, params)).rows,
    log: createLogger('silent'),
    poolStats: () => ({ total: 0, idle: 0, waiting: 0 }),
    deadline: Date.now() + timeoutMs,
    signal: AbortSignal.timeout(timeoutMs),
    reportFeature: () => undefined,
  };
}

/** collectorContext() that also appends every statement the collector runs to `statements`. */
export function recordingContext(client: pg.Client | pg.Pool, statements: string[], timeoutMs?: number): CollectContext {
  const ctx = collectorContext(client, timeoutMs);
  return { ...ctx, query: (sql, params) => (statements.push(sql), ctx.query(sql, params)) };
}

/** Connects a client to a URL; closes nothing (the caller ends it). */
export async function connect(url: string, applicationName = 'pgvector-exporter'): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url, application_name: applicationName });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * A login role that is only a member of pgvector_exporter (the least-privilege role of
 * sql/migrations/006_security.sql: pg_monitor plus SELECT on the RAG tables). Roles are cluster-wide,
 * so each test file makes its own and drops it.
 */
export async function exporterLogin(superuser: pg.Pool | pg.Client, databaseUrl: string) {
  const role = `exporter_${randomBytes(4).toString('hex')}`;
  await superuser.query(`CREATE ROLE ${role} LOGIN IN ROLE pgvector_exporter`);
  const url = new URL(databaseUrl);
  url.username = role;
  const client = await connect(url.toString());
  return {
    role,
    client,
    drop: async () => {
      await client.end().catch(() => undefined);
      await superuser.query(`DROP ROLE IF EXISTS ${role}`);
    },
  };
}

function matches(sample: Sample, labels: Labels): boolean {
  return Object.entries(labels).every(([k, v]) => (sample.labels ?? {})[k] === v);
}

/** The samples of one family whose labels include `labels`. */
export function samplesOf(samples: Sample[], family: string, labels: Labels = {}): Sample[] {
  return samples.filter((s) => s.family === family && matches(s, labels));
}

/** The value of the one gauge/counter sample of `family` matching `labels`; throws when not exactly one. */
export function valueOf(samples: Sample[], family: string, labels: Labels = {}): number {
  const found = samplesOf(samples, family, labels);
  if (found.length !== 1) throw new Error(`expected one ${family}${JSON.stringify(labels)}, found ${found.length}`);
  const sample = found[0]!;
  if (isHistogramSample(sample)) throw new Error(`${family} is a histogram`);
  return sample.value;
}

/** Waits until the server's cumulative statistics reflect this session's work (PG15 flushes lazily). */
export async function flushStats(client: pg.Client | pg.Pool): Promise<void> {
  await client.query('SELECT pg_stat_force_next_flush()');
}

/** Problems with samples that do not match their collector's declared families and label names (empty = none). */
export function undeclaredSamples(families: readonly MetricFamily[], samples: readonly Sample[]): string[] {
  const problems: string[] = [];
  for (const sample of samples) {
    const family = families.find((f) => f.name === sample.family);
    const labels = Object.keys(sample.labels ?? {}).sort().join(',');
    if (!family) problems.push(`undeclared family ${sample.family}`);
    else if (labels !== [...family.labelNames].sort().join(',')) problems.push(`${sample.family}: labels ${labels} != ${family.labelNames.join(',')}`);
  }
  return problems;
}

/**
 * A migrated database of the test file's own and one client on it (application_name pgvector-exporter),
 * opened before the file's tests and closed after them:
 *   let db: TestDatabase; let client: pg.Client;
 *   useDatabaseClient((opened) => ({ db, client } = opened));
 */
export function useDatabaseClient(onOpen: (opened: { db: TestDatabase; client: pg.Client }) => void): void {
  let opened: { db: TestDatabase; client: pg.Client } | undefined;
  beforeAll(async () => {
    const db = await createTestDatabase();
    opened = { db, client: await connect(db.url) };
    onOpen(opened);
  });
  afterAll(async () => {
    await opened?.client.end();
    await opened?.db.drop();
  });
}
