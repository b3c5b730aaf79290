import { hostname } from 'node:os';
import { COLLECTOR_NAMES, type CollectorName, type CollectorsOptions } from '../collectors/index.js';
import { DEFAULT_EXPECTED_INDEXES, type Config } from '../config/schema.js';
import type { CustomCollectorDefinition } from '../custom/definition.js';
import type { CustomCollectorSources } from '../custom/load.js';
import type { PoolOptions } from '../db/pool.js';
import type { HttpOptions } from '../http/server.js';
import { JOB_NAMES, type JobName, type JobRunnerSettings } from '../jobs/index.js';
import type { CollectorSchedule } from '../poller/poller.js';
import type { ProbeTargetsOptions } from './probe-targets.js';

/**
 * The one place where the validated Config (YAML's snake_case keys, durations in ms) becomes the plain
 * camelCase options of the rooms below: collectors, poller, jobs, pools, HTTP. Nothing under
 * collectors/, jobs/, http/, poller/ or metrics/ reads the config; a new setting is a field in
 * config/schema.ts and one line here.
 */

/** application_name of the exporter's own pool (collectors): what dashboards and pg_stat_activity show. */
export const EXPORTER_APPLICATION_NAME = 'pgvector-exporter';
/** application_name of the one-connection pools of the databases auto-discovery watches. */
export const DATABASES_APPLICATION_NAME = 'pgvector-exporter databases';
/**
 * How long a watched database's connection stays open idle. Short: DROP DATABASE waits up to 5 s for
 * other sessions to leave, then refuses; a connection that is closed within a second never makes a
 * user's DROP DATABASE fail, and the budget's shares turn over quickly.
 */
export const DATABASES_IDLE_TIMEOUT_MS = 1000;
/** application_name of the jobs' bookkeeping pool (maintenance_log, lock look-ups); each job's own session names itself. */
export const JOBS_APPLICATION_NAME = 'pgvector-exporter jobs';
/** application_name of the pools of /probe targets (and `${PROBE_APPLICATION_NAME} pg_up` of their pg_up connection). */
export const PROBE_APPLICATION_NAME = 'pgvector-exporter probe';
/** application_name of `migrate`'s one session. */
export const MIGRATE_APPLICATION_NAME = 'pgvector-exporter-migrate';

export function collectorsOptions(config: Config): CollectorsOptions {
  return {
    schema: config.schema,
    managedTables: config.managed_tables,
    expectedIndexes: config.expected_indexes,
    // The default names the RAG schema's index: expected only where that schema is present.
    expectedIndexesNeedRagSchema: sameList(config.expected_indexes, DEFAULT_EXPECTED_INDEXES),
    connections: {
      topApplications: config.connections.top_applications,
      appApplicationName: config.app.application_name,
      appPoolMax: config.app.pool_max,
    },
    queryLog: {
      buckets: config.query_log.buckets,
      queryTypes: config.query_log.query_types,
      lookback: config.query_log.lookback,
      batchRows: config.query_log.batch_rows,
    },
    embeddings: { dimensions: config.embeddings.dimensions, models: config.embeddings.models, exactIntervalMs: config.embeddings.exact_interval },
    // The same log table as query_log, read the same way: the same batch.
    embeddingFailures: { gracePeriodMs: config.embedding_failures.grace_period, batchRows: config.query_log.batch_rows },
    recall: {
      sampleSize: config.recall.sample_size,
      topK: config.recall.top_k,
      efSearch: config.recall.ef_search,
      probes: config.recall.probes,
      indexes: config.recall.indexes.map((entry) => ({
        pattern: entry.index,
        topK: entry.top_k ?? config.recall.top_k,
        sampleSize: entry.sample_size ?? config.recall.sample_size,
        efSearch: entry.ef_search ?? config.recall.ef_search,
        probes: entry.probes ?? config.recall.probes,
      })),
      dimensions: config.embeddings.dimensions,
    },
    statements: {
      topN: config.statements.top_n,
      queryText: config.statements.query_text,
      ...(config.auto_discover.enabled ? { databases: { include: config.auto_discover.include_databases, exclude: config.auto_discover.exclude_databases } } : {}),
    },
  };
}

export function enabledCollectorNames(config: Config): CollectorName[] {
  return COLLECTOR_NAMES.filter((name) => config.collectors[name].enabled);
}

export function collectorSchedules(config: Config): Record<CollectorName, CollectorSchedule> {
  return Object.fromEntries(
    COLLECTOR_NAMES.map((name) => [name, { intervalMs: config.collectors[name].interval, timeoutMs: config.collectors[name].timeout }]),
  ) as Record<CollectorName, CollectorSchedule>;
}

export function exporterPoolOptions(config: Config): PoolOptions {
  return { applicationName: EXPORTER_APPLICATION_NAME, max: config.database.pool_max, connectTimeoutMs: config.database.connect_timeout };
}

