import pg from 'pg';
import type { JobName } from './index.js';
import type { ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError } from '../db/errors.js';
import type { Logger } from '../log.js';
import { advisoryLockHolder, jobLockKey, releaseAdvisoryLock, tryAdvisoryLock } from './advisory-lock.js';
import type { Job, JobContext, JobPlan, JobProgress } from './job.js';
import { failInterruptedRuns, findSlotRun, finishRun, insertRunning, insertSkipped, runningSince } from './maintenance-log.js';
import { outsideWindow, type MaintenanceWindow } from './maintenance-window.js';

/**
 * One run of one job, the same for a scheduled, a CLI and an HTTP-triggered run:
 *   in-process guard -> maintenance window (scheduled runs only) -> own session with the job's
 *   lock_timeout / statement_timeout -> standby check -> advisory lock -> "this scheduled slot already
 *   ran elsewhere?" -> maintenance_log `running` -> plan -> execute -> maintenance_log result.
 * run() never throws and never overlaps itself: a second run of a job that is running in this process
 * is skipped at once (no await before the guard is set), and one running in another process is skipped
 * by the advisory lock. A dry run only plans: no lock, no maintenance_log row, no metrics.
 */
export type RunResultKind = 'success' | 'failure' | 'skipped';
export type SkipReason = 'already-running' | 'locked' | 'standby' | 'window' | 'already-ran' | 'shutting-down';
export type Trigger = 'schedule' | 'manual' | 'http';

export interface RunRequest {
  trigger: Trigger;
  /** The cron slot this run belongs to (scheduled runs): replicas firing the same slot run it once. */
  scheduledFor?: Date;
  dryRun?: boolean;
  force?: boolean;
  progress?: (event: JobProgress) => void;
}

export interface RunResult {
  job: JobName;
  result: RunResultKind;
  message: string;
  details: Record<string, unknown>;
  /** The plan's statements (what ran, or with --dry-run what would run). */
  statements: string[];
  dryRun: boolean;
  skipReason?: SkipReason;
  startedAt: Date;
  finishedAt: Date;
  durationSeconds: number;
  /** maintenance_log.id of the run's row, when one was written. */
  logId?: number;
  backupSizeBytes?: number;
}

/** The metrics side (jobs/metrics.ts); the runner itself does not import prom-client. */
export interface RunObserver {
  started(job: JobName): void;
  finished(result: RunResult): void;
}

export interface JobTimeouts {
  lockTimeoutMs: number;
  statementTimeoutMs: number;
}

export interface RunnerOptions {
  jobs: Job[];
  timeouts: (job: JobName) => JobTimeouts;
  connection: ConnectionSettings;
  /** For maintenance_log and lock-holder look-ups, separate from the jobs' own sessions. */
  pool: pg.Pool;
  /** This sidecar's name in maintenance_log.host and in the jobs' application_name. */
  host: string;
  window: MaintenanceWindow;
  log: Logger;
  connectTimeoutMs: number;
  observer?: RunObserver;
  /** Log each run's result (serve); the CLI prints it itself. Default true. */
  logResults?: boolean;
}

interface ActiveRun {
  since: Date;
  controller: AbortController;
  backendPid?: number;
  done: Promise<RunResult>;
}

const STATUS_OF: Record<RunResultKind, 'success' | 'failed' | 'skipped'> = { success: 'success', failure: 'failed', skipped: 'skipped' };

export class JobRunner {
  private readonly jobs: Map<string, Job>;
  private readonly active = new Map<string, ActiveRun>();
  private stopping = false;
  private readonly observer?: RunObserver;

  constructor(private readonly options: RunnerOptions) {
    this.jobs = new Map(options.jobs.map((j) => [j.name, j]));
    this.observer = options.observer;
  }

  has(name: string): name is JobName {
    return this.jobs.has(name);
  }

  isRunning(name: string): boolean {
    return this.active.has(name);
  }

  async run(name: JobName, request: RunRequest): Promise<RunResult> {
    const startedAt = new Date();
    const job = this.jobs.get(name);
    const base = baseDetails(request);
    if (!job) return finished(name, startedAt, 'failure', `unknown job "${name}"`, base, request);
    const early = this.refuseEarly(name, request, startedAt);
    if (early) {
      const result = finished(name, startedAt, 'skipped', early.message, base, request, early.reason);
      if (!request.dryRun) await this.recordSkip(result);
      return this.report(result);
    }
    const controller = new AbortController();
    const entry: ActiveRun = { since: startedAt, controller, done: undefined as unknown as Promise<RunResult> };
    this.active.set(name, entry); // synchronously after the check: no second run can slip in
    if (!request.dryRun) this.observer?.started(name);
    entry.done = this.execute(job, request, entry, startedAt).finally(() => this.active.delete(name));
    return this.report(await entry.done);
  }

