import type { Registry } from 'prom-client';
import type { ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError } from '../db/errors.js';
import type { Logger } from '../log.js';
import { createJobRunner, JOB_NAMES, type CreatedJobRunner, type JobName, type JobRunnerSettings } from './index.js';
import { failOrphanedRuns, jobHistory } from './maintenance-log.js';
import { JobMetrics } from './metrics.js';
import type { JobRunner } from './runner.js';
import { Scheduler, type ScheduleSpec } from './scheduler.js';

/**
 * The maintenance side of `serve`: the runner (createJobRunner, as `jobs run` builds it, with its own
 * small pool: jobs never take the collectors' connections), the metrics on the exporter's registry,
 * and the scheduler. The metric families are registered whether or not the scheduler runs; series
 * appear only for the jobs it schedules.
 */
export interface JobServiceOptions {
  runner: JobRunnerSettings;
  /** Each job's schedule; jobs that are not enabled are neither scheduled nor seeded in the metrics. */
  schedules: Record<JobName, { enabled: boolean; schedule: string; timezone: string }>;
  connection: ConnectionSettings;
  log: Logger;
  registry: Registry;
}

/**
 * How often the metrics re-read maintenance_log: last success/run are those of the job on this database,
 * by whichever replica ran it, so a sidecar that keeps losing the lock does not look stale.
 */
const HISTORY_REFRESH_MS = 60_000;

export class JobService {
  readonly runner: JobRunner;
  private readonly created: CreatedJobRunner;
  private readonly metrics: JobMetrics;
  private scheduler?: Scheduler;
  private historyTimer?: NodeJS.Timeout;

  constructor(private readonly options: JobServiceOptions) {
    this.metrics = new JobMetrics(options.registry);
    this.created = createJobRunner(options.runner, options.connection, options.log.child({ component: 'jobs' }), { observer: this.metrics });
    this.runner = this.created.runner;
  }

  /** Seeds every enabled job's series (last success from maintenance_log) and starts firing them. */
  async start(): Promise<void> {
    const { schedules, log } = this.options;
    const names = JOB_NAMES.filter((job) => schedules[job].enabled);
    this.metrics.seed(names);
    await this.refreshHistory(names, true);
    this.historyTimer = setInterval(() => void this.refreshHistory(names, false), HISTORY_REFRESH_MS);
    this.historyTimer.unref();
    const specs: ScheduleSpec[] = names.map((job) => ({ job, schedule: schedules[job].schedule, timezone: schedules[job].timezone }));
    this.scheduler = new Scheduler(specs, this.runner, log.child({ component: 'scheduler' }), this.metrics);
    this.scheduler.start();
  }

  async stop(graceMs = 1000): Promise<void> {
    clearInterval(this.historyTimer);
    if (this.scheduler) await this.scheduler.stop(graceMs);
    else await this.runner.shutdown(graceMs);
    await this.created.close();
  }

  /** A restart must not reset "last success" to never; nor may another replica's runs go unseen. */
  private async refreshHistory(names: readonly JobName[], atStart: boolean): Promise<void> {
    // Every sidecar that looks closes the runs a killed process left `running` (a standby refuses the UPDATE).
    try {
      const closed = await failOrphanedRuns(this.created.pool, this.options.runner.host);
      if (closed.length) this.options.log.warn({ jobs: closed }, 'closed runs whose process is gone as failed (interrupted)');
    } catch (err) {
      this.options.log.debug({ error: describeDatabaseError(err) }, 'cannot close interrupted runs');
    }
    try {
      this.metrics.applyHistory(names, await jobHistory(this.created.pool));
    } catch (err) {
      const fields = { error: describeDatabaseError(err) };
      if (atStart) this.options.log.warn(fields, 'cannot read maintenance_log yet; job timestamps start at 0 and are read again every minute');
      else this.options.log.debug(fields, 'cannot read maintenance_log');
    }
  }
}
