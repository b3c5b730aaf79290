import { JOB_NAMES, type Config, type JobName } from '../config/schema.js';
import { analyzeJob } from './analyze.js';
import { backupJob } from './backup.js';
import type { Job } from './job.js';
import { logRetentionJob } from './log-retention.js';
import { reindexVectorJob } from './reindex-vector.js';
import type { JobTimeouts } from './runner.js';
import { vacuumAnalyzeJob } from './vacuum-analyze.js';

/** The one list of maintenance jobs, built from the validated config; order = JOB_NAMES. */
export function createJobs(config: Config): Job[] {
  const tables = { schema: config.schema, tables: config.managed_tables };
  const reindex = config.jobs['reindex-vector'];
  const retention = config.jobs['log-retention'];
  const backup = config.jobs.backup;
  const byName: Record<JobName, Job> = {
    analyze: analyzeJob(tables),
    'vacuum-analyze': vacuumAnalyzeJob(tables),
    'reindex-vector': reindexVectorJob({
      schema: config.schema,
      index: reindex.index,
      changeThreshold: reindex.change_threshold,
      listsGrowthFactor: reindex.lists_growth_factor,
      maintenanceWorkMem: reindex.maintenance_work_mem,
      alterLockTimeoutMs: Math.min(reindex.lock_timeout || 5000, 5000),
    }),
    'log-retention': logRetentionJob({
      schema: config.schema,
      retentionMs: retention.retention,
      archiveRetentionMs: retention.archive_retention,
      batchSize: retention.batch_size,
      batchPauseMs: retention.batch_pause,
      partitionsAhead: retention.partitions_ahead,
    }),
    backup: backupJob({
      directory: backup.directory,
      retentionMs: backup.retention,
      pgDump: backup.pg_dump,
      pgRestore: backup.pg_restore,
      lockTimeoutMs: backup.lock_timeout,
      timeoutMs: backup.statement_timeout,
    }),
  };
  return JOB_NAMES.map((name) => byName[name]);
}

export function jobTimeouts(config: Config): (job: JobName) => JobTimeouts {
  return (job) => ({ lockTimeoutMs: config.jobs[job].lock_timeout, statementTimeoutMs: config.jobs[job].statement_timeout });
}

export function enabledJobNames(config: Config): JobName[] {
  return JOB_NAMES.filter((name) => config.jobs[name].enabled);
}
