import { hostname } from 'node:os';
import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError } from '../db/errors.js';
import { createPool } from '../db/pool.js';
import type { Logger } from '../log.js';
import { createJobs, enabledJobNames, jobTimeouts } from './index.js';
import { failOrphanedRuns, jobHistory } from './maintenance-log.js';
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

/**
 * How often the metrics re-read maintenance_log: last success/run are those of the job on this database,
 * by whichever replica ran it, so a sidecar that keeps losing the lock does not look stale.
 */
const HISTORY_REFRESH_MS = 60_000;

export class JobService {
  readonly runner: JobRunner;
  private readonly pool: pg.Pool;
  private readonly metrics: JobMetrics;
  private scheduler?: Scheduler;
  private historyTimer?: NodeJS.Timeout;
  private readonly host: string;

  constructor(private readonly options: JobServiceOptions) {
    const { config, connection, log } = options;
    this.pool = createPool(
      connection,
      { applicationName: JOBS_APPLICATION_NAME, max: 2, connectTimeoutMs: config.database.connect_timeout, statementTimeoutMs: 30_000 },
      log,
    );
    this.metrics = new JobMetrics(options.registry);
    this.host = config.instance_name ?? hostname();
    this.runner = new JobRunner({
      jobs: createJobs(config),
      timeouts: jobTimeouts(config),
      connection,
      pool: this.pool,
      host: this.host,
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
    await this.refreshHistory(names, true);
    this.historyTimer = setInterval(() => void this.refreshHistory(names, false), HISTORY_REFRESH_MS);
    this.historyTimer.unref();
    this.scheduler = new Scheduler(
      names.map((job) => ({ job, schedule: config.jobs[job].schedule, timezone: config.jobs[job].timezone })),
      this.runner,
      log.child({ component: 'scheduler' }),
      this.metrics,
    );
    this.scheduler.start();
  }

  async stop(graceMs = 1000): Promise<void> {
    clearInterval(this.historyTimer);
    if (this.scheduler) await this.scheduler.stop(graceMs);
    else await this.runner.shutdown(graceMs);
    await this.pool.end().catch(() => undefined);
  }

  /** A restart must not reset "last success" to never; nor may another replica's runs go unseen. */
  private async refreshHistory(names: ReturnType<typeof enabledJobNames>, atStart: boolean): Promise<void> {
    // Every sidecar that looks closes the runs a killed process left `running` (a standby refuses the UPDATE).
    try {
      const closed = await failOrphanedRuns(this.pool, this.host);
      if (closed.length) this.options.log.warn({ jobs: closed }, 'closed runs whose process is gone as failed (interrupted)');
    } catch (err) {
      this.options.log.debug({ error: describeDatabaseError(err) }, 'cannot close interrupted runs');
    }
    try {
      this.metrics.applyHistory(names, await jobHistory(this.pool));
    } catch (err) {
      const fields = { error: describeDatabaseError(err) };
      if (atStart) this.options.log.warn(fields, 'cannot read maintenance_log yet; job timestamps start at 0 and are read again every minute');
      else this.options.log.debug(fields, 'cannot read maintenance_log');
    }
  }
}
