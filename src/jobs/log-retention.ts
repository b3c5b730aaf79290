import { isLockTimeout } from '../db/errors.js';
import { quoteQualified } from '../db/identifiers.js';
import { JobFailure, type Job, type JobContext } from './job.js';
import { sleep } from '../sleep.js';

/**
 * The partitioned query log's upkeep (sql/migrations/007_partitioned_query_log.sql), in this order:
 *
 * 1. finishes an online conversion of an unpartitioned log if one is under way (`batchSize` rows per
 *    transaction, newest first, `batchPauseMs` apart);
 * 2. keeps the daily partitions `partitionsAhead` days ahead and moves rows that landed in a DEFAULT
 *    partition (timestamps outside every partition) into daily partitions;
 * 3. archives every day of the log older than `retention`: DETACH from the log, ATTACH to the archive,
 *    whole partitions, no row copied (a day leaves once all of it is past the horizon, so rows stay
 *    up to one day longer than `retention`);
 * 4. drops every day of the archive older than `archiveRetention`;
 * 5. retires what is left in the DEFAULT partitions past the horizons (rows at -infinity), row by row.
 *
 * DETACH takes ACCESS EXCLUSIVE on the log for a moment; the job's lock_timeout bounds how long the
 * service's inserts can queue behind it, and a day whose lock is not granted is tried again
 * (LOCK_ATTEMPTS times, then the job fails and the next run picks it up).
 */
export interface LogRetentionOptions {
  schema: string;
  retentionMs: number;
  archiveRetentionMs: number;
  /** Rows per transaction where rows are moved (conversion, DEFAULT partition leftovers). */
  batchSize: number;
  batchPauseMs: number;
  /** Days of partitions kept ahead of today (UTC). */
  partitionsAhead: number;
}

/** Days a DEFAULT partition is split into per run. */
export const MAX_SPLIT_DAYS = 400;
/** Tries of one DETACH/DROP that hits lock_timeout before the run fails. */
export const LOCK_ATTEMPTS = 5;

interface Day {
  partition: string;
  lo: Date;
  hi: Date;
  rows: number;
}

