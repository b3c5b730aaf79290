import cron, { type ScheduledTask } from 'node-cron';
import type { JobName } from './index.js';
import type { Logger } from '../log.js';
import type { JobMetrics } from './metrics.js';
import type { JobRunner } from './runner.js';

/**
 * Fires each enabled job on its cron expression (node-cron, in the job's time zone) through the runner.
 * A firing never waits for another job: each run is its own promise, so a long REINDEX does not delay
 * tonight's ANALYZE, and a run still going when its next slot comes is skipped by the runner (and
 * recorded), not silently dropped by node-cron (noOverlap stays off for that reason).
 */
export interface ScheduleSpec {
  job: JobName;
  schedule: string;
  timezone: string;
}

export class Scheduler {
  private readonly tasks = new Map<JobName, ScheduledTask>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly specs: ScheduleSpec[],
    private readonly runner: JobRunner,
    private readonly log: Logger,
    private readonly metrics?: JobMetrics,
  ) {}

  start(): void {
    for (const spec of this.specs) {
      const logger = this.log.child({ job: spec.job, component: 'node-cron' });
      const task = cron.createTask(spec.schedule, (context) => this.fire(spec.job, context.date), {
        name: `pgvector-exporter:${spec.job}`,
        timezone: spec.timezone,
        logger: {
          info: (m) => logger.debug(m),
          warn: (m) => logger.warn(m),
          error: (m) => logger.error(String(m)),
          debug: (m) => logger.debug(String(m)),
        },
      });
      this.tasks.set(spec.job, task);
      void task.start();
      this.metrics?.setNextRun(spec.job, this.nextRun(spec.job));
      this.log.info({ job: spec.job, schedule: spec.schedule, timezone: spec.timezone, next_run: this.nextRun(spec.job)?.toISOString() }, 'job scheduled');
    }
  }

  /** What a cron tick does; also how tests fire "the same slot" on two replicas at once. */
  fire(job: JobName, slot: Date): Promise<unknown> {
    const run = this.runner
      .run(job, { trigger: 'schedule', scheduledFor: slot })
      .catch((err: unknown) => this.log.error({ job, error: (err as Error).message }, 'scheduled run failed unexpectedly'))
      .finally(() => {
        this.inFlight.delete(run);
        this.metrics?.setNextRun(job, this.nextRun(job));
      });
    this.inFlight.add(run);
    return run;
  }

  nextRun(job: JobName): Date | null {
    const task = this.tasks.get(job);
    return task ? (task.getNextRuns(1)[0] ?? null) : null;
  }

  /** Stops firing, then lets the runner finish or cancel what is running. */
  async stop(graceMs = 5000): Promise<void> {
    for (const task of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    await this.runner.shutdown(graceMs);
    await Promise.allSettled([...this.inFlight]);
  }
}

/** The next time a cron expression fires, without scheduling anything (for `jobs list`). */
export function nextFireTime(schedule: string, timezone: string): Date | null {
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    void task.destroy();
  }
}
