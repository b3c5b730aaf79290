import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { convertQueryLog, loadMigrations, migrate } from '../src/db/migrate.js';
import type { JobContext } from '../src/jobs/job.js';
import { logRetentionJob } from '../src/jobs/log-retention.js';
import { createLogger } from '../src/log.js';
import { batchedLogRetentionJob } from './batched-log-retention.js';
import type { BenchDatabase } from './database.js';
import { percentile } from './stats.js';

/**
 * The query log at the specification's volumes (issue 15): retention of 2,000,000 expired rows on the
 * partitioned log beside the previous batched design, and the online conversion of an unpartitioned
 * log while a writer inserts. Each side gets its own database in the same cluster, one after the other.
 */

const MIGRATIONS = fileURLToPath(new URL(import.meta.url.includes('/dist-bench/') ? '../../sql/migrations/' : '../sql/migrations/', import.meta.url));

export interface Writer {
  latenciesMs: number[];
  failures: number;
  ids: string[];
  stop(): Promise<void>;
}

/** `perSecond` single-row inserts a second, paced, on `connections` sessions: the search service. */
export async function startWriter(url: string, perSecond: number, connections = 2, keepIds = false): Promise<Writer> {
  const clients = await Promise.all(
    Array.from({ length: connections }, async () => {
      const c = new pg.Client({ connectionString: url, application_name: 'bench-search-service' });
      c.on('error', () => undefined);
      await c.connect();
      return c;
    }),
  );
  const w: Writer = { latenciesMs: [], failures: 0, ids: [], stop: async () => undefined };
  let stopped = false;
  const interval = (1000 * connections) / perSecond;
  const loops = clients.map(async (c) => {
    let next = performance.now();
    while (!stopped) {
      const t0 = performance.now();
      try {
        const { rows } = await c.query<{ id: string }>(
          "INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) VALUES ('vector_search', 42, 10) RETURNING id",
        );
        if (keepIds) w.ids.push(rows[0]!.id);
        w.latenciesMs.push(performance.now() - t0);
      } catch {
        w.failures += 1;
      }
      next += interval;
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  });
  w.stop = async () => {
    stopped = true;
    await Promise.all(loops);
    await Promise.all(clients.map((c) => c.end()));
  };
  return w;
}

export async function createDatabase(db: BenchDatabase, name: string, through?: string): Promise<string> {
  const admin = new pg.Client({ connectionString: db.cluster.url('postgres') });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = db.cluster.url(name);
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  await migrate(c, loadMigrations(MIGRATIONS).filter((m) => through === undefined || m.version <= through));
  await c.end();
  return url;
}

async function walBytes<T>(client: pg.Client, fn: () => Promise<T>): Promise<{ result: T; walBytes: number; seconds: number }> {
  const start = (await client.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
  const t0 = performance.now();
  const result = await fn();
  const seconds = (performance.now() - t0) / 1000;
  const { rows } = await client.query<{ bytes: string }>('SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint AS bytes', [start]);
  return { result, walBytes: Number(rows[0]!.bytes), seconds };
}

function jobContext(client: pg.Client): JobContext {
  return { client, connection: undefined as never, force: true, log: createLogger('silent'), signal: new AbortController().signal };
}

export interface RetentionSide {
  design: string;
  rows: number;
  seconds: number;
  walBytes: number;
  leftInLog: number;
  inArchive: number;
  insertP99BeforeMs: number;
  insertP99DuringMs: number;
  insertMaxDuringMs: number;
  insertFailures: number;
}

/** 2,000,000 rows 35-40 days old, then log-retention (30 days), with a writer at `writerRate` rows/s. */
export async function retentionScenario(db: BenchDatabase, rows: number, writerRate: number, log: (line: string) => void): Promise<RetentionSide[]> {
  const sides: RetentionSide[] = [];
  for (const design of ['partitioned (007)', 'batched (previous)'] as const) {
    const partitioned = design.startsWith('partitioned');
    const url = await createDatabase(db, partitioned ? 'retention_partitioned' : 'retention_batched', partitioned ? undefined : '006');
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    if (partitioned) {
      // Written 35-40 days ago, the rows landed in their days' partitions then.
      await client.query(`SELECT query_log_add_partition('query_performance_log', d::date)
        FROM generate_series((now() - interval '41 days') AT TIME ZONE 'UTC', (now() - interval '34 days') AT TIME ZONE 'UTC', interval '1 day') d`);
    }
    log(`  retention, ${design}: writing ${rows} rows 35-40 days old`);
    await client.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, rows_returned, ts)
       SELECT (ARRAY['vector_search','hybrid_search','insert'])[1 + g % 3], (g % 1000)::float8, 10,
              now() - interval '35 days' - (g::float8 / $1) * interval '5 days'
         FROM generate_series(1, $1::int) g`,
      [rows],
    );
    await client.query('CHECKPOINT');
    await client.query('VACUUM ANALYZE query_performance_log');
    await client.query("SET lock_timeout = '1s'");
    const writer = await startWriter(url, writerRate);
    await new Promise((r) => setTimeout(r, 10_000));
    const before = writer.latenciesMs.length;
    const job = partitioned
      ? logRetentionJob({ schema: 'public', retentionMs: 30 * 86_400_000, archiveRetentionMs: 365 * 86_400_000, batchSize: 5000, batchPauseMs: 50, partitionsAhead: 7 })
      : batchedLogRetentionJob({ schema: 'public', retentionMs: 30 * 86_400_000, archiveRetentionMs: 365 * 86_400_000, batchSize: 5000, batchPauseMs: 50 });
    log(`  retention, ${design}: running log-retention`);
    const measured = await walBytes(client, async () => (await job.plan(jobContext(client))).execute());
    const during = writer.latenciesMs.slice(before);
    await writer.stop();
    const { rows: counts } = await client.query<{ left: string; archived: string }>(
      "SELECT (SELECT count(*) FROM query_performance_log WHERE ts < now() - interval '30 days') AS left, (SELECT count(*) FROM query_performance_archive) AS archived",
    );
    sides.push({
      design,
      rows,
      seconds: measured.seconds,
      walBytes: measured.walBytes,
      leftInLog: Number(counts[0]!.left),
      inArchive: Number(counts[0]!.archived),
      insertP99BeforeMs: percentile(writer.latenciesMs.slice(0, before), 99),
      insertP99DuringMs: percentile(during, 99),
      insertMaxDuringMs: Math.max(...during),
      insertFailures: writer.failures,
    });
    log(`  retention, ${design}: ${measured.seconds.toFixed(1)} s, ${(measured.walBytes / 2 ** 20).toFixed(1)} MiB WAL, ${counts[0]!.left} left, ${counts[0]!.archived} archived`);
    await client.end();
  }
  return sides;
}

export interface ConversionFigures {
  rows: number;
  writerRate: number;
  seconds: number;
  walBytes: number;
  inserts: number;
  insertFailures: number;
  insertP99Ms: number;
  insertMaxMs: number;
  missing: number;
  rowsAfter: number;
}

/** An unpartitioned log of `rows` rows over 30 days; migrate (007) + conversion while a writer inserts. */
export async function conversionScenario(db: BenchDatabase, rows: number, writerRate: number, log: (line: string) => void): Promise<ConversionFigures> {
  const url = await createDatabase(db, 'conversion', '006');
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  await client.connect();
  log(`  conversion: writing ${rows} rows over 30 days into the unpartitioned log`);
  await client.query(
    `INSERT INTO query_performance_log (query_type, duration_ms, rows_returned, ts)
     SELECT (ARRAY['vector_search','hybrid_search','embedding_generation'])[1 + g % 3], (g % 1000)::float8, 10,
            now() - interval '30 days' + (g::float8 / $1) * interval '30 days'
       FROM generate_series(1, $1::int) g`,
    [rows],
  );
  await client.query('CHECKPOINT');
  const writer = await startWriter(url, writerRate, 2, true);
  await new Promise((r) => setTimeout(r, 5000));
  log('  conversion: migrate (007) and convert, writer running');
  const measured = await walBytes(client, async () => {
    await migrate(client, loadMigrations(MIGRATIONS));
    return convertQueryLog(client, 10_000);
  });
  await new Promise((r) => setTimeout(r, 3000));
  await writer.stop();
  const { rows: check } = await client.query<{ missing: string; total: string }>(
    'SELECT (SELECT count(*) FROM unnest($1::bigint[]) w(id) WHERE NOT EXISTS (SELECT 1 FROM query_performance_log l WHERE l.id = w.id)) AS missing, (SELECT count(*) FROM query_performance_log) AS total',
    [writer.ids],
  );
  await client.end();
  const figures: ConversionFigures = {
    rows,
    writerRate,
    seconds: measured.seconds,
    walBytes: measured.walBytes,
    inserts: writer.latenciesMs.length,
    insertFailures: writer.failures,
    insertP99Ms: percentile(writer.latenciesMs, 99),
    insertMaxMs: Math.max(...writer.latenciesMs),
    missing: Number(check[0]!.missing),
    rowsAfter: Number(check[0]!.total),
  };
  log(`  conversion: ${measured.seconds.toFixed(1)} s, longest insert ${figures.insertMaxMs.toFixed(0)} ms, ${figures.insertFailures} failed, ${figures.missing} missing`);
  return figures;
}

export interface ThroughputFigures {
  seconds: number;
  rowsPerSecond: number;
  rowsWritten: number;
  lagSamples: number[];
  lagP99Seconds: number;
  lagMaxSeconds: number;
  histogramCount: number;
  rejected: number;
  catchUpSeconds: number;
  dbMsPerMinute: number;
  topStatements: { statement: string; calls: number; msPerMinute: number }[];
}

/**
 * `serve` at its default intervals (query_log every 15 s) while `rowsPerSecond` rows are written to the
 * partitioned log for `seconds`: the lag the exporter publishes (sampled every 5 s), whether its
 * histogram counts exactly the rows written, and its database time per minute (pg_stat_statements,
 * its own role).
 */
export async function throughputScenario(
  db: BenchDatabase,
  exporterUrl: string,
  role: string,
  seconds: number,
  rowsPerSecond: number,
  log: (line: string) => void,
  /** The database written to and watched; the bench database by default. */
  database?: string,
): Promise<ThroughputFigures> {
  const scrape = async () => {
    const text = await (await fetch(`${exporterUrl}/metrics`)).text();
    let count = 0;
    let rejected = 0;
    let lag = NaN;
    for (const line of text.split('\n')) {
      if (line.startsWith('rag_query_duration_seconds_count')) count += Number(line.split(' ').at(-1));
      else if (line.startsWith('rag_query_log_rows_total{result="rejected"}')) rejected = Number(line.split(' ').at(-1));
      else if (line.startsWith('rag_query_log_lag_seconds')) lag = Number(line.split(' ').at(-1));
    }
    return { count, rejected, lag };
  };
  const writer = database ? new pg.Client({ connectionString: db.cluster.url(database), application_name: 'bench-throughput-writer' }) : await db.connect('bench-throughput-writer');
  if (database) {
    writer.on('error', () => undefined);
    await writer.connect();
  }
  const start = await scrape();
  await writer.query('SELECT pg_stat_statements_reset()');
  const t0 = performance.now();
  const elapsed = () => (performance.now() - t0) / 1000;
  let written = 0;
  const lagSamples: number[] = [];
  let nextSample = 5;
  let nextLog = 60;
  const perTick = rowsPerSecond / 10;
  while (elapsed() < seconds) {
    const tick = performance.now();
    // Paced by the clock, not by the tick: a tick whose insert ran late writes the rows it owes (up to
    // five ticks' worth), so a busy machine still writes rowsPerSecond on average.
    const due = Math.min(5 * perTick, Math.max(perTick, Math.floor(rowsPerSecond * elapsed()) + perTick - written));
    await writer.query(
      `INSERT INTO query_performance_log (query_type, duration_ms, rows_returned)
       SELECT (ARRAY['vector_search','hybrid_search','insert'])[1 + g % 3], random() * 900, 10 FROM generate_series(1, $1::int) g`,
      [due],
    );
    written += due;
    if (elapsed() >= nextSample) {
      nextSample += 5;
      lagSamples.push((await scrape()).lag);
    }
    if (elapsed() >= nextLog) {
      nextLog += 60;
      log(`  throughput ${Math.round(elapsed())} s: ${written} rows, lag ${lagSamples.at(-1)?.toFixed(1)} s`);
    }
    const wait = 100 - (performance.now() - tick);
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  }
  const wroteFor = elapsed();
  const { rows: dbTime } = await writer.query<{ ms: number }>(
    `SELECT coalesce(sum(s.total_exec_time), 0)::float8 AS ms FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
      WHERE r.rolname = $1 AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND s.toplevel`,
    [role],
  );
  // Where the time goes: the exporter's five most expensive statements (normalized by pg_stat_statements: no
  // literals), nested ones (inside system_health_check(), whose time they are part of) marked as such.
  const { rows: top } = await writer.query<{ statement: string; calls: string; ms: number }>(
    `SELECT CASE WHEN s.toplevel THEN '' ELSE '(nested) ' END || left(regexp_replace(s.query, '\\s+', ' ', 'g'), 90) AS statement,
            s.calls::text AS calls, s.total_exec_time::float8 AS ms
       FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
      WHERE r.rolname = $1 AND s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY s.total_exec_time DESC LIMIT 5`,
    [role],
  );
  // Caught up: the histogram has every row (bounded wait: two poll intervals and more).
  const c0 = performance.now();
  let last = await scrape();
  while (last.count + last.rejected - start.count - start.rejected < written && performance.now() - c0 < 60_000) {
    await new Promise((r) => setTimeout(r, 1000));
    last = await scrape();
  }
  await writer.end();
  const sorted = lagSamples.filter(Number.isFinite);
  return {
    seconds: wroteFor,
    rowsPerSecond,
    rowsWritten: written,
    lagSamples,
    lagP99Seconds: percentile(sorted, 99),
    lagMaxSeconds: Math.max(...sorted),
    histogramCount: last.count - start.count,
    rejected: last.rejected - start.rejected,
    catchUpSeconds: (performance.now() - c0) / 1000,
    dbMsPerMinute: (dbTime[0]!.ms / wroteFor) * 60,
    topStatements: top.map((t) => ({ statement: t.statement, calls: Number(t.calls), msPerMinute: (t.ms / wroteFor) * 60 })),
  };
}
