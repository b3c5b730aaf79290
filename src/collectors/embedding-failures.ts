import type { Collector, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';
import { NO_EMBEDDING } from './embeddings.js';
import { IdCursor, readColumns, readCtes, START_COLUMNS, startCtes, START_HOLE_WINDOW, type ReadRow, type StartRow } from './id-cursor.js';

/**
 * Failed embedding generations, as the database shows them, counted once each: the specification's
 * `embedding_generation_failures_total` (a recording rule of alerts/rules sums the reasons per database).
 *
 * - `query_log`: rows of query_performance_log whose query_type is `embedding_generation` and whose error
 *   is set (the search service logs its embedding calls there). Read with the query_log collector's id
 *   cursor (id-cursor.ts: a watermark plus the holes of ids not committed yet), so a row is counted
 *   once however often the collector polls, also when its transaction commits after a higher id was
 *   read, and log retention deleting old rows never makes the counter go down.
 * - `missing_embedding`: documents still without any row in chunk_embeddings once they are older than the
 *   grace period. Counted when their created_at crosses now() - grace: a cursor on that cutoff, so each
 *   document once (one embedded later stays counted: it did miss the grace period).
 *
 * The first poll counts what is already there (every failed row in the log, every document past the grace
 * period without an embedding): replicas started at different times then agree on the value, so their
 * series can be deduplicated with max. Prometheus reads a restart as a counter reset and increase()
 * ignores a series' first value, so a start alone never raises an alert.
 *
 * Cost: the first poll counts the failed rows of the whole log once (a sequential scan of
 * query_performance_log) and the documents past the grace period without an embedding once (an
 * anti-join over the corpus); later polls read only log rows past the cursor and in its holes (primary
 * key range scans, at most query_log.batch_rows per statement, halved after a statement timeout) and the documents created between two cutoffs
 * (idx_documents_created_at).
 */
const FAMILIES = {
  failures: {
    name: 'rag_embedding_generation_failures_total',
    help: 'Failed embedding generations seen in the database, each once: query_performance_log rows of query_type embedding_generation with an error (reason "query_log") and documents left without an embedding past the grace period (reason "missing_embedding").',
    type: 'counter',
    labelNames: ['reason'],
  },
} satisfies Record<string, MetricFamily>;

export const EMBEDDING_GENERATION_QUERY_TYPE = 'embedding_generation';

export interface EmbeddingFailuresOptions {
  /** How long a new document may stay without an embedding before it counts as a failure (ms). */
  gracePeriodMs: number;
  /** Log rows read per statement (query_log.batch_rows, as the query_log collector); halved after a statement timeout. */
  batchRows: number;
}

export interface EmbeddingFailuresCollector extends Collector {
  /** Log rows per statement now (the configured batch, or less after timeouts until reads succeed again). */
  readonly batchRows: number;
}

/**
 * Where reading the log starts: at its newest row, counting the failed rows up to it. $1
 * START_HOLE_WINDOW, $2 the query_type. The ids just below the start that are not visible yet are
 * holes, read when they commit.
 */
export const EMBEDDING_FAILURES_START_SQL = `
WITH ${startCtes('query_performance_log', '(SELECT max(id) FROM query_performance_log)', '$1')}
SELECT ${START_COLUMNS},
       (SELECT count(*) FROM query_performance_log
         WHERE id <= s.watermark AND query_type = $2 AND error IS NOT NULL) AS failed
FROM start s`;

/** One read of the log past the cursor and in its holes. $1 watermark, $2 batch rows, $3/$4 hole bounds, $5 the query_type. */
export const EMBEDDING_FAILURES_READ_SQL = `
WITH ${readCtes('query_performance_log', ['query_type', 'error'], { watermark: '$1', batchRows: '$2', holeLo: '$3', holeHi: '$4' })}
SELECT (SELECT count(*) FROM (SELECT query_type, error FROM tail UNION ALL SELECT query_type, error FROM filled) r
         WHERE query_type = $5 AND error IS NOT NULL) AS failed,
       ${readColumns('query_performance_log')}`;

/**
 * Documents whose created_at crossed now() - grace since the previous cutoff, still without an
 * embedding. $1 the previous cutoff (NULL before the first poll: every document older than the new
 * cutoff), $2 the grace period in seconds.
 */
export const MISSING_EMBEDDINGS_SQL = `
WITH cutoff AS (SELECT now() - make_interval(secs => $2::float8) AS at)
SELECT cutoff.at AS cutoff,
       (SELECT count(*) FROM framework_documents d
         WHERE d.created_at <= cutoff.at
           AND ($1::timestamptz IS NULL OR d.created_at > $1::timestamptz)
           AND ${NO_EMBEDDING}) AS missing
  FROM cutoff`;

interface FailedStartRow extends StartRow {
  failed: string;
}

interface FailedReadRow extends ReadRow {
  failed: string;
}

interface MissingRow extends Record<string, unknown> {
  cutoff: Date;
  missing: string;
}

export function embeddingFailuresCollector(options: EmbeddingFailuresOptions): EmbeddingFailuresCollector {
  const cursor = new IdCursor('query_performance_log', options.batchRows);
  let lastCutoff: Date | null = null;
  let fromLog = 0;
  let missing = 0;
  return {
    name: 'embedding_failures',
    families: Object.values(FAMILIES),
    get batchRows() {
      return cursor.batchRows;
    },
    async collect(ctx): Promise<Sample[]> {
      const { query } = ctx;
      if (!(await requireFeature(ctx, 'embedding_failures'))) return [];
      // The cursors move only once a statement has succeeded: a failed poll is read again by the next one.
      if (!cursor.started) {
        const [row] = await query<FailedStartRow>(EMBEDDING_FAILURES_START_SQL, [START_HOLE_WINDOW, EMBEDDING_GENERATION_QUERY_TYPE]);
        cursor.start(row!);
        fromLog += Number(row!.failed);
      }
      await cursor.readOn(
        ctx,
        async ({ watermark, batchRows, lo, hi }) => (await query<FailedReadRow>(EMBEDDING_FAILURES_READ_SQL, [watermark, batchRows, lo, hi, EMBEDDING_GENERATION_QUERY_TYPE]))[0]!,
        (row) => (fromLog += Number(row.failed)),
      );
      const [row] = await query<MissingRow>(MISSING_EMBEDDINGS_SQL, [lastCutoff, options.gracePeriodMs / 1000]);
      missing += Number(row!.missing);
      lastCutoff = row!.cutoff;
      return [
        { family: FAMILIES.failures.name, labels: { reason: 'query_log' }, value: fromLog },
        { family: FAMILIES.failures.name, labels: { reason: 'missing_embedding' }, value: missing },
      ];
    },
  };
}
