import { IdCursor, readColumns, readCtes, START_COLUMNS, startCtes, START_HOLE_WINDOW, type Hole, type ReadRow as CursorReadRow, type StartRow as CursorStartRow } from './id-cursor.js';
import type { Collector, HistogramSample, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';

/**
 * query_performance_log, read incrementally into the histogram rag_query_duration_seconds{query_type}.
 *
 * The database aggregates: each statement returns, per folded query_type, the cumulative count per
 * bucket, the sum and the rejected count, never the rows, so thousands of log rows per second cost
 * one index range scan on the primary key per poll. The collector only adds those numbers to its process-cumulative state (keepOnFailure:
 * the counters stay true while the database is away).
 *
 * Exactly once, despite ids that commit out of order: the watermark and holes of id-cursor.ts
 * (IdCursor, readCtes(), readColumns()), shared with the embedding_failures collector, as is the
 * batch size that halves after a statement timeout (IdCursor.readOn()).
 */

export interface QueryLogOptions {
  /** Histogram upper bounds in seconds (sorted, without +Inf). */
  buckets: readonly number[];
  /** query_type values kept as labels; the rest are folded into "other". */
  queryTypes: readonly string[];
  /** Milliseconds of history read at start (0 = only rows written after start). */
  lookback: number;
  /** Log rows aggregated per statement; a poll that is behind runs more statements within the first half of its time. */
  batchRows: number;
}

export const OTHER_QUERY_TYPE = 'other';
/**
 * The longest duration_ms observed: 24 hours. Longer (and NULL, negative, NaN, infinite) is counted as
 * rejected: one finite but absurd value (1e308 ms) would otherwise make the histogram's _sum useless
 * until the exporter restarts.
 */
export const MAX_DURATION_MS = 86_400_000;

function families(buckets: readonly number[]) {
  return {
    duration: {
      name: 'rag_query_duration_seconds',
      help: 'Duration of the search service\'s queries as logged in query_performance_log (duration_ms), by query_type; unknown types as "other".',
      type: 'histogram',
      labelNames: ['query_type'],
      buckets,
    },
    rows: {
      name: 'rag_query_log_rows_total',
      help: 'query_performance_log rows read since the exporter started: observed into the histogram, or rejected (duration_ms NULL, negative, not finite or above 24 hours).',
      type: 'counter',
      labelNames: ['result'],
    },
    lag: {
      name: 'rag_query_log_lag_seconds',
      help: 'Age of the newest query_performance_log row the exporter has read (now() - max(ts)); grows when the service stops logging or the exporter falls behind.',
      type: 'gauge',
      labelNames: [],
    },
  } satisfies Record<string, MetricFamily>;
}

/**
 * Where counting starts. $1 lookback in seconds (0 = at the newest row), $2 START_HOLE_WINDOW.
 * The ids of the last $2 below the watermark that are not visible become holes, so rows still in
 * flight at start are counted when they commit. `watermark + 1` is a sentinel that closes the window.
 */
export const QUERY_LOG_START_SQL = `
WITH ${startCtes(
    'query_performance_log',
    `CASE WHEN $1::float8 > 0 THEN
       (SELECT id - 1 FROM query_performance_log
         WHERE ts >= now() - make_interval(secs => $1::float8) ORDER BY ts, id LIMIT 1) END,
     (SELECT max(id) FROM query_performance_log)`,
    '$2',
  )}
SELECT ${START_COLUMNS},
       extract(epoch FROM (SELECT max(ts) FROM query_performance_log))::float8 AS newest_ts
FROM start s`;

/**
 * One incremental read of the histogram with upper bounds `bounds` (seconds). $1 watermark, $2 batch
 * rows, $3/$4 hole bounds, $5 allowed query types.
 *
 * Cost: an index range scan of the primary key from $1 (LIMIT $2, in id order, so the window
 * function needs no sort), one more range scan per hole (none usually), and a one-row backward scan
 * for max(id). No separate "max(id) snapshot" is needed: the statement reads one MVCC snapshot, so a
 * row committed while it runs is invisible to all of it and is found by the next statement (above
 * the new watermark, or in a hole).
 *
 * Aggregation: one group per folded query_type (a handful, so a small hash aggregate), with one
 * cumulative `count(*) FILTER (WHERE seconds <= bound)` per bucket: a bucket's bound is `le`, upper
 * bound inclusive. `duration_ms / 1000` is the same correctly rounded double as the bound (100 ms is
 * 0.1). NULL, negative, non-finite (NaN sorts above Infinity) and durations above MAX_DURATION_MS are
 * rejected: seconds is NULL for them, so they are in count(*) but in no bucket and not in the sum.
 *
 * On the partitioned log (migration 007) each range scan is a merge of one primary-key probe per
 * partition: the cost grows with the days kept, not with the rows.
 */
export function queryLogSql(bounds: readonly number[]): string {
  // The bounds are validated finite numbers, written as float8 literals: constants, not per-row array lookups.
  const buckets = bounds.map((le) => `count(seconds) FILTER (WHERE seconds <= '${String(le)}'::float8)`);
  return `
WITH ${readCtes('query_performance_log', ['query_type', 'duration_ms', 'ts'], { watermark: '$1', batchRows: '$2', holeLo: '$3', holeHi: '$4' })},
seen AS (
  SELECT CASE WHEN query_type = ANY ($5::text[]) THEN query_type ELSE '${OTHER_QUERY_TYPE}' END AS query_type,
         CASE WHEN duration_ms >= 0 AND duration_ms <= ${MAX_DURATION_MS} THEN duration_ms / 1000 END AS seconds,
         id, ts
  FROM (SELECT id, query_type, duration_ms, ts FROM tail
        UNION ALL
        SELECT id, query_type, duration_ms, ts FROM filled) rows
),
grouped AS (
  SELECT query_type,
         count(seconds) AS observed,
         count(*) - count(seconds) AS rejected,
         coalesce(sum(seconds), 0) AS sum,
         ARRAY[${buckets.join(',\n               ')}] AS buckets,
         extract(epoch FROM max(ts))::float8 AS max_ts
  FROM seen
  GROUP BY query_type
)
SELECT (SELECT coalesce(json_agg(g), '[]') FROM grouped g) AS groups,
       ${readColumns('query_performance_log')},
       extract(epoch FROM now())::float8 AS now`;
}

interface StartRow extends CursorStartRow {
  newest_ts: number | null;
}

interface Group {
  query_type: string;
  observed: number;
  rejected: number;
  sum: number;
  /** Cumulative count per bucket. */
  buckets: number[];
  max_ts: number | null;
}

interface ReadRow extends CursorReadRow {
  groups: Group[];
  now: number;
}

interface TypeTotals {
  /** Cumulative counts per bucket (+Inf is count). */
  bucketCounts: number[];
  count: number;
  sum: number;
}

/** The cumulative state of one process: where reading stands and what has been counted. */
export class QueryLogState {
  /** Where reading stands (watermark and holes, the batch size). */
  readonly cursor: IdCursor;
  observed = 0;
  rejected = 0;
  newestTs: number | undefined;
  dbNow: number | undefined;
  private readonly totals = new Map<string, TypeTotals>();

  constructor(private readonly buckets: readonly number[], labelTypes: readonly string[], batchRows: number) {
    this.cursor = new IdCursor('query_performance_log', batchRows);
    for (const type of labelTypes) this.totalsOf(type);
  }

  get started(): boolean {
    return this.cursor.started;
  }

  get watermark(): number | undefined {
    return this.cursor.watermark;
  }

  get holes(): readonly Hole[] {
    return this.cursor.holes;
  }

  applyStart(row: StartRow): void {
    this.cursor.start(row);
    if (row.newest_ts !== null) this.newestTs = row.newest_ts;
  }

  /** Adds one statement's result (the cursor has moved past it). */
  applyRead(row: ReadRow): void {
    for (const group of row.groups) {
      this.count(group);
      if (group.max_ts !== null && (this.newestTs === undefined || group.max_ts > this.newestTs)) this.newestTs = group.max_ts;
    }
    this.dbNow = row.now;
  }

  samples(fam: ReturnType<typeof families>): Sample[] {
    const samples: Sample[] = [...this.totals.entries()].map(([type, t]) => histogramSample(fam.duration.name, type, t));
    samples.push(
      { family: fam.rows.name, labels: { result: 'observed' }, value: this.observed },
      { family: fam.rows.name, labels: { result: 'rejected' }, value: this.rejected },
    );
    if (this.newestTs !== undefined && this.dbNow !== undefined) {
      samples.push({ family: fam.lag.name, value: Math.max(0, this.dbNow - this.newestTs) });
    }
    return samples;
  }

  private count(group: Group): void {
    const totals = this.totalsOf(group.query_type);
    group.buckets.forEach((n, i) => (totals.bucketCounts[i]! += Number(n)));
    totals.count += Number(group.observed);
    totals.sum += group.sum;
    this.observed += Number(group.observed);
    this.rejected += Number(group.rejected);
  }

  private totalsOf(type: string): TypeTotals {
    let totals = this.totals.get(type);
    if (!totals) {
      totals = { bucketCounts: new Array<number>(this.buckets.length).fill(0), count: 0, sum: 0 };
      this.totals.set(type, totals);
    }
    return totals;
  }
}

function histogramSample(family: string, type: string, totals: TypeTotals): HistogramSample {
  return { family, labels: { query_type: type }, bucketCounts: [...totals.bucketCounts], count: totals.count, sum: totals.sum };
}

/** Sorted, de-duplicated, finite bucket bounds. */
export function normalizeBuckets(buckets: readonly number[]): number[] {
  return [...new Set(buckets.filter((b) => Number.isFinite(b)))].sort((a, b) => a - b);
}

export interface QueryLogCollector extends Collector {
  /** The process-cumulative state, for tests and debugging. */
  readonly state: QueryLogState;
  /** Rows per statement now (config, or less after timeouts until reads succeed again). */
  readonly batchRows: number;
}

export function queryLogCollector(options: QueryLogOptions): QueryLogCollector {
  const buckets = normalizeBuckets(options.buckets);
  const fam = families(buckets);
  const labelTypes = [...new Set([...options.queryTypes, OTHER_QUERY_TYPE])];
  const sql = queryLogSql(buckets);
  const state = new QueryLogState(buckets, labelTypes, options.batchRows);

  return {
    name: 'query_log',
    families: Object.values(fam),
    keepOnFailure: true,
    state,
    get batchRows() {
      return state.cursor.batchRows;
    },
    async collect(ctx) {
      if (!(await requireFeature(ctx, 'query_log'))) return [];
      if (!state.started) {
        const [row] = await ctx.query<StartRow>(QUERY_LOG_START_SQL, [options.lookback / 1000, START_HOLE_WINDOW]);
        state.applyStart(row!);
        ctx.log.debug({ watermark: state.watermark, holes: state.holes.length }, 'query log reading starts');
      }
      await state.cursor.readOn(
        ctx,
        async ({ watermark, batchRows, lo, hi }) => (await ctx.query<ReadRow>(sql, [watermark, batchRows, lo, hi, options.queryTypes]))[0]!,
        (row) => state.applyRead(row),
      );
      return state.samples(fam);
    },
  };
}
