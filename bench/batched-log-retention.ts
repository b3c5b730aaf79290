import type pg from 'pg';
import { quoteQualified } from '../src/db/identifiers.js';
import { JobFailure, type Job, type JobContext } from '../src/jobs/job.js';
import { sleep } from '../src/sleep.js';

/**
 * The previous design's log-retention (before the partitioned log), kept for the benchmark's side-by-side
 * run against an unpartitioned log (sql/migrations 001-006). It is not used by the exporter.
 *
 * Moves query_performance_log rows older than `retention` into query_performance_archive, then deletes
 * archived rows older than `archiveRetention`. The search service writes to the log all the time, so
 * the work is cut into batches of `batchSize` rows, each its own transaction (one statement): row locks
 * on at most one batch, released at every commit, and a pause between batches. New rows are never
 * touched (they are younger than the horizon) and rows another session has locked are skipped
 * (SKIP LOCKED) rather than waited for. The horizon is fixed once at the start of the run.
 */
export interface BatchedLogRetentionOptions {
  schema: string;
  retentionMs: number;
  archiveRetentionMs: number;
  batchSize: number;
  batchPauseMs: number;
}

const COLUMNS = 'id, query_type, duration_ms, rows_returned, ts, query_hash, error';

export function batchedLogRetentionJob(options: BatchedLogRetentionOptions): Job {
  const log = quoteQualified(options.schema, 'query_performance_log');
  const archive = quoteQualified(options.schema, 'query_performance_archive');
  const moveSql = `WITH moved AS (
  DELETE FROM ${log} WHERE id IN (
    SELECT id FROM ${log} WHERE ts < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)
  RETURNING ${COLUMNS})
INSERT INTO ${archive} (${COLUMNS}) SELECT ${COLUMNS} FROM moved`;
  const expireSql = `DELETE FROM ${archive} WHERE id IN (
  SELECT id FROM ${archive} WHERE ts < $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED)`;

  return {
    name: 'log-retention',
    async plan(ctx) {
      const { rows } = await ctx.client.query<{ horizon: Date; archive_horizon: Date; to_move: string; to_expire: string }>(
        `WITH h AS (SELECT now() - make_interval(secs => $1 / 1000.0) AS horizon, now() - make_interval(secs => $2 / 1000.0) AS archive_horizon)
         SELECT h.horizon, h.archive_horizon,
                (SELECT count(*) FROM ${log} WHERE ts < h.horizon) AS to_move,
                (SELECT count(*) FROM ${archive} WHERE ts < h.archive_horizon) AS to_expire
           FROM h`,
        [options.retentionMs, options.archiveRetentionMs],
      );
      const { horizon, archive_horizon: archiveHorizon } = rows[0]!;
      const toMove = Number(rows[0]!.to_move);
      const toExpire = Number(rows[0]!.to_expire);
      const batches = (n: number) => Math.ceil(n / options.batchSize);
      return {
        needed: toMove + toExpire > 0,
        reason: `${toMove} log row(s) older than ${horizon.toISOString()} to archive, ${toExpire} archived row(s) older than ${archiveHorizon.toISOString()} to delete, in batches of ${options.batchSize}`,
        statements: [
          `-- repeated about ${batches(toMove)} time(s), $1 = '${horizon.toISOString()}', $2 = ${options.batchSize}, ${options.batchPauseMs} ms apart:\n${moveSql}`,
          `-- repeated about ${batches(toExpire)} time(s), $1 = '${archiveHorizon.toISOString()}', $2 = ${options.batchSize}:\n${expireSql}`,
        ],
        details: { horizon: horizon.toISOString(), archive_horizon: archiveHorizon.toISOString(), to_move: toMove, to_expire: toExpire, batch_size: options.batchSize },
        execute: async () => {
          const moved = await inBatches(ctx, options, 'archive', moveSql, horizon);
          const expired = await inBatches(ctx, options, 'expire', expireSql, archiveHorizon, moved);
          return {
            message: `archived ${moved.rows} log row(s) in ${moved.batches} batch(es), deleted ${expired.rows} archived row(s) in ${expired.batches} batch(es)`,
            details: { archived: moved.rows, archive_batches: moved.batches, expired: expired.rows, expire_batches: expired.batches, longest_batch_ms: Math.max(moved.longestMs, expired.longestMs) },
          };
        },
      };
    },
  };
}

interface BatchTotals {
  rows: number;
  batches: number;
  longestMs: number;
}

/** Runs one batch statement until a batch comes back short; each batch commits on its own. */
async function inBatches(
  ctx: JobContext,
  options: BatchedLogRetentionOptions,
  step: string,
  sql: string,
  horizon: Date,
  before?: BatchTotals,
): Promise<BatchTotals> {
  const totals: BatchTotals = { rows: 0, batches: 0, longestMs: 0 };
  for (;;) {
    if (ctx.signal.aborted) throw new JobFailure(`interrupted by shutdown after ${totals.batches} ${step} batch(es)`, progressDetails(step, totals, before));
    const startedAt = new Date();
    let count: number;
    try {
      count = await runBatch(ctx.client, sql, horizon, options.batchSize);
    } catch (err) {
      throw Object.assign(err as Error, { details: progressDetails(step, totals, before) });
    }
    const finishedAt = new Date();
    if (count === 0) break;
    totals.rows += count;
    totals.batches += 1;
    totals.longestMs = Math.max(totals.longestMs, finishedAt.getTime() - startedAt.getTime());
    ctx.progress?.({ step, startedAt, finishedAt, rows: count });
    if (count < options.batchSize) break;
    await sleep(options.batchPauseMs, ctx.signal);
  }
  return totals;
}

async function runBatch(client: pg.Client, sql: string, horizon: Date, batchSize: number): Promise<number> {
  const result = await client.query(sql, [horizon, batchSize]);
  return result.rowCount ?? 0;
}

function progressDetails(step: string, totals: BatchTotals, before?: BatchTotals): Record<string, unknown> {
  return step === 'archive'
    ? { archived: totals.rows, archive_batches: totals.batches }
    : { archived: before?.rows ?? 0, archive_batches: before?.batches ?? 0, expired: totals.rows, expire_batches: totals.batches };
}
