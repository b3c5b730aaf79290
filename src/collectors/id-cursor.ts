import { isStatementTimeout } from '../db/errors.js';
import type { Logger } from '../log.js';
import type { CollectContext } from './collector.js';

/**
 * Reading a log table exactly once by its sequence-assigned id, despite ids that commit out of order:
 * the query_log collector's histogram and the embedding_failures collector's failed-call count both
 * read query_performance_log this way.
 *
 * `id` comes from a sequence, so a transaction can hold id 100 uncommitted while id 101 commits and is
 * read: a plain "id > watermark" would lose 100 for good. So the state is a watermark W (the highest id
 * read) plus the "holes" below it: id ranges not seen yet, which are either in-flight rows (they are
 * read when they appear) or permanent gaps (rolled-back inserts, sequence values never used). Each
 * statement reads `id > W` plus the holes and computes the new holes, all in SQL (readCtes(),
 * READ_COLUMNS); IdCursor keeps them between statements.
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
 * Holes are capped (MAX_HOLES); a hole costs one primary-key probe (per partition) per statement
 * until it settles.
 *
 * Reads come in batches (readOn()): a poll that is behind reads on within the first half of its time,
 * and a batch that cannot finish within statement_timeout is halved (see IdCursor.batchRows).
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

/** At start, the ids this far below the watermark are checked for in-flight rows (holes). */
export const START_HOLE_WINDOW = 10_000;
/** Holes kept at most; beyond this the oldest are given up (logged). */
export const MAX_HOLES = 10_000;
/** The smallest batch a timed-out read falls back to. */
export const MIN_BATCH_ROWS = 1000;

/**
 * The CTEs `start` (one row: watermark) and `recent` of a start statement. `watermark` is an SQL
 * expression (it may use the statement's parameters); `window` the parameter holding
 * START_HOLE_WINDOW. The ids of the last `window` below the watermark that are not visible become
 * holes (START_COLUMNS), so rows still in flight at start are read when they commit.
 * `watermark + 1` is a sentinel that closes the window.
 */
export function startCtes(table: string, watermark: string, window: string): string {
  return `start AS (SELECT coalesce(${watermark}, 0) AS watermark),
recent AS (
  SELECT id, lag(id, 1, greatest(s.watermark - ${window}::integer, 0)) OVER (ORDER BY id) AS prev_id
  FROM start s,
       LATERAL (SELECT id FROM ${table}
                 WHERE id > greatest(s.watermark - ${window}::integer, 0) AND id <= s.watermark
                UNION ALL SELECT s.watermark + 1) w
)`;
}

/** The select-list of a start statement (with startCtes(); `s` is the start row). */
export const START_COLUMNS = `s.watermark,
       (SELECT coalesce(json_agg(json_build_array(prev_id + 1, id - 1)), '[]') FROM recent WHERE id > prev_id + 1) AS holes`;

export interface StartRow extends Record<string, unknown> {
  watermark: string;
  holes: [number, number][];
}

/** Where the parameters of one read are: SQL placeholders such as `$1`. */
export interface ReadParams {
  watermark: string;
  batchRows: string;
  holeLo: string;
  holeHi: string;
}

/**
 * The CTEs of one read: `tail` (up to batchRows rows above the watermark, in id order, with prev_id:
 * the primary key's range scan, so the window function needs no sort), `holes`, and `filled` (the rows
 * that appeared in the holes, tagged with their hole's ordinal). `columns` are the table's columns the
 * reader needs besides id. The statement reads one MVCC snapshot, so a row committed while it runs is
 * invisible to all of it and is found by the next statement (above the new watermark, or in a hole).
 */