  /**
   * Stops accepting runs; waits up to graceMs for running jobs, then cancels their statements and
   * child processes (an interrupted REINDEX CONCURRENTLY leaves a _ccnew index the next run drops).
   */
  async shutdown(graceMs = 5000): Promise<void> {
    this.stopping = true;
    const runs = [...this.active.values()];
    if (runs.length === 0) return;
    const all = Promise.allSettled(runs.map((r) => r.done));
    const timedOut = await Promise.race([all.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), graceMs).unref())]);
    if (!timedOut) return;
    for (const run of runs) {
      run.controller.abort();
      if (run.backendPid) await this.options.pool.query('SELECT pg_cancel_backend($1)', [run.backendPid]).catch(() => undefined);
    }
    await Promise.race([all, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  private refuseEarly(name: JobName, request: RunRequest, now: Date): { reason: SkipReason; message: string } | undefined {
    if (this.stopping) return { reason: 'shutting-down', message: 'the exporter is shutting down' };
    const running = this.active.get(name);
    if (running) return { reason: 'already-running', message: `already running in this process since ${running.since.toISOString()}` };
    if (request.trigger === 'schedule') {
      const outside = outsideWindow(this.options.window, request.scheduledFor ?? now);
      if (outside) return { reason: 'window', message: outside };
    }
    return undefined;
  }

  private async execute(job: Job, request: RunRequest, entry: ActiveRun, startedAt: Date): Promise<RunResult> {
    const { log, host } = this.options;
    const base = baseDetails(request);
    let client: pg.Client;
    try {
      client = await this.connect(job.name);
    } catch (err) {
      return finished(job.name, startedAt, 'failure', `cannot connect: ${describeDatabaseError(err, this.options.connection.description)}`, base, request);
    }
    const key = jobLockKey(job.name);
    let locked = false;
    let logId: number | undefined;
    let plan: JobPlan | undefined;
    let result: RunResult;
    try {
      entry.backendPid = await backendPid(client);
      if (!request.dryRun) {
        const refusal = await this.refuseOnDatabase(client, job.name, request, key);
        if (refusal === 'locked-by-us') locked = true;
        else return await this.skippedByDatabase(job.name, startedAt, base, request, refusal);
        const interrupted = await failInterruptedRuns(this.options.pool, job.name, host);
        if (interrupted > 0) log.warn({ job: job.name, rows: interrupted }, 'marked runs that never finished as failed');
        // The backend's pid lets another sidecar tell a SIGKILLed run (session gone) from a live one.
        logId = await insertRunning(this.options.pool, job.name, host, { ...base, backend_pid: entry.backendPid });
      }
      await this.setTimeouts(client, job.name);
      const ctx: JobContext = {
        client,
        connection: this.options.connection,
        force: request.force ?? false,
        log: log.child({ job: job.name }),
        signal: entry.controller.signal,
        progress: (event) => {
          log.debug({ job: job.name, ...event }, 'job progress');
          request.progress?.(event);
        },
      };
      plan = await job.plan(ctx);
      const planned = { ...base, ...plan.details };
      if (request.dryRun) {
        result = finished(job.name, startedAt, 'success', `dry run, nothing changed: ${plan.reason}`, planned, request, undefined, plan.statements);
      } else if (!plan.needed) {
        result = finished(job.name, startedAt, 'success', `nothing to do: ${plan.reason}`, planned, request, undefined, plan.statements);
      } else {
        const outcome = await plan.execute();
        result = finished(job.name, startedAt, 'success', outcome.message, { ...planned, ...outcome.details }, request, undefined, plan.statements);
        result.backupSizeBytes = outcome.backupSizeBytes;
      }
    } catch (err) {
      const e = err as { code?: string; details?: Record<string, unknown> };
      const details = { ...base, ...(plan?.details ?? {}), ...(e.details ?? {}), ...(e.code ? { error_code: e.code } : {}) };
      result = finished(job.name, startedAt, 'failure', describeDatabaseError(err), details, request, undefined, plan?.statements ?? []);
    } finally {
      if (locked) await releaseAdvisoryLock(client, key).catch(() => undefined);
      await client.end().catch(() => undefined);
    }
    if (logId !== undefined) {
      result.logId = logId;
      const details = { ...result.details, duration_seconds: round(result.durationSeconds) };
      await finishRun(this.options.pool, logId, STATUS_OF[result.result], result.message, details).catch((err: unknown) =>
        log.error({ job: job.name, error: describeDatabaseError(err) }, 'could not record the result in maintenance_log'),
      );
    }
    return result;
  }

  private async connect(job: JobName): Promise<pg.Client> {
    const client = new this.options.connection.Client({
      ...this.options.connection.client,
      password: this.options.connection.client.password,
      // Visible in pg_stat_activity and in the skip reason of the replica that did not get the lock.
      application_name: `pgvector-exporter job ${job} (${this.options.host})`.slice(0, 63),
      connectionTimeoutMillis: this.options.connection.client.connectionTimeoutMillis ?? this.options.connectTimeoutMs,
    });
    client.on('error', (err) => this.options.log.warn({ job, error: describeDatabaseError(err) }, 'job connection failed'));
    await client.connect();
    return client;
  }

  /** The job's timeouts, set on its session, so every statement it runs (VACUUM included) obeys them. */
  private async setTimeouts(client: pg.Client, job: JobName): Promise<void> {
    const t = this.options.timeouts(job);
    await client.query("SELECT set_config('lock_timeout', $1, false), set_config('statement_timeout', $2, false)", [
      `${t.lockTimeoutMs}ms`,
      `${t.statementTimeoutMs}ms`,
    ]);
  }

  private async refuseOnDatabase(client: pg.Client, job: JobName, request: RunRequest, key: string): Promise<'locked-by-us' | { reason: SkipReason; message: string }> {
    const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    if (rows[0]!.standby) return { reason: 'standby', message: 'the server is a standby (pg_is_in_recovery()); maintenance runs on the primary' };
    if (!(await tryAdvisoryLock(client, key))) {
      const [holder, running] = await Promise.all([
        advisoryLockHolder(this.options.pool, key).catch(() => undefined),
        runningSince(this.options.pool, job).catch(() => undefined),
      ]);
      const who = holder ? `pid ${holder.pid} "${holder.applicationName}"${holder.clientAddr ? ` from ${holder.clientAddr}` : ''}` : 'another session';
      const since = running ? `, running on ${running.host ?? 'an unnamed host'} since ${running.started_at.toISOString()}` : '';
      return { reason: 'locked', message: `another instance holds the job's advisory lock (${who}${since})` };
    }
    if (request.scheduledFor) {
      const slot = request.scheduledFor.toISOString();
      const ran = await findSlotRun(this.options.pool, job, slot);
      if (ran) {
        await releaseAdvisoryLock(client, key);
        return { reason: 'already-ran', message: `the run scheduled for ${slot} already ran on ${ran.host ?? 'another instance'} (${ran.status})` };
      }
    }
    return 'locked-by-us';
  }

  private async skippedByDatabase(
    job: JobName,
    startedAt: Date,
    base: Record<string, unknown>,
    request: RunRequest,
    refusal: { reason: SkipReason; message: string },
  ): Promise<RunResult> {
    const result = finished(job, startedAt, 'skipped', refusal.message, base, request, refusal.reason);
    // A standby is read-only: the skip is logged and counted, not written.
    if (refusal.reason !== 'standby') await this.recordSkip(result);
    return result;
  }

  private async recordSkip(result: RunResult): Promise<void> {
    try {
      result.logId = await insertSkipped(this.options.pool, result.job, this.options.host, result.message, { ...result.details, skip_reason: result.skipReason });
    } catch (err) {
      this.options.log.warn({ job: result.job, error: describeDatabaseError(err) }, 'could not record the skipped run in maintenance_log');
    }
  }

  private report(result: RunResult): RunResult {
    if (this.options.logResults !== false) this.logResult(result);
    if (result.dryRun) return result; // dry runs are not counted
    try {
      this.observer?.finished(result);
    } catch (err) {
      this.options.log.error({ error: (err as Error).message }, 'job metrics update failed');
    }
    return result;
  }

  private logResult(result: RunResult): void {
    const fields = { job: result.job, result: result.result, duration_seconds: round(result.durationSeconds), trigger: result.details.trigger };
    if (result.dryRun) this.options.log.info(fields, result.message);
    else if (result.result === 'failure') this.options.log.error({ ...fields, details: result.details }, `job failed: ${result.message}`);
    else if (result.result === 'skipped') this.options.log.info(fields, `job skipped: ${result.message}`);
    else this.options.log.info(fields, `job succeeded: ${result.message}`);
  }
}

async function backendPid(client: pg.Client): Promise<number> {
  const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
  return rows[0]!.pid;
}

function baseDetails(request: RunRequest): Record<string, unknown> {
  return {
    trigger: request.trigger,
    ...(request.scheduledFor ? { scheduled_for: request.scheduledFor.toISOString() } : {}),
    ...(request.force ? { force: true } : {}),
  };
}

function finished(
  job: JobName,
  startedAt: Date,
  result: RunResultKind,
  message: string,
  details: Record<string, unknown>,
  request: RunRequest,
  skipReason?: SkipReason,
  statements: string[] = [],
): RunResult {
  const finishedAt = new Date();
  return {
    job,
    result,
    message,
    details,
    statements,
    dryRun: request.dryRun ?? false,
    skipReason,
    startedAt,
    finishedAt,
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
