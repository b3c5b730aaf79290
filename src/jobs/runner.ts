import pg from 'pg';
import type { JobName } from './index.js';
import type { ConnectionSettings } from '../db/connection.js';
import { describeDatabaseError, errorCode } from '../db/errors.js';
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

/** What stop() needs of a run in progress: its signal, and the server pid of its session once open. */
interface RunHandle {
  controller: AbortController;
  backendPid?: number;
}

interface ActiveRun extends RunHandle {
  since: Date;
  done: Promise<RunResult>;
}

/** How a run ended, before the runner adds the job, times and request to make it a RunResult. */
interface Outcome {
  result: RunResultKind;
  message: string;
  details: Record<string, unknown>;
  skipReason?: SkipReason;
  statements?: string[];
}

/** The database's answer to "may this run go ahead?": the lock is ours, or why not. */
type LockOutcome = { acquired: true } | { acquired: false; reason: SkipReason; message: string };

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
    if (!job) return finished(name, startedAt, request, { result: 'failure', message: `unknown job "${name}"`, details: base });
    const early = this.refuseEarly(name, request, startedAt);
    if (early) {
      const result = finished(name, startedAt, request, { result: 'skipped', message: early.message, details: base, skipReason: early.reason });
      if (!request.dryRun) await this.recordSkip(result);
      return this.report(result);
    }
    const handle: RunHandle = { controller: new AbortController() };
    const done = this.execute(job, request, handle, startedAt).finally(() => this.active.delete(name));
    // Set before any await since the check above: no second run can slip in.
    this.active.set(name, Object.assign(handle, { since: startedAt, done }));
    if (!request.dryRun) this.observer?.started(name);
    return this.report(await done);
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

  /**
   * The steps of one run: open the job's session, acquire the lock, record the start, plan and run,
   * record the end. A dry run only opens a session and plans.
   */
  private async execute(job: Job, request: RunRequest, handle: RunHandle, startedAt: Date): Promise<RunResult> {
    const base = baseDetails(request);
    const end = (outcome: Outcome) => finished(job.name, startedAt, request, outcome);
    let client: pg.Client;
    try {
      client = await this.openSession(job.name, handle);
    } catch (err) {
      return end({ result: 'failure', message: `cannot connect: ${describeDatabaseError(err, this.options.connection.description)}`, details: base });
    }
    const key = jobLockKey(job.name);
    let locked = false;
    let logId: number | undefined;
    let result: RunResult;
    try {
      if (!request.dryRun) {
        const lock = await this.acquireLock(client, job.name, request, key);
        if (!lock.acquired) return await this.skippedByDatabase(end({ result: 'skipped', message: lock.message, details: base, skipReason: lock.reason }));
        locked = true;
        logId = await this.recordStart(job.name, base, handle.backendPid);
      }
      result = end(await this.planAndRun(job, client, request, handle, base));
    } catch (err) {
      // Only the lock and recordStart get here: planAndRun turns its own errors into a failure.
      result = end({ result: 'failure', message: describeDatabaseError(err), details: { ...base, ...errorDetails(err) } });
    } finally {
      if (locked) await releaseAdvisoryLock(client, key).catch(() => undefined);
      await client.end().catch(() => undefined);
    }
    if (logId !== undefined) await this.recordEnd(logId, result);
    return result;
  }

  /** The job's own session, outside any transaction; its server pid goes into the handle, for shutdown(). */
  private async openSession(job: JobName, handle: RunHandle): Promise<pg.Client> {
    const client = await this.connect(job);
    try {
      handle.backendPid = await backendPid(client);
      return client;
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Whether this run may go ahead: not on a standby, the job's advisory lock free (taken on `client`,
   * and then held until the run ends), and, for a scheduled run, its cron slot not already run elsewhere.
   */
  private async acquireLock(client: pg.Client, job: JobName, request: RunRequest, key: string): Promise<LockOutcome> {
    const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
    if (rows[0]!.standby) return { acquired: false, reason: 'standby', message: 'the server is a standby (pg_is_in_recovery()); maintenance runs on the primary' };
    if (!(await tryAdvisoryLock(client, key))) {
      const [holder, running] = await Promise.all([
        advisoryLockHolder(this.options.pool, key).catch(() => undefined),
        runningSince(this.options.pool, job).catch(() => undefined),
      ]);
      const who = holder ? `pid ${holder.pid} "${holder.applicationName}"${holder.clientAddr ? ` from ${holder.clientAddr}` : ''}` : 'another session';
      const since = running ? `, running on ${running.host ?? 'an unnamed host'} since ${running.started_at.toISOString()}` : '';
      return { acquired: false, reason: 'locked', message: `another instance holds the job's advisory lock (${who}${since})` };
    }
    if (request.scheduledFor) {
      const slot = request.scheduledFor.toISOString();
      const ran = await findSlotRun(this.options.pool, job, slot);
      if (ran) {
        await releaseAdvisoryLock(client, key);
        return { acquired: false, reason: 'already-ran', message: `the run scheduled for ${slot} already ran on ${ran.host ?? 'another instance'} (${ran.status})` };
      }
    }
    return { acquired: true };
  }

  /** Closes runs of this job left `running` by this host's earlier process, then writes this run's `running` row. */
  private async recordStart(job: JobName, base: Record<string, unknown>, backendPid: number | undefined): Promise<number> {
    const { pool, host, log } = this.options;
    const interrupted = await failInterruptedRuns(pool, job, host);
    if (interrupted > 0) log.warn({ job, rows: interrupted }, 'marked runs that never finished as failed');
    // The backend's pid lets another sidecar tell a SIGKILLed run (session gone) from a live one.
    return insertRunning(pool, job, host, { ...base, backend_pid: backendPid });
  }

  /**
   * Sets the job's timeouts on its session, plans, then (unless a dry run, or nothing is needed)
   * executes the plan; never throws.
   */
  private async planAndRun(job: Job, client: pg.Client, request: RunRequest, handle: RunHandle, base: Record<string, unknown>): Promise<Outcome> {
    const { log } = this.options;
    const ctx: JobContext = {
      client,
      connection: this.options.connection,
      force: request.force ?? false,
      log: log.child({ job: job.name }),
      signal: handle.controller.signal,
      progress: (event) => {
        log.debug({ job: job.name, ...event }, 'job progress');
        request.progress?.(event);
      },
    };
    let plan: JobPlan | undefined;
    try {
      await this.setTimeouts(client, job.name);
      plan = await job.plan(ctx);
      const planned = { ...base, ...plan.details };
      const { statements } = plan;
      if (request.dryRun) return { result: 'success', message: `dry run, nothing changed: ${plan.reason}`, details: planned, statements };
      if (!plan.needed) return { result: 'success', message: `nothing to do: ${plan.reason}`, details: planned, statements };
      const outcome = await plan.execute();
      return { result: 'success', message: outcome.message, details: { ...planned, ...outcome.details }, statements };
    } catch (err) {
      const details = { ...base, ...(plan?.details ?? {}), ...errorDetails(err) };
      return { result: 'failure', message: describeDatabaseError(err), details, statements: plan?.statements ?? [] };
    }
  }

  /** The run's result and duration in its maintenance_log row. */
  private async recordEnd(logId: number, result: RunResult): Promise<void> {
    result.logId = logId;
    const details = { ...result.details, duration_seconds: round(result.durationSeconds) };
    await finishRun(this.options.pool, logId, STATUS_OF[result.result], result.message, details).catch((err: unknown) =>
      this.options.log.error({ job: result.job, error: describeDatabaseError(err) }, 'could not record the result in maintenance_log'),
    );
  }

  private async connect(job: JobName): Promise<pg.Client> {
    const client = new this.options.connection.Client({
      ...this.options.connection.client,
      password: this.options.connection.client.password,
      // Visible in pg_stat_activity and in the skip reason of the replica that did not get the lock.
      application_name: `pgvector-exporter job ${job} (${this.options.host})`.slice(0, 63),
      connectionTimeoutMillis: this.options.connectTimeoutMs,
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

  private async skippedByDatabase(result: RunResult): Promise<RunResult> {
    // A standby is read-only: the skip is logged and counted, not written.
    if (result.skipReason !== 'standby') await this.recordSkip(result);
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

/** A job's error as details: what a JobFailure says it did, and the SQLSTATE of a database error. */
function errorDetails(err: unknown): Record<string, unknown> {
  const code = errorCode(err);
  return { ...((err as { details?: Record<string, unknown> }).details ?? {}), ...(code ? { error_code: code } : {}) };
}

function finished(job: JobName, startedAt: Date, request: RunRequest, outcome: Outcome): RunResult {
  const finishedAt = new Date();
  return {
    job,
    result: outcome.result,
    message: outcome.message,
    details: outcome.details,
    statements: outcome.statements ?? [],
    dryRun: request.dryRun ?? false,
    skipReason: outcome.skipReason,
    startedAt,
    finishedAt,
    durationSeconds: (finishedAt.getTime() - startedAt.getTime()) / 1000,
  };
}

const round = (n: number) => Math.round(n * 1000) / 1000;
