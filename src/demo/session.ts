import { DEFAULT_MANAGED_TABLES } from '../config/schema.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { resolveConnection, type ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError } from '../db/errors.js';
import { preferredOrFreePort } from '../free-port.js';
import { migrate } from '../db/migrate.js';
import { createPool, withClient } from '../db/pool.js';
import { FatalError } from '../errors.js';
import { sleep } from '../sleep.js';
import type { Logger } from '../log.js';
import { seedCorpus } from './corpus.js';
import { ensureServerBinaries, startEmbeddedCluster } from './embedded-database.js';
import { scrapeAddress, startExporterProcess } from './exporter-process.js';
import type { ManagedProcess } from './managed-process.js';
import { startPrometheusStack, type PrometheusStack } from './prometheus-stack.js';
import { progressReporter } from './progress.js';
import { fetchAlerts, readScrape, summaryLines, type Scrape } from './summary.js';
import type { Teardown } from './teardown.js';
import { Workload } from './workload.js';

/**
 * One run of `pgvector-exporter demo`: database (embedded or given), migrations, corpus, workload,
 * exporter, Prometheus and Alertmanager, then a live summary until the signal aborts. Everything it
 * creates is registered in the Teardown the moment it exists, so any stop (Ctrl-C during seeding,
 * a helper failing to start, --duration running out) undoes exactly what was done.
 */
export interface DemoOptions {
  /** A database to seed and drive instead of the embedded one. */
  databaseUrl?: string;
  /** Seed and drive a database whose tables already hold data. */
  force: boolean;
  documents: number;
  rate: number;
  /** Share of workload operations padded into slow ones. */
  slowShare: number;
  /** log_level of the exporter child (its log file is in the demo's temp directory). */
  exporterLogLevel: string;
  /** Exporter listen address; default 127.0.0.1:9188 or, when taken, a free port. */
  listenAddress?: string;
  prometheus: boolean;
  summaryIntervalMs: number;
  /** application_name of the workload's connections: the exporter's app.application_name. */
  applicationName: string;
  /** How many connections the workload may open: it plays the service's pool. */
  appPoolMax: number;
}

export interface DemoIo {
  out: (line: string) => void;
  warn: (line: string) => void;
  stdout: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  log: Logger;
}

const DEMO_DATABASE = 'rag_demo';
/**
 * The managed tables (the RAG tables plus the log the workload writes) but the archive and
 * maintenance_log, which a previous demo or sidecar may have filled: data in any of them means
 * someone's database.
 */
const TABLES_THAT_MUST_BE_EMPTY = DEFAULT_MANAGED_TABLES.filter((t) => t !== 'query_performance_archive' && t !== 'maintenance_log');

export async function runDemo(options: DemoOptions, teardown: Teardown, signal: AbortSignal, io: DemoIo): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pgvector-exporter-demo-'));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  teardown.add('temp directory', async () => removeDir(), removeDir);

  const databaseUrl = await prepareDatabase(options, teardown, io);
  const connection = resolveConnection(databaseUrl, {});
  signal.throwIfAborted();
  await migrateAndCheck(connection, options, io);
  signal.throwIfAborted();
  await seed(connection, options, signal, io);

  const workload = startWorkload(connection, options, teardown, io);
  const exporterAddress = options.listenAddress ?? `127.0.0.1:${await preferredOrFreePort(9188)}`;
  const track = (proc: ManagedProcess) => teardown.add(proc.name, () => proc.stop(), () => proc.killNow());
  io.out(`starting the exporter (pgvector-exporter serve) on ${exporterAddress}`);
  const exporter = await startExporterProcess({
    dir,
    databaseUrl,
    listenAddress: exporterAddress,
    applicationName: options.applicationName,
    logLevel: options.exporterLogLevel,
    signal,
    onStarted: track,
  });
  const stack: PrometheusStack = options.prometheus
    ? await startPrometheusStack({
        dir,
        exporterAddress: scrapeAddress(exporterAddress),
        prometheusPort: await preferredOrFreePort(9090),
        alertmanagerPort: await preferredOrFreePort(9093),
        signal,
        onStarted: track,
        warn: io.warn,
      })
    : { rules: [] };
  printUrls(io, exporter.url, stack, dir, connection);
  await liveSummary(exporter.url, stack.prometheusUrl, workload, options.summaryIntervalMs, signal, io);
}

