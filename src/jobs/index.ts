import type pg from 'pg';
import type { ConnectionSettings } from '../db/connection.js';
import { createPool, type PoolOptions } from '../db/pool.js';
import type { Logger } from '../log.js';
import { analyzeJob } from './analyze.js';
import { backupJob, type BackupOptions } from './backup.js';
import type { Job } from './job.js';
import { logRetentionJob, type LogRetentionOptions } from './log-retention.js';
import type { MaintenanceWindow } from './maintenance-window.js';
import { reindexVectorJob, type ReindexVectorOptions } from './reindex-vector.js';
import { JobRunner, type JobTimeouts, type RunObserver } from './runner.js';
import { vacuumAnalyzeJob } from './vacuum-analyze.js';

/** What the jobs need to know, as plain options (commands/assembly.ts builds them from the config). */
export interface JobsOptions {
  /** Schema of the RAG tables. */
  schema: string;
  /** Tables that analyze and vacuum-analyze maintain. */
  managedTables: readonly string[];
  reindexVector: Omit<ReindexVectorOptions, 'schema'>;
  logRetention: Omit<LogRetentionOptions, 'schema'>;
  backup: BackupOptions;
}

/**
 * The one list of maintenance jobs: name -> factory. Adding a job is a new file, one line here, its
 * schedule defaults in config/schema.ts (the compiler asks for them), a test and a runbook.
 */
export const JOB_FACTORIES = {
  analyze: (o: JobsOptions) => analyzeJob({ schema: o.schema, tables: o.managedTables }),
  'vacuum-analyze': (o: JobsOptions) => vacuumAnalyzeJob({ schema: o.schema, tables: o.managedTables }),
  'reindex-vector': (o: JobsOptions) => reindexVectorJob({ schema: o.schema, ...o.reindexVector }),
  'log-retention': (o: JobsOptions) => logRetentionJob({ schema: o.schema, ...o.logRetention }),
  backup: (o: JobsOptions) => backupJob(o.backup),
} satisfies Record<string, (options: JobsOptions) => Job>;

export type JobName = keyof typeof JOB_FACTORIES;

/** Every job's name, in JOB_FACTORIES order. */
export const JOB_NAMES = Object.keys(JOB_FACTORIES) as JobName[];

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(JOB_FACTORIES, name);
}

/** Every job, in JOB_NAMES order. */
export function createJobs(options: JobsOptions): Job[] {
  return JOB_NAMES.map((name) => JOB_FACTORIES[name](options));
}

/** Everything a JobRunner is built from, the same for serve and `jobs run`. */
export interface JobRunnerSettings {
  jobs: JobsOptions;
  timeouts: Record<JobName, JobTimeouts>;
  window: MaintenanceWindow;
  /** This sidecar's name in maintenance_log.host and in the jobs' application_name. */
  host: string;
  connectTimeoutMs: number;
  /** The runner's own small pool, for maintenance_log and lock look-ups (never the collectors' connections). */
  pool: PoolOptions;
}

export interface CreatedJobRunner {
  runner: JobRunner;
  pool: pg.Pool;
  /** Ends the runner's pool (after runner.shutdown() or a finished run). */
  close(): Promise<void>;
}

/** The one way a JobRunner is built: serve (through JobService), `jobs run` and the tests. */
export function createJobRunner(
  settings: JobRunnerSettings,
  connection: ConnectionSettings,
  log: Logger,
  extra: { observer?: RunObserver; logResults?: boolean } = {},
): CreatedJobRunner {
  const pool = createPool(connection, settings.pool, log);
  const runner = new JobRunner({
    jobs: createJobs(settings.jobs),
    timeouts: (job) => settings.timeouts[job],
    connection,
    pool,
    host: settings.host,
    window: settings.window,
    log,
    connectTimeoutMs: settings.connectTimeoutMs,
    ...extra,
  });
  return { runner, pool, close: () => pool.end().catch(() => undefined) };
}
