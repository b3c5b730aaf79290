import cron, { type ScheduledTask } from 'node-cron';
import type { JobName } from './index.js';
import type { Logger } from '../log.js';
import type { JobMetrics } from './metrics.js';
import type { JobRunner } from './runner.js';
import { nextUtcFire, parseUtcCron, type UtcCron } from './utc-cron.js';

/**
 * Fires each enabled job on its cron expression through the runner: a plain expression in UTC (the
 * default) on a timer of its own (utc-cron.ts: node-cron would map ICU's time-zone data into every
 * process), anything else through node-cron in the job's time zone.
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
  private readonly timers = new Map<JobName, { next: Date | null; timer?: NodeJS.Timeout }>();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly specs: ScheduleSpec[],
    private readonly runner: JobRunner,
    private readonly log: Logger,
    private readonly metrics?: JobMetrics,
  ) {}

  start(): void {
    for (const spec of this.specs) {
      const utc = spec.timezone === 'UTC' ? parseUtcCron(spec.schedule) : undefined;
      if (utc) this.plan(spec.job, utc, new Date());
      else this.startNodeCron(spec);
      this.metrics?.setNextRun(spec.job, this.nextRun(spec.job));
      this.log.info({ job: spec.job, schedule: spec.schedule, timezone: spec.timezone, next_run: this.nextRun(spec.job)?.toISOString() }, 'job scheduled');
    }
  }

  /** Arms the job's timer for its next slot after `after` (re-armed before a slot more than a day away). */
  private plan(job: JobName, cron: UtcCron, after: Date): void {
    const next = nextUtcFire(cron, after);
    const entry: { next: Date | null; timer?: NodeJS.Timeout } = { next };
    this.timers.set(job, entry);
    if (!next) return;
    const wake = () => {
      if (this.timers.get(job) !== entry) return;
      if (Date.now() < next.getTime()) {
        entry.timer = setTimeout(wake, Math.min(next.getTime() - Date.now(), 86_400_000)).unref();
        return;
      }
      // A slot missed by more than node-cron's tolerance (1 s: the process was paused) is not run late.
      const missed = Date.now() - next.getTime() > 1000;
      this.plan(job, cron, missed ? new Date() : next);
      if (missed) this.log.warn({ job, scheduled_for: next.toISOString() }, 'scheduled slot missed (the process was paused); waiting for the next one');
      else void this.fire(job, next);
    };
    entry.timer = setTimeout(wake, Math.min(next.getTime() - Date.now(), 86_400_000)).unref();
  }

  private startNodeCron(spec: ScheduleSpec): void {
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
    const timer = this.timers.get(job);
    if (timer) return timer.next;
    const task = this.tasks.get(job);
    return task ? (task.getNextRuns(1)[0] ?? null) : null;
  }

  /** Stops firing, then lets the runner finish or cancel what is running. */
  async stop(graceMs = 5000): Promise<void> {
    for (const task of this.tasks.values()) await task.destroy();
    this.tasks.clear();
    for (const entry of this.timers.values()) clearTimeout(entry.timer);
    this.timers.clear();
    await this.runner.shutdown(graceMs);
    await Promise.allSettled([...this.inFlight]);
  }
}

/** The next time a cron expression fires, without scheduling anything (for `jobs list`). */
export function nextFireTime(schedule: string, timezone: string): Date | null {
  const utc = timezone === 'UTC' ? parseUtcCron(schedule) : undefined;
  if (utc) return nextUtcFire(utc, new Date());
  const task = cron.createTask(schedule, () => undefined, { timezone });
  try {
    return task.getNextRuns(1)[0] ?? null;
  } finally {
    void task.destroy();
  }
}
