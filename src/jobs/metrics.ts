import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { JobName } from './index.js';
import type { JobHistory } from './maintenance-log.js';
import type { RunObserver, RunResult } from './runner.js';

/**
 * The scheduler's metrics. Every enabled job's series exist from the start (counters at 0, timestamps
 * from maintenance_log's history or 0), so `increase(...[1d]) == 0` and `time() - last_success` alerts
 * work before the first run and across restarts. Dry runs are not counted.
 */
export const JOB_RESULTS = ['success', 'failure', 'skipped'] as const;

/** Jobs run from seconds (ANALYZE) to hours (REINDEX of a large HNSW index, pg_dump). */
const DURATION_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400];

export class JobMetrics implements RunObserver {
  private readonly runs: Counter<'job_name' | 'result'>;
  private readonly duration: Histogram<'job_name'>;
  private readonly lastSuccess: Gauge<'job_name'>;
  private readonly lastRun: Gauge<'job_name'>;
  private readonly nextRun: Gauge<'job_name'>;
  private readonly running: Gauge<'job_name'>;
  private readonly backupSize: Gauge;
  private readonly lastSuccessSeconds = new Map<JobName, number>();
  private readonly lastRunSeconds = new Map<JobName, number>();
  private backupSizeBytes?: number;

  constructor(registry: Registry) {
    const registers = [registry];
    this.runs = new Counter({ name: 'rag_maintenance_job_runs_total', help: 'Maintenance job runs by result (success, failure, skipped).', labelNames: ['job_name', 'result'], registers });
    this.duration = new Histogram({ name: 'rag_maintenance_job_duration_seconds', help: 'Duration of maintenance job runs that were not skipped.', labelNames: ['job_name'], buckets: DURATION_BUCKETS, registers });
    this.lastSuccess = new Gauge({ name: 'rag_maintenance_job_last_success_timestamp_seconds', help: 'Unix time the job last succeeded on this database, by this or another sidecar (maintenance_log, re-read every minute), 0 = never.', labelNames: ['job_name'], registers });
    this.lastRun = new Gauge({ name: 'rag_maintenance_job_last_run_timestamp_seconds', help: 'Unix time the last run of the job ended, whatever its result, 0 = never.', labelNames: ['job_name'], registers });
    this.nextRun = new Gauge({ name: 'rag_maintenance_job_next_run_timestamp_seconds', help: 'Unix time of the next scheduled run of the job.', labelNames: ['job_name'], registers });
    this.running = new Gauge({ name: 'rag_maintenance_job_running', help: '1 while the job runs in this process, else 0.', labelNames: ['job_name'], registers });
    this.backupSize = new Gauge({ name: 'rag_backup_last_size_bytes', help: 'Size of the last successful backup dump, 0 = none yet.', registers });
  }

  /** Creates every series of the given jobs at 0. */
  seed(jobs: readonly JobName[]): void {
    for (const job of jobs) {
      for (const result of JOB_RESULTS) this.runs.inc({ job_name: job, result }, 0);
      this.duration.zero({ job_name: job });
      this.lastSuccess.set({ job_name: job }, this.lastSuccessSeconds.get(job) ?? 0);
      this.lastRun.set({ job_name: job }, this.lastRunSeconds.get(job) ?? 0);
      this.running.set({ job_name: job }, 0);
    }
    if (jobs.includes('backup')) this.backupSize.set(this.backupSizeBytes ?? 0);
  }

  /** The last success/run times and backup size found in maintenance_log; never moves a time backwards. */
  applyHistory(jobs: readonly JobName[], history: JobHistory): void {
    for (const job of jobs) {
      const newer = this.advance(this.lastSuccess, this.lastSuccessSeconds, job, history.lastSuccess.get(job));
      this.advance(this.lastRun, this.lastRunSeconds, job, history.lastRun.get(job));
      // The size belongs to the newest successful backup: take it when that success is newer than ours.
      if (job === 'backup' && newer && history.lastBackupSizeBytes !== undefined) {
        this.backupSizeBytes = history.lastBackupSizeBytes;
        this.backupSize.set(history.lastBackupSizeBytes);
      }
    }
  }

  /** Moves a timestamp gauge forward only; true when it moved. */
  private advance(gauge: Gauge<'job_name'>, seen: Map<JobName, number>, job: JobName, at: Date | undefined): boolean {
    const value = at ? at.getTime() / 1000 : 0;
    if (value <= (seen.get(job) ?? 0)) return false;
    seen.set(job, value);
    gauge.set({ job_name: job }, value);
    return true;
  }

  setNextRun(job: JobName, at: Date | null): void {
    if (at) this.nextRun.set({ job_name: job }, at.getTime() / 1000);
    else this.nextRun.remove({ job_name: job });
  }

  started(job: JobName): void {
    this.running.set({ job_name: job }, 1);
  }

  finished(result: RunResult): void {
    const job = result.job;
    // A run refused before it started (one already running here, outside the window) leaves the gauge alone.
    if (!EARLY_SKIPS.has(result.skipReason ?? '')) this.running.set({ job_name: job }, 0);
    this.runs.inc({ job_name: job, result: result.result });
    this.advance(this.lastRun, this.lastRunSeconds, job, result.finishedAt);
    if (result.result !== 'skipped') this.duration.observe({ job_name: job }, result.durationSeconds);
    if (result.result === 'success') this.advance(this.lastSuccess, this.lastSuccessSeconds, job, result.finishedAt);
    // The backup job's own result, carried in its details (as maintenance_log keeps it for applyHistory).
    const size = result.details.size_bytes;
    if (job === 'backup' && result.result === 'success' && typeof size === 'number') {
      this.backupSizeBytes = size;
      this.backupSize.set(size);
    }
  }
}

const EARLY_SKIPS = new Set(['already-running', 'window', 'shutting-down']);