export function readCtes(table: string, columns: readonly string[], p: ReadParams): string {
  const cols = ['id', ...columns].join(', ');
  return `tail AS (
  SELECT ${cols}, lag(id, 1, ${p.watermark}::bigint) OVER (ORDER BY id) AS prev_id
  FROM (SELECT ${cols} FROM ${table}
         WHERE id > ${p.watermark}::bigint ORDER BY id LIMIT ${p.batchRows}::integer) batch
),
holes AS (
  SELECT h.lo, h.hi, h.ord FROM unnest(${p.holeLo}::bigint[], ${p.holeHi}::bigint[]) WITH ORDINALITY AS h(lo, hi, ord)
),
filled AS MATERIALIZED (
  SELECT h.ord, ${['l.id', ...columns.map((c) => `l.${c}`)].join(', ')}
  FROM holes h
  CROSS JOIN LATERAL (SELECT ${cols} FROM ${table}
                       WHERE id BETWEEN h.lo AND h.hi) l
),
hole_rest AS (
  SELECT ord, prev_id + 1 AS lo, id - 1 AS hi
  FROM (SELECT f.ord, f.id, lag(f.id, 1, h.lo - 1) OVER (PARTITION BY f.ord ORDER BY f.id) AS prev_id
          FROM filled f JOIN holes h USING (ord)
        UNION ALL
        SELECT h.ord, h.hi + 1, max(f.id) FROM filled f JOIN holes h USING (ord) GROUP BY h.ord, h.hi) r
  WHERE id > prev_id + 1
)`;
}

/**
 * The select-list a read needs (with readCtes()): what the holes became, the new gaps of the tail,
 * the table's highest id (a reset shows as ids going backwards), and, listed after the statement's
 * snapshot was taken, this database's other running transactions by virtual id and the snapshot's
 * bounds.
 */
export function readColumns(table: string): string {
  return `(SELECT count(*) FROM filled) AS filled,
       (SELECT coalesce(json_agg(DISTINCT ord), '[]') FROM filled) AS touched,
       (SELECT coalesce(json_agg(r), '[]') FROM hole_rest r) AS hole_rest,
       (SELECT coalesce(json_agg(json_build_array(prev_id + 1, id - 1)), '[]') FROM tail WHERE id > prev_id + 1) AS gaps,
       (SELECT max(id) FROM tail)::text AS tail_max_id,
       (SELECT count(*) FROM tail) AS tail_rows,
       (SELECT max(id) FROM ${table})::text AS table_max_id,
       (SELECT coalesce(json_agg(l.virtualxid), '[]') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'virtualxid' AND l.granted AND l.pid <> pg_backend_pid()
           AND a.datid = (SELECT oid FROM pg_database WHERE datname = current_database())) AS running,
       pg_snapshot_xmin(pg_current_snapshot())::text AS xmin,
       pg_snapshot_xmax(pg_current_snapshot())::text AS xmax`;
}

export interface ReadRow extends Record<string, unknown> {
  /** Rows found in holes. */
  filled: string;
  /** Ordinals (1-based) of the holes that received rows. */
  touched: number[];
  /** What is left of each touched hole. */
  hole_rest: { ord: number; lo: number; hi: number }[];
  /** New gaps between the rows read above the watermark. */
  gaps: [number, number][];
  tail_max_id: string | null;
  /** Rows read above the watermark. */
  tail_rows: string;
  table_max_id: string | null;
  /** Virtual ids of this database's other running transactions, listed after the snapshot was taken. */
  running: string[];
  xmin: string;
  xmax: string;
}

/** The values of one read's parameters (ReadParams). */
export interface ReadValues {
  watermark: number;
  batchRows: number;
  lo: number[];
  hi: number[];
}

/** Where reading stands: the watermark and the holes below it, and how many rows a read asks for. */
export class IdCursor {
  watermark: number | undefined;
  holes: Hole[] = [];
  /**
   * Rows per read now. A batch that cannot finish within statement_timeout would fail every poll and
   * stall reading for good: after a timeout the next reads ask half as many rows (down to
   * MIN_BATCH_ROWS). Every read that succeeds doubles it again, up to `maxBatchRows`: a timeout caused by
   * a lock wait (the usual cause) must not leave reading slow for good.
   */
  batchRows: number;
  /** Statements run (start and reads): the order of the snapshots. */
  private statement = 0;

