import type pg from 'pg';
import { JOB_LOCK_PREFIX } from './advisory-lock.js';

/**
 * The maintenance_log table (sql/migrations/003_log_tables.sql): one row per run, written through the
 * runner's pool, not the job's session, so a job whose connection died still gets its row finished.
 * A run is inserted as `running` once its lock is held and updated to success / failed at the end;
 * skipped runs are one finished row. run_by keeps its default, the database role (current_user).
 */
export type LogStatus = 'running' | 'success' | 'failed' | 'skipped';

type Db = pg.Pool | pg.Client;

const json = (details: Record<string, unknown>) => JSON.stringify(details);

export async function insertRunning(db: Db, job: string, host: string, details: Record<string, unknown>): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO maintenance_log (job, status, host, details) VALUES ($1, 'running', $2, $3::jsonb) RETURNING id`,
    [job, host, json(details)],
  );
  return Number(rows[0]!.id);
}

export async function finishRun(db: Db, id: number, status: Exclude<LogStatus, 'running'>, message: string, details: Record<string, unknown>): Promise<void> {
  await db.query(`UPDATE maintenance_log SET finished_at = now(), status = $2, message = $3, details = $4::jsonb WHERE id = $1`, [
    id,
    status,
    message,
    json(details),
  ]);
}

export async function insertSkipped(db: Db, job: string, host: string, message: string, details: Record<string, unknown>): Promise<number> {
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO maintenance_log (job, status, host, message, details, finished_at) VALUES ($1, 'skipped', $2, $3, $4::jsonb, now()) RETURNING id`,
    [job, host, message, json(details)],
  );
  return Number(rows[0]!.id);
}

/**
 * Rows still `running` for a job whose advisory lock we now hold belong to a run that ended without
 * recording its result (process killed, connection lost): nobody else can be running it.
 */
export async function failInterruptedRuns(db: Db, job: string, host: string): Promise<number> {
  const result = await db.query(
    `UPDATE maintenance_log SET status = 'failed', finished_at = now(),
            message = 'interrupted: the run ended without recording a result (found by ' || $2 || ')'
      WHERE job = $1 AND status = 'running'`,
    [job, host],
  );
  return result.rowCount ?? 0;
}

/**
 * Rows still `running` whose owner is gone -- the job's advisory lock is free and the backend that ran it
 * (details.backend_pid) no longer exists -- are closed as failed (interrupted), for every job, so a
 * SIGKILLed run does not read `running` until the job's next run (a week for reindex). The lock key is
 * the one jobLockKey() gives; `graceSeconds` leaves alone a run that has just released its lock and is
 * about to record its result. Returns the jobs whose rows were closed.
 */
export async function failOrphanedRuns(db: Db, host: string, graceSeconds = 2): Promise<string[]> {
  const { rows } = await db.query<{ job: string }>(
    `UPDATE maintenance_log m SET status = 'failed', finished_at = now(),
            message = 'interrupted: the run ended without recording a result; its lock and session were gone (found by ' || $1 || ')'
      WHERE m.status = 'running' AND m.started_at < now() - make_interval(secs => $2)
        AND NOT EXISTS (
          SELECT 1 FROM pg_locks l
           WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
             AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
             AND l.classid::int8 = (hashtext('${JOB_LOCK_PREFIX}' || m.job)::int8 >> 32) & 4294967295
             AND l.objid::int8 = hashtext('${JOB_LOCK_PREFIX}' || m.job)::int8 & 4294967295)
        AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid::text = m.details->>'backend_pid')
      RETURNING m.job`,
    [host, graceSeconds],
  );
  return [...new Set(rows.map((r) => r.job))];
}

/** A run of this job for the same scheduled slot, by any replica (each scheduled run happens once). */
export async function findSlotRun(db: Db, job: string, slot: string): Promise<{ host: string | null; status: LogStatus } | undefined> {
  const { rows } = await db.query<{ host: string | null; status: LogStatus }>(
    `SELECT host, status FROM maintenance_log
      WHERE job = $1 AND details->>'scheduled_for' = $2 AND status IN ('running', 'success', 'failed')
      ORDER BY id LIMIT 1`,
    [job, slot],
  );
  return rows[0];
}

export async function runningSince(db: Db, job: string): Promise<{ host: string | null; started_at: Date } | undefined> {
  const { rows } = await db.query<{ host: string | null; started_at: Date }>(
    `SELECT host, started_at FROM maintenance_log WHERE job = $1 AND status = 'running' ORDER BY started_at DESC LIMIT 1`,
    [job],
  );
  return rows[0];
}

export interface LastResult {
  job: string;
  status: LogStatus;
  started_at: Date;
  finished_at: Date | null;
  message: string | null;
  host: string | null;
}

export async function lastResults(db: Db): Promise<Map<string, LastResult>> {
  const { rows } = await db.query<LastResult>(
    `SELECT DISTINCT ON (job) job, status, started_at, finished_at, message, host
       FROM maintenance_log ORDER BY job, started_at DESC, id DESC`,
  );
  return new Map(rows.map((r) => [r.job, r]));
}

export interface JobHistory {
  lastSuccess: Map<string, Date>;
  lastRun: Map<string, Date>;
  lastBackupSizeBytes?: number;
}

/** What the metrics start from, so a restart does not reset "last success" to never. */
export async function jobHistory(db: Db): Promise<JobHistory> {
  const { rows } = await db.query<{ job: string; last_success: Date | null; last_run: Date | null }>(
    `SELECT job, max(finished_at) FILTER (WHERE status = 'success') AS last_success,
            max(finished_at) FILTER (WHERE status <> 'running') AS last_run
       FROM maintenance_log GROUP BY job`,
  );
  const size = await db.query<{ size: string | null }>(
    `SELECT details->>'size_bytes' AS size FROM maintenance_log
      WHERE job = 'backup' AND status = 'success' AND details ? 'size_bytes' ORDER BY finished_at DESC LIMIT 1`,
  );
  const history: JobHistory = { lastSuccess: new Map(), lastRun: new Map() };
  for (const r of rows) {
    if (r.last_success) history.lastSuccess.set(r.job, r.last_success);
    if (r.last_run) history.lastRun.set(r.job, r.last_run);
  }
  const sizeText = size.rows[0]?.size;
  if (sizeText) history.lastBackupSizeBytes = Number(sizeText);
  return history;
}
