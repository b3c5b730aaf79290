import type pg from 'pg';
import type { JobName } from './index.js';
import type { ConnectionSettings } from '../db/connection.js';
import type { Logger } from '../log.js';

/**
 * The contract every maintenance job implements. A job first plans (reads the catalog, decides, and
 * lists the exact statements or commands it would run) and only then, unless this is a dry run,
 * executes the plan. plan() must not change anything: `jobs run --dry-run` calls nothing else.
 * The runner owns everything around a job: the advisory lock, timeouts, maintenance_log, metrics.
 */
export interface Job {
  readonly name: JobName;
  plan(ctx: JobContext): Promise<JobPlan>;
}

export interface JobContext {
  /**
   * The job's own session, outside any transaction (VACUUM and REINDEX CONCURRENTLY refuse to run in
   * one), with the job's lock_timeout and statement_timeout set. It also holds the job's advisory lock.
   */
  client: pg.Client;
  /** For jobs that run client programs (pg_dump): host, port, user, database, password. */
  connection: ConnectionSettings;
  /** --force: run even when the job's own check says it is not needed. */
  force: boolean;
  log: Logger;
  /** Aborted when the exporter shuts down: long jobs stop between steps, child processes are killed. */
  signal: AbortSignal;
  /** Step-by-step progress (batches, tables) for logs and tests. */
  progress?: (event: JobProgress) => void;
}

export interface JobProgress {
  step: string;
  startedAt: Date;
  finishedAt: Date;
  rows?: number;
}

export interface JobPlan {
  /** false: the job checked and found nothing to do; recorded as a success with `reason`. */
  needed: boolean;
  /** Why it runs or why not, in words for maintenance_log, the CLI and the logs. */
  reason: string;
  /** What execute() would run, one statement or command per entry (printed by --dry-run). */
  statements: string[];
  /** What the plan found (counts, thresholds), stored in maintenance_log.details. */
  details: Record<string, unknown>;
  execute(): Promise<JobOutcome>;
}

export interface JobOutcome {
  message: string;
  /** What the run did, job-specific (the backup's size_bytes, the tables analysed): into maintenance_log.details. */
  details: Record<string, unknown>;
}

/** A job that did part of its work and then failed: the details say what was done. */
export class JobFailure extends Error {
  constructor(
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'JobFailure';
  }
}