  /** `table` names the log in log lines; `maxBatchRows` is the configured batch. */
  constructor(
    private readonly table: string,
    private readonly maxBatchRows: number,
  ) {
    this.batchRows = maxBatchRows;
  }

  get started(): boolean {
    return this.watermark !== undefined;
  }

  start(row: StartRow): void {
    this.statement += 1;
    this.watermark = Number(row.watermark);
    this.holes = row.holes.map(([lo, hi]) => ({ lo: Number(lo), hi: Number(hi) }));
  }

  /** The values of a read's parameters. */
  params(): ReadValues {
    return { watermark: this.watermark ?? 0, batchRows: this.batchRows, lo: this.holes.map((h) => h.lo), hi: this.holes.map((h) => h.hi) };
  }

  /**
   * Reads past the cursor and in its holes: `read` runs one statement with the given values, `apply`
   * takes its row once the cursor has moved past it. Behind (a full batch came back), it reads on within
   * the first half of the poll's time left. A failed read moves nothing (the next poll reads it again);
   * a statement timeout halves the batch first.
   */
  async readOn<R extends ReadRow>(ctx: Pick<CollectContext, 'log' | 'deadline' | 'signal'>, read: (values: ReadValues) => Promise<R>, apply: (row: R) => void): Promise<void> {
    const readUntil = Date.now() + (ctx.deadline - Date.now()) / 2;
    for (;;) {
      const values = this.params();
      let row: R;
      try {
        row = await read(values);
      } catch (err) {
        if (isStatementTimeout(err) && this.batchRows > MIN_BATCH_ROWS) {
          this.batchRows = Math.max(MIN_BATCH_ROWS, Math.floor(this.batchRows / 2));
          ctx.log.warn({ batchRows: this.batchRows }, `${this.table} read timed out; reading smaller batches`);
        }
        throw err;
      }
      this.advance(row, ctx.log);
      apply(row);
      if (this.batchRows < this.maxBatchRows) {
        this.batchRows = Math.min(this.maxBatchRows, this.batchRows * 2);
        ctx.log.debug({ batchRows: this.batchRows }, `${this.table} read succeeded; reading larger batches again`);
      }
      if (Number(row.tail_rows) < values.batchRows || Date.now() >= readUntil || ctx.signal.aborted) return;
    }
  }

  /** Moves the cursor past one read's result. */
  private advance(row: ReadRow, log: Logger): void {
    this.statement += 1;
    if (row.tail_max_id !== null && Number(row.tail_max_id) > (this.watermark ?? 0)) this.watermark = Number(row.tail_max_id);
    this.updateHoles(row);
    this.detectReset(row, log);
    this.capHoles(log);
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
    for (const [lo, hi] of row.gaps) holes.push({ lo: Number(lo), hi: Number(hi) });
    // `running` was listed after this statement's snapshot, so after every hole was found: a
    // transaction that could hold a hole's ids and is not listed has ended, and the next
    // statement's snapshot sees its rows.
    const running = new Set(row.running);
    const xmin = BigInt(row.xmin);
    const xmax = BigInt(row.xmax);
    this.holes = holes
      .map((hole) => this.settle(hole, running, xmax))
      .filter((hole) => hole.horizon === undefined || xmin < hole.horizon)
      .sort((a, b) => a.lo - b.lo);
  }

  private settle(hole: Hole, running: ReadonlySet<string>, xmax: bigint): Hole {
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
      log.warn({ watermark: this.watermark, tableMaxId: tableMax }, `${this.table} ids went backwards (table reset?); reading on from its newest row`);
      this.watermark = tableMax;
      this.holes = [];
    }
  }

  private capHoles(log: Logger): void {
    if (this.holes.length <= MAX_HOLES) return;
    const dropped = this.holes.splice(0, this.holes.length - MAX_HOLES);
    log.warn({ dropped: dropped.length, below: dropped.at(-1)!.hi }, `too many unresolved ${this.table} id gaps; giving up the oldest`);
  }
}
