import { isStatementTimeout } from '../db/errors.js';
import type { Logger } from '../log.js';
import type { Collector, CollectContext, HistogramSample, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';

/**
 * query_performance_log, read incrementally into the histogram rag_query_duration_seconds{query_type}.
 *
 * The database aggregates: each statement returns, per folded query_type, the cumulative count per
 * bucket, the sum and the rejected count, never the rows, so thousands of log rows per second cost
 * one index range scan on the primary key per poll. The collector only adds those numbers to its process-cumulative state (keepOnFailure:
 * the counters stay true while the database is away).
 *
 * Exactly once, despite ids that commit out of order. `id` comes from a sequence, so a transaction
 * can hold id 100 uncommitted while id 101 commits and is read: a plain "id > watermark" would lose
 * 100 for good. So the state is a watermark W (the highest id counted) plus the "holes" below it:
 * id ranges not seen yet, which are either in-flight rows (they are counted when they appear) or
 * permanent gaps (rolled-back inserts, sequence values never used). Each statement scans
 * `id > W` plus the holes, counts what it finds, and computes the new holes, all in SQL.
 *
 * A hole is dropped as permanent once no transaction that could have taken one of its ids can still
 * be running. Its ids were taken before the statement that found it (they are below a visible id,
 * and the sequence is monotonic), so by transactions that had started by then. Such a transaction
 * may have no transaction id yet: nextval() assigns none, and the row gets one only when it is
 * inserted, after routing to its partition (which can wait for a partition's lock for as long as
 * the lock is held). So snapshots alone (xmin, xmax) cannot see it, and no delay is long enough;
 * every transaction has a virtual transaction id from its start, listed in pg_locks until it
 * ends (after its commit is visible). So: the statement that finds a hole also lists the running
 * transactions of this database (their virtual ids); a hole waits until a later statement no
 * longer lists any of them. A statement after that one (a fresh snapshot) sees what they committed;
 * it stamps the hole with its snapshot's xmax, and once a snapshot's xmin reaches the stamp the hole
 * is dropped (that also covers a writer that PREPAREd: its virtual id ends, its xid does not).
 * Holes never hold the rest of the log back; a long transaction in this database (even read-only,
 * e.g. pg_dump) or a long writing transaction anywhere on the server keeps the holes found while it
 * runs open until it ends.
 * Requires the sequence's default CACHE 1 (per-backend caches hand out ids out of order). On a
 * standby, pg_locks lists only the standby's own transactions: a primary writer stalled between
 * nextval() and its row's insert is invisible there, so a standby could drop its hole too early;
 * a primary cannot.
 * Holes are capped (MAX_HOLES); a hole costs one primary-key probe per statement until it settles.
 */

/** An id range below the watermark not seen yet: rows still in flight, or a permanent gap. */
export interface Hole {
  lo: number;
  hi: number;
  /** Virtual ids of the transactions that may still hold its ids (undefined: not listed yet). */
  waiting?: string[];
  /** The statement that found `waiting` empty; the statements after it stamp the hole. */
  cleared?: number;
  /** pg_snapshot_xmax of the stamping statement's snapshot. */
  horizon?: bigint;
}

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
/** At start, the ids this far below the watermark are checked for in-flight rows (holes). */
export const START_HOLE_WINDOW = 10_000;
/** The smallest batch a timed-out read falls back to. */
export const MIN_BATCH_ROWS = 1000;
/**
 * The longest duration_ms observed: 24 hours. Longer (and NULL, negative, NaN, infinite) is counted as
 * rejected: one finite but absurd value (1e308 ms) would otherwise make the histogram's _sum useless
 * until the exporter restarts.
 */
export const MAX_DURATION_MS = 86_400_000;
/** Holes kept at most; beyond this the oldest are given up (logged). */
export const MAX_HOLES = 10_000;

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
WITH start AS (
  SELECT coalesce(CASE WHEN $1::float8 > 0 THEN
                    (SELECT id - 1 FROM query_performance_log
                      WHERE ts >= now() - make_interval(secs => $1::float8) ORDER BY ts, id LIMIT 1) END,
                  (SELECT max(id) FROM query_performance_log),
                  0) AS watermark
),
recent AS (
  SELECT id, lag(id, 1, greatest(s.watermark - $2::integer, 0)) OVER (ORDER BY id) AS prev_id
  FROM start s,
       LATERAL (SELECT id FROM query_performance_log
                 WHERE id > greatest(s.watermark - $2::integer, 0) AND id <= s.watermark
                UNION ALL SELECT s.watermark + 1) w
)
SELECT s.watermark,
       (SELECT coalesce(json_agg(json_build_array(prev_id + 1, id - 1)), '[]') FROM recent WHERE id > prev_id + 1) AS holes,
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
WITH tail AS (
  SELECT id, query_type, duration_ms, ts, lag(id, 1, $1::bigint) OVER (ORDER BY id) AS prev_id
  FROM (SELECT id, query_type, duration_ms, ts FROM query_performance_log
         WHERE id > $1::bigint ORDER BY id LIMIT $2::integer) batch
),
holes AS (
  SELECT h.lo, h.hi, h.ord FROM unnest($3::bigint[], $4::bigint[]) WITH ORDINALITY AS h(lo, hi, ord)
),
filled AS MATERIALIZED (
  SELECT h.ord, l.id, l.query_type, l.duration_ms, l.ts
  FROM holes h
  CROSS JOIN LATERAL (SELECT id, query_type, duration_ms, ts FROM query_performance_log
                       WHERE id BETWEEN h.lo AND h.hi) l
),
seen AS (
  SELECT CASE WHEN query_type = ANY ($5::text[]) THEN query_type ELSE '${OTHER_QUERY_TYPE}' END AS query_type,
         CASE WHEN duration_ms >= 0 AND duration_ms <= ${MAX_DURATION_MS} THEN duration_ms / 1000 END AS seconds,
         id, ts, gap_lo
  FROM (SELECT id, query_type, duration_ms, ts, CASE WHEN id > prev_id + 1 THEN prev_id + 1 END AS gap_lo FROM tail
        UNION ALL
        SELECT id, query_type, duration_ms, ts, NULL FROM filled) rows
),
grouped AS (
  SELECT query_type,
         count(seconds) AS observed,
         count(*) - count(seconds) AS rejected,
         coalesce(sum(seconds), 0) AS sum,
         ARRAY[${buckets.join(',\n               ')}] AS buckets,
         max(id) AS max_id,
         extract(epoch FROM max(ts))::float8 AS max_ts,
         array_agg(gap_lo) FILTER (WHERE gap_lo IS NOT NULL) AS gap_lo,
         array_agg(id - 1) FILTER (WHERE gap_lo IS NOT NULL) AS gap_hi
  FROM seen
  GROUP BY query_type
),
hole_rest AS (
  SELECT ord, prev_id + 1 AS lo, id - 1 AS hi
  FROM (SELECT f.ord, f.id, lag(f.id, 1, h.lo - 1) OVER (PARTITION BY f.ord ORDER BY f.id) AS prev_id
          FROM filled f JOIN holes h USING (ord)
        UNION ALL
        SELECT h.ord, h.hi + 1, max(f.id) FROM filled f JOIN holes h USING (ord) GROUP BY h.ord, h.hi) r
  WHERE id > prev_id + 1
)
SELECT (SELECT coalesce(json_agg(g), '[]') FROM grouped g) AS groups,
       (SELECT count(*) FROM filled) AS filled,
       (SELECT coalesce(json_agg(DISTINCT ord), '[]') FROM filled) AS touched,
       (SELECT coalesce(json_agg(r), '[]') FROM hole_rest r) AS hole_rest,
       (SELECT max(id) FROM query_performance_log) AS table_max_id,
       (SELECT coalesce(json_agg(l.virtualxid), '[]') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
           AND a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS running,
       pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
       pg_snapshot_xmax(pg_current_snapshot())::text AS xmax,
       extract(epoch FROM now())::float8 AS now`;
}

interface StartRow extends Record<string, unknown> {
  watermark: string;
  holes: [number, number][];
  newest_ts: number | null;
}

interface Group {
  query_type: string;
  observed: number;
  rejected: number;
  sum: number;
  /** Cumulative count per bucket. */
  buckets: number[];
  max_id: number;
  max_ts: number | null;
  gap_lo: number[] | null;
  gap_hi: number[] | null;
}

interface ReadRow extends Record<string, unknown> {
  groups: Group[];
  filled: string;
  touched: number[];
  hole_rest: { ord: number; lo: number; hi: number }[];
  table_max_id: string | null;
  /** Virtual ids of this database's other running transactions, listed after the snapshot was taken. */
  running: string[];
  xmin: string;
  xmax: string;
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
  watermark: number | undefined;
  holes: Hole[] = [];
  observed = 0;
  rejected = 0;
  newestTs: number | undefined;
  dbNow: number | undefined;
  /** Statements run (start and reads): the order of the snapshots. */
  private statement = 0;
  private readonly totals = new Map<string, TypeTotals>();

  constructor(private readonly buckets: readonly number[], labelTypes: readonly string[]) {
    for (const type of labelTypes) this.totalsOf(type);
  }

  get started(): boolean {
    return this.watermark !== undefined;
  }

  applyStart(row: StartRow): void {
    this.statement += 1;
    this.watermark = Number(row.watermark);
    this.holes = row.holes.map(([lo, hi]) => ({ lo: Number(lo), hi: Number(hi) }));
    if (row.newest_ts !== null) this.newestTs = row.newest_ts;
  }

  /** Parameters $1, $3 and $4 of queryLogSql(). */
  readParams(): { watermark: number; lo: number[]; hi: number[] } {
    return { watermark: this.watermark ?? 0, lo: this.holes.map((h) => h.lo), hi: this.holes.map((h) => h.hi) };
  }

  /** Adds one statement's result; returns how many rows it read above the watermark. */
  applyRead(row: ReadRow, log: Logger): number {
    this.statement += 1;
    let seen = 0;
    for (const group of row.groups) {
      seen += Number(group.observed) + Number(group.rejected);
      this.count(group);
      if (group.max_id > (this.watermark ?? 0)) this.watermark = Number(group.max_id);
      if (group.max_ts !== null && (this.newestTs === undefined || group.max_ts > this.newestTs)) this.newestTs = group.max_ts;
    }
    this.dbNow = row.now;
    this.updateHoles(row);
    this.detectReset(row, log);
    this.capHoles(log);
    return seen - Number(row.filled);
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

  /** Replaces the holes that received rows by what remains of them, adds the new gaps, drops the settled. */
  private updateHoles(row: ReadRow): void {
    const touched = new Set(row.touched.map(Number));
    const rest = new Map<number, Hole[]>();
    for (const r of row.hole_rest) {
      const parent = this.holes[Number(r.ord) - 1]!;
      const list = rest.get(Number(r.ord)) ?? [];
      list.push({ ...parent, lo: Number(r.lo), hi: Number(r.hi) });
      rest.set(Number(r.ord), list);
    }
    const holes = this.holes.flatMap((hole, i) => (touched.has(i + 1) ? (rest.get(i + 1) ?? []) : [hole]));
    for (const group of row.groups) {
      (group.gap_lo ?? []).forEach((lo, i) => holes.push({ lo: Number(lo), hi: Number(group.gap_hi![i]) }));
    }
    // `running` was listed after this statement's snapshot, so after every hole was found: a
    // transaction that could hold a hole's ids and is not listed has ended, and the next
    // statement's snapshot sees its rows.
    const running = new Set(row.running);
    const xmin = BigInt(row.xmin);
    const xmax = BigInt(row.xmax);
    this.holes = holes
      .map((hole) => this.advance(hole, running, xmax))
      .filter((hole) => hole.horizon === undefined || xmin < hole.horizon)
      .sort((a, b) => a.lo - b.lo);
  }

  private advance(hole: Hole, running: ReadonlySet<string>, xmax: bigint): Hole {
    if (hole.cleared === undefined) {
      const waiting = (hole.waiting ?? [...running]).filter((vxid) => running.has(vxid));
      return waiting.length > 0 ? { ...hole, waiting } : { ...hole, waiting: [], cleared: this.statement };
    }
    if (hole.horizon === undefined && hole.cleared < this.statement) return { ...hole, horizon: xmax };
    return hole;
  }

  /** A table emptied with RESTART IDENTITY or restored from a backup: start again from its newest row. */
  private detectReset(row: ReadRow, log: Logger): void {
    const tableMax = row.table_max_id === null ? null : Number(row.table_max_id);
    if (tableMax !== null && this.watermark !== undefined && tableMax < this.watermark) {
      log.warn({ watermark: this.watermark, tableMaxId: tableMax }, 'query_performance_log ids went backwards (table reset?); reading on from its newest row');
      this.watermark = tableMax;
      this.holes = [];
    }
  }

  private capHoles(log: Logger): void {
    if (this.holes.length <= MAX_HOLES) return;
    const dropped = this.holes.splice(0, this.holes.length - MAX_HOLES);
    log.warn({ dropped: dropped.length, below: dropped.at(-1)!.hi }, 'too many unresolved query_performance_log id gaps; giving up the oldest');
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
  const state = new QueryLogState(buckets, labelTypes);

  // A batch that cannot finish within statement_timeout would fail every poll and stall reading for
  // good: after a timeout the next statements read half as many rows (down to MIN_BATCH_ROWS). Every
  // read that succeeds doubles it again, up to the configured size: a timeout caused by a lock wait
  // (the usual cause) must not leave reading slow for good.
  let batchRows = options.batchRows;

  async function readOnce({ query, log }: CollectContext): Promise<number> {
    const { watermark, lo, hi } = state.readParams();
    try {
      const [row] = await query<ReadRow>(sql, [watermark, batchRows, lo, hi, options.queryTypes]);
      const read = state.applyRead(row!, log);
      if (batchRows < options.batchRows) {
        batchRows = Math.min(options.batchRows, batchRows * 2);
        log.debug({ batchRows }, 'query log read succeeded; reading larger batches again');
      }
      return read;
    } catch (err) {
      if (isStatementTimeout(err) && batchRows > MIN_BATCH_ROWS) {
        batchRows = Math.max(MIN_BATCH_ROWS, Math.floor(batchRows / 2));
        log.warn({ batchRows }, 'query log read timed out; reading smaller batches');
      }
      throw err;
    }
  }

  return {
    name: 'query_log',
    families: Object.values(fam),
    keepOnFailure: true,
    state,
    get batchRows() {
      return batchRows;
    },
    async collect(ctx) {
      if (!(await requireFeature(ctx, 'query_log'))) return [];
      if (!state.started) {
        const [row] = await ctx.query<StartRow>(QUERY_LOG_START_SQL, [options.lookback / 1000, START_HOLE_WINDOW]);
        state.applyStart(row!);
        ctx.log.debug({ watermark: state.watermark, holes: state.holes.length }, 'query log reading starts');
      }
      // Behind (a full batch came back): read on within the first half of the poll's time left.
      const readUntil = Date.now() + (ctx.deadline - Date.now()) / 2;
      while ((await readOnce(ctx)) >= batchRows && Date.now() < readUntil && !ctx.signal.aborted);
      return state.samples(fam);
    },
  };
}
