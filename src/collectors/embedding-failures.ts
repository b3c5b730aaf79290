import type { Collector, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';

/**
 * Failed embedding generations, as the database shows them, counted once each: the specification's
 * `embedding_generation_failures_total` (a recording rule of alerts/rules sums the reasons per database).
 *
 * - `query_log`: rows of query_performance_log whose query_type is `embedding_generation` and whose error
 *   is set (the search service logs its embedding calls there). Read past a cursor on the log's id, so a
 *   row is counted once however often the collector polls, and log retention deleting old rows never
 *   makes the counter go down.
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
 * query_performance_log); later polls read only rows past the cursor (the primary key) and documents
 * created between two cutoffs (idx_documents_created_at).
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
}

/**
 * $1 the log id already read (-1 before the first poll), $2 the previous cutoff (NULL before the first
 * poll: every document older than the new cutoff), $3 the grace period in seconds, $4 the query_type.
 * max_id is read in the same statement as the count, so rows committed later are read by the next poll.
 */
export const EMBEDDING_FAILURES_SQL = `
WITH cutoff AS (SELECT now() - make_interval(secs => $3::float8) AS at),
     logged AS (SELECT max(id) AS max_id,
                       count(*) FILTER (WHERE query_type = $4 AND error IS NOT NULL) AS failed
                  FROM query_performance_log
                 WHERE id > $1::bigint)
SELECT logged.max_id::text AS max_id,
       logged.failed,
       cutoff.at AS cutoff,
       (SELECT count(*) FROM framework_documents d
         WHERE d.created_at <= cutoff.at
           AND ($2::timestamptz IS NULL OR d.created_at > $2::timestamptz)
           AND NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id)) AS missing
  FROM logged, cutoff`;

interface Row extends Record<string, unknown> {
  max_id: string | null;
  failed: string;
  cutoff: Date;
  missing: string;
}

export function embeddingFailuresCollector(options: EmbeddingFailuresOptions): Collector {
  let lastId = '-1';
  let lastCutoff: Date | null = null;
  let fromLog = 0;
  let missing = 0;
  return {
    name: 'embedding_failures',
    families: Object.values(FAMILIES),
    async collect(ctx): Promise<Sample[]> {
      const { query } = ctx;
      if (!(await requireFeature(ctx, 'embedding_failures'))) return [];
      const [row] = await query<Row>(EMBEDDING_FAILURES_SQL, [lastId, lastCutoff, options.gracePeriodMs / 1000, EMBEDDING_GENERATION_QUERY_TYPE]);
      // The cursors move only once the poll has succeeded: a failed poll is read again by the next one.
      fromLog += Number(row!.failed);
      missing += Number(row!.missing);
      if (row!.max_id !== null) lastId = row!.max_id;
      lastCutoff = row!.cutoff;
      return [
        { family: FAMILIES.failures.name, labels: { reason: 'query_log' }, value: fromLog },
        { family: FAMILIES.failures.name, labels: { reason: 'missing_embedding' }, value: missing },
      ];
    },
  };
}