export function logRetentionJob(options: LogRetentionOptions): Job {
  const q = (name: string) => quoteQualified(options.schema, name);
  const partitionsSql = (parent: string) => `SELECT p.partition::text AS partition, p.lo, p.hi, greatest(c.reltuples, 0)::bigint AS rows
  FROM ${q('query_log_partitions')}('${parent}'::regclass) p JOIN pg_class c ON c.oid = p.partition
 WHERE NOT p.is_default AND p.hi <= $1 ORDER BY p.lo`;
  const convertSql = `SELECT ${q('query_log_convert_step')}($1::int) AS moved`;
  const maintainSql = `SELECT ${q('query_log_maintain_partitions')}($1::int, $2::int) AS created`;
  const archiveSql = `SELECT ${q('query_log_archive_partition')}($1::regclass, $2::timestamptz) AS rows`;
  const dropSql = `SELECT ${q('query_log_drop_archive_partition')}($1::regclass, $2::timestamptz) AS rows`;
  const retireSql = `SELECT ${q('query_log_retire_default_rows')}($1::timestamptz, $2::timestamptz, $3::int) AS rows`;

  return {
    name: 'log-retention',
    async plan(ctx) {
      const { rows } = await ctx.client.query<{ horizon: Date; archive_horizon: Date; converting: boolean; default_rows: string }>(
        `WITH h AS (SELECT now() - make_interval(secs => $1 / 1000.0) AS horizon, now() - make_interval(secs => $2 / 1000.0) AS archive_horizon)
         SELECT h.horizon, h.archive_horizon,
                to_regclass('${options.schema}.query_performance_log_unpartitioned') IS NOT NULL
                  OR to_regclass('${options.schema}.query_performance_archive_unpartitioned') IS NOT NULL AS converting,
                (SELECT count(*) FROM (SELECT 1 FROM ${q('query_performance_log_default')} LIMIT 100000) d) AS default_rows
           FROM h`,
        [options.retentionMs, options.archiveRetentionMs],
      );
      const { horizon, archive_horizon: archiveHorizon, converting } = rows[0]!;
      const defaultRows = Number(rows[0]!.default_rows);
      const toArchive = (await ctx.client.query<Day>(partitionsSql('query_performance_log'), [horizon])).rows;
      const toDrop = (await ctx.client.query<Day>(partitionsSql('query_performance_archive'), [archiveHorizon])).rows;
      const sum = (days: Day[]) => days.reduce((n, d) => n + Number(d.rows), 0);
      const reason =
        `${toArchive.length} log day(s) older than ${horizon.toISOString()} to archive (about ${sum(toArchive)} rows), ` +
        `${toDrop.length} archived day(s) older than ${archiveHorizon.toISOString()} to drop (about ${sum(toDrop)} rows)` +
        (defaultRows > 0 ? `, ${defaultRows}${defaultRows >= 100000 ? '+' : ''} row(s) in the log's DEFAULT partition to place` : '') +
        (converting ? ', an unpartitioned log still being converted' : '') +
        `; partitions kept ${options.partitionsAhead} day(s) ahead`;
      return {
        // Partitions ahead are always kept: the run is never "nothing to do" for them.
        needed: true,
        reason,
        statements: [
          ...(converting ? [`-- repeated until it returns 0, ${options.batchPauseMs} ms apart:\n${convertSql.replace('$1::int', String(options.batchSize))}`] : []),
          maintainSql.replace('$1::int', String(options.partitionsAhead)).replace('$2::int', String(MAX_SPLIT_DAYS)),
          ...toArchive.map((d) => archiveSql.replace('$1::regclass', `'${d.partition}'`).replace('$2::timestamptz', `'${horizon.toISOString()}'`)),
          ...toDrop.map((d) => dropSql.replace('$1::regclass', `'${d.partition}'`).replace('$2::timestamptz', `'${archiveHorizon.toISOString()}'`)),
          `-- repeated until it returns 0:\n${retireSql}`,
        ],
        details: {
          horizon: horizon.toISOString(),
          archive_horizon: archiveHorizon.toISOString(),
          days_to_archive: toArchive.length,
          days_to_drop: toDrop.length,
          default_rows: defaultRows,
          converting,
        },
        execute: async () => {
          const totals = { converted: 0, partitions_created: 0, days_archived: 0, rows_archived: 0, days_dropped: 0, rows_dropped: 0, default_rows_retired: 0 };
          const step = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
            if (ctx.signal.aborted) throw new JobFailure(`interrupted by shutdown before ${name}`, { ...totals });
            const startedAt = new Date();
            try {
              return await fn();
            } catch (err) {
              if (err instanceof JobFailure) throw err;
              throw Object.assign(err as Error, { details: { ...totals } });
            } finally {
              ctx.progress?.({ step: name, startedAt, finishedAt: new Date() });
            }
          };
          if (converting) totals.converted = await step('convert', () => repeat(ctx, options, convertSql, [options.batchSize]));
          totals.partitions_created = await step('partitions', async () =>
            Number((await ctx.client.query<{ created: number }>(maintainSql, [options.partitionsAhead, MAX_SPLIT_DAYS])).rows[0]!.created),
          );
          // Listed again: the split may have made days out of DEFAULT rows.
          for (const day of (await ctx.client.query<Day>(partitionsSql('query_performance_log'), [horizon])).rows) {
            totals.rows_archived += await step('archive', () => withLockRetries(ctx, archiveSql, [day.partition, horizon]));
            totals.days_archived += 1;
          }
          for (const day of (await ctx.client.query<Day>(partitionsSql('query_performance_archive'), [archiveHorizon])).rows) {
            totals.rows_dropped += await step('expire', () => withLockRetries(ctx, dropSql, [day.partition, archiveHorizon]));
            totals.days_dropped += 1;
          }
          totals.default_rows_retired = await step('default', () => repeat(ctx, options, retireSql, [horizon, archiveHorizon, options.batchSize]));
          return {
            message:
              `archived ${totals.days_archived} day(s) of the log (about ${totals.rows_archived} rows), dropped ${totals.days_dropped} archived day(s) ` +
              `(about ${totals.rows_dropped} rows), ${totals.partitions_created} partition(s) created, ${totals.default_rows_retired} DEFAULT row(s) retired` +
              (converting ? `, ${totals.converted} row(s) converted` : ''),
            details: totals,
          };
        },
      };
    },
  };
}

/** Runs a function returning a row count until it returns 0; each call commits on its own. */
async function repeat(ctx: JobContext, options: LogRetentionOptions, sql: string, params: unknown[]): Promise<number> {
  let total = 0;
  for (;;) {
    if (ctx.signal.aborted) throw new JobFailure(`interrupted by shutdown after ${total} row(s)`, { rows: total });
    const { rows } = await ctx.client.query<{ [key: string]: string }>(sql, params);
    const n = Number(Object.values(rows[0]!)[0]);
    if (n <= 0) return total;
    total += n;
    await sleep(options.batchPauseMs, ctx.signal);
  }
}

/** One DETACH/ATTACH or DROP; a lock_timeout is tried again after a pause (the day stays where it was). */
async function withLockRetries(ctx: JobContext, sql: string, params: unknown[]): Promise<number> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      const { rows } = await ctx.client.query<{ rows: string }>(sql, params);
      return Math.max(0, Number(rows[0]!.rows));
    } catch (err) {
      if (!isLockTimeout(err) || attempt >= LOCK_ATTEMPTS || ctx.signal.aborted) throw err;
      ctx.log.warn({ partition: params[0], attempt }, 'query log partition: lock not granted within lock_timeout; trying again');
      await sleep(1000 * attempt, ctx.signal);
    }
  }
}
