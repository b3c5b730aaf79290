import { hostname } from 'node:os';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError } from '../db/errors.js';
import { createPool } from '../db/pool.js';
import type { Logger } from '../log.js';
import { createJobs, enabledJobNames, jobTimeouts } from './index.js';
import { jobHistory } from './maintenance-log.js';
import { JobMetrics } from './metrics.js';
import { JobRunner } from './runner.js';
import { Scheduler } from './scheduler.js';

/**
 * The maintenance side of `serve`: its own small pool (jobs never take the collectors' connections),
 * the runner, the metrics on the exporter's registry, and the scheduler. The metric families are
 * registered whether or not the scheduler runs; series appear only for the jobs it schedules.
 */
export interface JobServiceOptions {
  config: Config;
  connection: ConnectionSettings;
  log: Logger;
  registry: Registry;
}

export const JOBS_APPLICATION_NAME = 'pgvector-exporter jobs';

/** How often the metrics retry reading maintenance_log's history when the database was down at start. */
const HISTORY_RETRY_MS = 30_000;

export class JobService {
  readonly runner: JobRunner;
  private readonly pool: pg.Pool;
  private readonly metrics: JobMetrics;
  private scheduler?: Scheduler;
  private historyRetry?: NodeJS.Timeout;

  constructor(private readonly options: JobServiceOptions) {
    const { config, connection, log } = options;
    this.pool = createPool(
      connection,
      { applicationName: JOBS_APPLICATION_NAME, max: 2, connectTimeoutMs: config.database.connect_timeout, statementTimeoutMs: 30_000 },
      log,
    );
    this.metrics = new JobMetrics(options.registry);
    this.runner = new JobRunner({
      jobs: createJobs(config),
      timeouts: jobTimeouts(config),
      connection,
      pool: this.pool,
      host: config.instance_name ?? hostname(),
      window: config.jobs.window,
      log: log.child({ component: 'jobs' }),
      connectTimeoutMs: config.database.connect_timeout,
      observer: this.metrics,
    });
  }

  /** Seeds every enabled job's series (last success from maintenance_log) and starts firing them. */
  async start(): Promise<void> {
    const { config, log } = this.options;
    const names = enabledJobNames(config);
    this.metrics.seed(names);
    await this.seedHistory(names);
    this.scheduler = new Scheduler(
      names.map((job) => ({ job, schedule: config.jobs[job].schedule, timezone: config.jobs[job].timezone })),
      this.runner,
      log.child({ component: 'scheduler' }),
      this.metrics,
    );
    this.scheduler.start();
  }

  async stop(graceMs = 1000): Promise<void> {
    clearTimeout(this.historyRetry);
    if (this.scheduler) await this.scheduler.stop(graceMs);
    else await this.runner.shutdown(graceMs);
    await this.pool.end().catch(() => undefined);
  }

  /** A restart must not reset "last success" to never; with the database down, retry in the background. */
  private async seedHistory(names: ReturnType<typeof enabledJobNames>): Promise<void> {
    try {
      this.metrics.applyHistory(names, await jobHistory(this.pool));
    } catch (err) {
      this.options.log.warn({ error: describeDatabaseError(err) }, 'cannot read maintenance_log history yet; job timestamps start at 0');
      this.historyRetry = setTimeout(() => void this.seedHistory(names), HISTORY_RETRY_MS);
      this.historyRetry.unref();
    }
  }
}