/** Auto-discovery's settings (README, Watching every database); undefined when it is off. */
export function autoDiscoverOptions(config: Config) {
  const a = config.auto_discover;
  if (!a.enabled) return undefined;
  return {
    include: a.include_databases,
    exclude: a.exclude_databases,
    intervalMs: a.interval,
    maxConnections: a.max_connections,
    pool: { applicationName: DATABASES_APPLICATION_NAME, max: 1, connectTimeoutMs: config.database.connect_timeout, idleTimeoutMs: DATABASES_IDLE_TIMEOUT_MS } satisfies PoolOptions,
  };
}

/** pg_up's own one-connection pool, so a pool of collectors waiting on locks never reads as "server down". */
export function pgUpPoolOptions(config: Config): PoolOptions {
  return { applicationName: `${EXPORTER_APPLICATION_NAME} pg_up`, max: 1, connectTimeoutMs: config.database.connect_timeout };
}

/** The /probe targets' settings (the collectors, built per target, are the composition root's). */
export function probeTargetsSettings(config: Config): Omit<ProbeTargetsOptions, 'collectors' | 'log' | 'observer'> {
  const connectTimeoutMs = config.probe.connect_timeout;
  return {
    authModules: Object.fromEntries(
      Object.entries(config.auth_modules ?? {}).map(([name, m]) => [name, { user: m.username, password: m.password, options: m.options }]),
    ),
    maxTargets: config.probe.max_targets,
    idleTimeoutMs: config.probe.idle_timeout,
    defaultScrapeTimeoutMs: config.probe.scrape_timeout,
    pool: { applicationName: PROBE_APPLICATION_NAME, max: config.probe.pool_max, connectTimeoutMs },
    ownPool: { applicationName: `${PROBE_APPLICATION_NAME} pg_up`, max: 1, connectTimeoutMs },
    maxBackoffMs: config.database.reconnect_max_backoff,
  };
}

/** The same for serve and `jobs run`: the runner, its jobs, their timeouts, the window and its pool. */
export function jobRunnerSettings(config: Config): JobRunnerSettings {
  const reindex = config.jobs['reindex-vector'];
  const retention = config.jobs['log-retention'];
  const backup = config.jobs.backup;
  return {
    jobs: {
      schema: config.schema,
      managedTables: config.managed_tables,
      reindexVector: {
        index: reindex.index,
        changeThreshold: reindex.change_threshold,
        listsGrowthFactor: reindex.lists_growth_factor,
        maintenanceWorkMem: reindex.maintenance_work_mem,
        // ALTER INDEX SET (lists) takes ACCESS EXCLUSIVE on the index: never wait longer than 5 s for it.
        alterLockTimeoutMs: Math.min(reindex.lock_timeout || 5000, 5000),
      },
      logRetention: {
        retentionMs: retention.retention,
        archiveRetentionMs: retention.archive_retention,
        batchSize: retention.batch_size,
        batchPauseMs: retention.batch_pause,
        partitionsAhead: retention.partitions_ahead,
      },
      backup: {
        directory: backup.directory,
        retentionMs: backup.retention,
        pgDump: backup.pg_dump,
        pgRestore: backup.pg_restore,
        lockTimeoutMs: backup.lock_timeout,
        timeoutMs: backup.statement_timeout,
      },
    },
    timeouts: Object.fromEntries(
      JOB_NAMES.map((job) => [job, { lockTimeoutMs: config.jobs[job].lock_timeout, statementTimeoutMs: config.jobs[job].statement_timeout }]),
    ) as JobRunnerSettings['timeouts'],
    window: config.jobs.window,
    host: config.instance_name ?? hostname(),
    connectTimeoutMs: config.database.connect_timeout,
    pool: { applicationName: JOBS_APPLICATION_NAME, max: 2, connectTimeoutMs: config.database.connect_timeout, statementTimeoutMs: 30_000 },
  };
}

export function jobSchedules(config: Config): Record<JobName, { enabled: boolean; schedule: string; timezone: string }> {
  return Object.fromEntries(
    JOB_NAMES.map((job) => [job, { enabled: config.jobs[job].enabled, schedule: config.jobs[job].schedule, timezone: config.jobs[job].timezone }]),
  ) as Record<JobName, { enabled: boolean; schedule: string; timezone: string }>;
}

/** The HTTP server's settings from the config (the routes' callbacks are the composition root's). */
export function httpSettings(config: Config): Pick<HttpOptions, 'listenAddress' | 'telemetryPath' | 'probesWithoutAuth'> {
  return { listenAddress: config.web.listen_address, telemetryPath: config.web.telemetry_path, probesWithoutAuth: config.web.probes_without_auth };
}

export function customCollectorsSources(config: Config): CustomCollectorSources {
  return { files: config.custom_collectors.files, queryPath: config.extend.query_path };
}

/** A custom collector's schedule: its file's settings, else custom_collectors' defaults; never faster than its file allows. */
export function customCollectorSchedule(definition: CustomCollectorDefinition, config: Config): CollectorSchedule {
  return {
    intervalMs: Math.max(definition.intervalMs ?? config.custom_collectors.interval, definition.minIntervalMs ?? 0),
    timeoutMs: definition.timeoutMs ?? config.custom_collectors.timeout,
    seriesLimit: definition.seriesLimit ?? config.custom_collectors.series_limit,
  };
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