/** The URL of the database to drive: the user's, or a fresh embedded cluster's (trust auth, no password). */
async function prepareDatabase(options: DemoOptions, teardown: Teardown, io: DemoIo): Promise<string> {
  if (options.databaseUrl) return options.databaseUrl;
  ensureServerBinaries(io.out);
  io.out('starting a throwaway PostgreSQL cluster with pgvector');
  const cluster = await startEmbeddedCluster();
  teardown.add('PostgreSQL cluster', async () => cluster.remove(), () => cluster.remove());
  const admin = new pg.Client({ connectionString: cluster.url() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${DEMO_DATABASE}`);
  } finally {
    await admin.end();
  }
  io.out(`PostgreSQL listening on 127.0.0.1:${cluster.port}, data in ${cluster.dir}`);
  return cluster.url(DEMO_DATABASE);
}

async function migrateAndCheck(connection: ConnectionSettings, options: DemoOptions, io: DemoIo): Promise<void> {
  await withClient(connection, 'pgvector-exporter-demo', async (client) => {
    if (options.databaseUrl) {
      const occupied = await tablesWithData(client);
      if (occupied.length > 0 && !options.force) {
        throw new FatalError(
          `demo: ${connection.description} already holds data (${occupied.join(', ')}); the demo writes a synthetic corpus and query log into it. Use an empty database, or add --force to seed and drive this one anyway`,
        );
      }
      if (occupied.length > 0) io.warn(`--force: seeding ${connection.description} although ${occupied.join(', ')} hold data`);
    }
    const result = await migrate(client);
    io.out(result.applied.length ? `migrated: applied ${result.applied.join(', ')}` : 'schema is up to date');
  }).catch((err: unknown) => {
    if (err instanceof FatalError) throw err;
    throw new FatalError(`demo: ${describeDatabaseError(err, connection.description)}`);
  });
}

async function tablesWithData(client: pg.Client): Promise<string[]> {
  const occupied: string[] = [];
  for (const table of TABLES_THAT_MUST_BE_EMPTY) {
    const { rows } = await client.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [table]);
    if (!rows[0]!.present) continue;
    const data = await client.query(`SELECT 1 FROM ${table} LIMIT 1`);
    if (data.rowCount) occupied.push(table);
  }
  return occupied;
}

async function seed(connection: ConnectionSettings, options: DemoOptions, signal: AbortSignal, io: DemoIo): Promise<void> {
  io.out(`seeding ${options.documents} chunks (3,072-dimension embeddings, metadata, concepts, source lines)`);
  const pool = createPool(connection, { applicationName: 'pgvector-exporter-demo-seed', max: 2, connectTimeoutMs: 10_000 }, io.log);
  const progress = progressReporter(io.stdout);
  try {
    const result = await seedCorpus(pool, {
      documents: options.documents,
      chunkPrefix: options.force ? `demo-${Date.now().toString(36)}` : 'demo',
      onProgress: (p) => progress.update(p),
      signal,
    });
    progress.finish();
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    io.out(
      `seeded ${result.documents} chunks in ${seconds(result.loadMs)} s` +
        (result.indexRebuilt ? `, built idx_embeddings_vector in ${seconds(result.indexMs)} s` : ' (index kept in place)') +
        `, analyzed in ${seconds(result.analyzeMs)} s`,
    );
  } catch (err) {
    progress.finish();
    if (signal.aborted) throw err;
    throw new FatalError(`demo: seeding failed: ${describeDatabaseError(err, connection.description)}`);
  } finally {
    await pool.end().catch(() => undefined);
  }
}

function startWorkload(connection: ConnectionSettings, options: DemoOptions, teardown: Teardown, io: DemoIo): Workload {
  const pool = createPool(connection, { applicationName: options.applicationName, max: options.appPoolMax, connectTimeoutMs: 10_000 }, io.log);
  let reported = 0;
  const workload = new Workload(pool, {
    rate: options.rate,
    slowShare: options.slowShare,
    maxInFlight: options.appPoolMax,
    chunkPrefix: `live-${Date.now().toString(36)}`,
    onError: (type, error) => {
      // The first few errors in full, then only the count in the summary.
      if (++reported <= 3) io.warn(`workload ${type} failed: ${error.message}`);
    },
  });
  teardown.add('workload', async () => {
    await workload.stop();
    await pool.end();
  });
  workload.start();
  io.out(
    `workload: ${options.rate} operations/s (60 % vector search, 30 % hybrid search, 10 % insert, ${options.slowShare * 100} % slow) as "${options.applicationName}"`,
  );
  return workload;
}

function printUrls(io: DemoIo, exporterUrl: string, stack: PrometheusStack, dir: string, connection: ConnectionSettings): void {
  io.out('');
  io.out(`  metrics       ${exporterUrl}/metrics   (health ${exporterUrl}/healthz, ready ${exporterUrl}/readyz)`);
  if (stack.prometheusUrl) io.out(`  prometheus    ${stack.prometheusUrl}/alerts   (${stack.rules.length} rule file(s) from alerts/)`);
  if (stack.alertmanagerUrl) io.out(`  alertmanager  ${stack.alertmanagerUrl}`);
  io.out(`  database      ${connection.description}`);
  io.out(`  logs          ${dir}/*.log`);
  io.out('  Ctrl-C stops everything and removes the temporary data.');
  io.out('');
}

async function liveSummary(exporterUrl: string, prometheusUrl: string | undefined, workload: Workload, intervalMs: number, signal: AbortSignal, io: DemoIo): Promise<void> {
  const started = Date.now();
  let previous: Scrape | undefined;
  while (!signal.aborted) {
    await sleep(intervalMs, signal);
    if (signal.aborted) break;
    try {
      const response = await fetch(`${exporterUrl}/metrics`, { signal: AbortSignal.timeout(5000) });
      const scrape = readScrape(await response.text());
      const alerts = prometheusUrl ? await fetchAlerts(prometheusUrl) : undefined;
      const elapsed = Math.round((Date.now() - started) / 1000);
      const stamp = `[${String(Math.floor(elapsed / 60)).padStart(2, '0')}:${String(elapsed % 60).padStart(2, '0')}]`;
      summaryLines(scrape, previous, alerts, workload.stats).forEach((line, i) => io.out(`${i === 0 ? stamp : ' '.repeat(stamp.length)} ${line}`));
      previous = scrape;
    } catch (err) {
      io.warn(`summary: cannot read ${exporterUrl}/metrics: ${(err as Error).message}`);
    }
  }
}
