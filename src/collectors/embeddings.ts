import type { Collector, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';
import { inTransaction } from './transaction.js';

/**
 * Documents, embeddings per model, documents without an embedding, and embeddings of the wrong
 * dimension or model.
 *
 * Cost: an exact count of the corpus every `exactIntervalMs` (1 h by default, and on the first poll),
 * and between two exact counts an incremental one, bounded by what changed: the rows created since
 * the last exact count (idx_documents_created_at, idx_embeddings_created_at range scans) and a
 * re-check of the documents that were missing their embedding then (at most MISSING_IDS_KEPT
 * idx_embeddings_document_id probes). So every family is exact at an exact count and exact for everything created since;
 * what the incremental count cannot see is corrected at the next exact count (at most an interval
 * late): rows deleted since, rows inserted with a created_at before the exact count (a transaction
 * that started before it and committed after it), and missing documents beyond the MISSING_IDS_KEPT
 * re-checked (their number is carried).
 *
 * The exact count never reads a vector: the 12 KB embeddings live in TOAST, the scans touch only the
 * narrow heap tuples (or the document_id / model_name indexes), and the missing-embedding count is an
 * anti-join on document_id. It runs without parallel workers (EXACT_COUNT_SETTINGS): at 1,000,000
 * documents the planner's parallel plan (a parallel hash anti-join spilling to disk, or a merge
 * anti-join in which every worker reads all of idx_embeddings_document_id) took 3.9 s where the serial
 * merge of the two indexes' index-only scans takes about 0.5 s (`npm run bench:scale -- corpus`), and
 * an exporter should not take the workload's parallel workers anyway. The dimension check is the one that could detoast every vector; it
 * is skipped when the column's type (vector(N)) already guarantees it, and otherwise only detoasts the
 * rows whose stored size differs from an N-dimension vector's (pg_column_size reads the TOAST
 * pointer, not the value).
 */
const FAMILIES = {
  documents: { name: 'rag_documents', help: 'Rows in framework_documents.', type: 'gauge', labelNames: [] },
  embeddings: {
    name: 'rag_embeddings',
    help: 'Rows in chunk_embeddings by model_name (models outside the configured list are counted as "other").',
    type: 'gauge',
    labelNames: ['model_name'],
  },
  missing: {
    name: 'rag_documents_missing_embedding',
    help: 'Documents in framework_documents without any row in chunk_embeddings.',
    type: 'gauge',
    labelNames: [],
  },
  wrongDimension: {
    name: 'rag_embeddings_wrong_dimension',
    help: 'Embeddings whose vector_dims() differs from the configured dimension (0 without a scan when the column type enforces it).',
    type: 'gauge',
    labelNames: [],
  },
  unknownModel: {
    name: 'rag_embeddings_unknown_model',
    help: 'Embeddings whose model_name is not one of the configured models.',
    type: 'gauge',
    labelNames: [],
  },
} satisfies Record<string, MetricFamily>;

/** The label of embeddings whose model is not configured; the SQL folds them into it. */
const OTHER = 'other';
/** Documents missing their embedding at an exact count whose ids are kept and re-checked in between. */
export const MISSING_IDS_KEPT = 1000;

export interface EmbeddingsOptions {
  /** Expected vector dimension (3072 for text-embedding-3-large). */
  dimensions: number;
  /** model_name values reported by name. */
  models: readonly string[];
  /** How often the corpus is counted exactly (ms); the polls in between count what changed. */
  exactIntervalMs: number;
}

/** Skips the dimension check when the column's typmod already enforces it ($1 the dimensions). */
const DIMENSION_ENFORCED = `EXISTS (SELECT 1 FROM pg_attribute
                          WHERE attrelid = 'chunk_embeddings'::regclass AND attname = 'embedding' AND atttypmod = $1::integer)`;
/**
 * The size pre-filter: pgvector stores vectors with STORAGE external, so an N-dimension vector out of
 * line has exactly 4 + 4N bytes (dim, unused, the floats; no varlena header), and above ~2,040
 * dimensions a value of that size cannot be inline (it would not fit in a page), so an uncompressed
 * value of that size IS an N-dimension vector. Every other row is settled by vector_dims(). The cheap
 * tests are written first: equal-cost quals keep their order, so vector_dims() only detoasts the rows
 * the pre-filter lets through.
 */
const WRONG_DIMENSION = `($1::integer < 2040 OR pg_column_size(embedding) <> 4 + 4 * $1::integer
                          OR pg_column_compression(embedding) IS NOT NULL)
                     AND vector_dims(embedding) <> $1::integer`;
/**
 * Document d has no embedding, as one idx_embeddings_document_id probe: a sub-select with LIMIT is not
 * turned into an anti-join, which the planner may run as a hash of all of chunk_embeddings even for a
 * handful of documents (measured at 1,000,000 rows: `npm run bench:scale -- corpus`).
 */
export const NO_EMBEDDING = '(SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id LIMIT 1) IS NULL';
const MODEL = `CASE WHEN model_name = ANY ($2::text[]) THEN model_name ELSE '${OTHER}' END`;

/**
 * The exact count. $1 dimensions, $2 known models, $3 missing ids kept. One anti-join (serial: a merge
 * of framework_documents_pkey and idx_embeddings_document_id, both index-only) gives both the count and
 * the ids. The embeddings are counted per stored model_name first (a GroupAggregate over
 * idx_embeddings_model_name's index-only scan, no per-row CASE: 2.5 times cheaper at 1,000,000), and
 * the few groups folded into the configured models and "other" after. The CASE evaluates its scalar
 * sub-select only when the column's typmod does not already enforce the dimension. `at` is where the
 * incremental counts start: the statement's start, statement_timestamp() rather than now(), which inside
 * the transaction EXACT_COUNT_SETTINGS needs is the transaction's start, two round trips before the
 * snapshot (a row committed in between would be counted by both). Run it with EXACT_COUNT_SETTINGS.
 */
export const EMBEDDINGS_SQL = `
WITH missing AS MATERIALIZED (
  SELECT d.id FROM framework_documents d
   WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id)
)
SELECT statement_timestamp() AS at,
       (SELECT count(*) FROM framework_documents) AS documents,
       (SELECT count(*) FROM missing) AS missing,
       (SELECT coalesce(array_agg(id), '{}') FROM (SELECT id FROM missing LIMIT $3::integer) m) AS missing_ids,
       (SELECT coalesce(json_object_agg(model, n), '{}')
          FROM (SELECT ${MODEL} AS model, sum(n) AS n
                  FROM (SELECT model_name, count(*) AS n FROM chunk_embeddings GROUP BY model_name) stored
                 GROUP BY 1) m) AS by_model,
       CASE WHEN ${DIMENSION_ENFORCED} THEN 0
            ELSE (SELECT count(*) FROM chunk_embeddings WHERE ${WRONG_DIMENSION})
       END AS wrong_dimension`;

/** The exact count's session: no parallel workers (SET LOCAL inside its own read-only transaction). */
export const EXACT_COUNT_SETTINGS: Record<string, string> = { max_parallel_workers_per_gather: '0' };

/**
 * Between exact counts: what was created since the last one ($3), and which of the documents then
 * missing ($4) still are. $1 dimensions, $2 known models. Every scan is an index range scan on
 * created_at or an index probe: its cost grows with the rows created since, not with the corpus. The
 * documents then missing are looked up in idx_embeddings_document_id only, one probe each, not in
 * framework_documents too: like every count between two exact ones, this one does not see deletions (a
 * document deleted since stays counted until the next exact count, as rag_documents does), and the
 * second probe per id (random ids: a leaf page each) doubled the statement's cost at 1,000,000.
 */
export const EMBEDDINGS_SINCE_SQL = `
SELECT (SELECT count(*) FROM framework_documents WHERE created_at > $3::timestamptz) AS documents,
       (SELECT count(*) FROM framework_documents d
         WHERE d.created_at > $3::timestamptz AND ${NO_EMBEDDING}) AS missing,
       (SELECT count(*) FROM unnest($4::uuid[]) d(id) WHERE ${NO_EMBEDDING}) AS still_missing,
       (SELECT coalesce(json_object_agg(model, n), '{}')
          FROM (SELECT ${MODEL} AS model, count(*) AS n FROM chunk_embeddings WHERE created_at > $3::timestamptz GROUP BY 1) m) AS by_model,
       CASE WHEN ${DIMENSION_ENFORCED} THEN 0
            ELSE (SELECT count(*) FROM chunk_embeddings WHERE created_at > $3::timestamptz AND ${WRONG_DIMENSION})
       END AS wrong_dimension`;

interface ExactRow extends Record<string, unknown> {
  at: Date;
  documents: string;
  missing: string;
  missing_ids: string[];
  by_model: Record<string, number>;
  wrong_dimension: string | number;
}

interface SinceRow extends Record<string, unknown> {
  documents: string;
  missing: string;
  still_missing: string;
  by_model: Record<string, number>;
  wrong_dimension: string | number;
}

/** What the families show: counts, embeddings per folded model name. */
export interface EmbeddingCounts {
  documents: number;
  missing: number;
  byModel: Record<string, number>;
  wrongDimension: number;
}

export function embeddingsSamples(counts: EmbeddingCounts, models: readonly string[]): Sample[] {
  const byModel: Record<string, number> = { ...Object.fromEntries(models.map((m) => [m, 0])), ...counts.byModel };
  const unknown = models.includes(OTHER) ? 0 : (byModel[OTHER] ?? 0);
  return [
    { family: FAMILIES.documents.name, value: counts.documents },
    { family: FAMILIES.missing.name, value: counts.missing },
    { family: FAMILIES.wrongDimension.name, value: counts.wrongDimension },
    { family: FAMILIES.unknownModel.name, value: unknown },
    ...Object.entries(byModel).map(([model, n]) => ({ family: FAMILIES.embeddings.name, labels: { model_name: model }, value: Number(n) })),
  ];
}

function addModels(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const sum: Record<string, number> = { ...a };
  for (const [model, n] of Object.entries(b)) sum[model] = (sum[model] ?? 0) + Number(n);
  return sum;
}

/** The last exact count: the base the incremental counts add to. */
interface Exact {
  at: Date;
  /** Date.now() when it was taken: the interval is measured in the exporter's clock. */
  takenAtMs: number;
  counts: EmbeddingCounts;
  missingIds: string[];
}

export interface EmbeddingsCollector extends Collector {
  /** Whether the last poll was an exact count (for tests and debugging). */
  readonly lastPollExact: boolean;
}

export function embeddingsCollector(options: EmbeddingsOptions): EmbeddingsCollector {
  let exact: Exact | undefined;
  let lastPollExact = false;
  return {
    name: 'embeddings',
    families: Object.values(FAMILIES),
    get lastPollExact() {
      return lastPollExact;
    },
    async collect(ctx) {
      if (!(await requireFeature(ctx, 'embeddings'))) return [];
      if (exact === undefined || Date.now() - exact.takenAtMs >= options.exactIntervalMs) {
        const takenAtMs = Date.now();
        const [row] = await inTransaction(ctx.query, 'BEGIN READ ONLY', EXACT_COUNT_SETTINGS, () =>
          ctx.query<ExactRow>(EMBEDDINGS_SQL, [options.dimensions, options.models, MISSING_IDS_KEPT]),
        );
        exact = {
          at: row!.at,
          takenAtMs,
          missingIds: row!.missing_ids,
          counts: {
            documents: Number(row!.documents),
            missing: Number(row!.missing),
            byModel: addModels({}, row!.by_model),
            wrongDimension: Number(row!.wrong_dimension),
          },
        };
        lastPollExact = true;
        return embeddingsSamples(exact.counts, options.models);
      }
      const [row] = await ctx.query<SinceRow>(EMBEDDINGS_SINCE_SQL, [options.dimensions, options.models, exact.at, exact.missingIds]);
      lastPollExact = false;
      const base = exact.counts;
      return embeddingsSamples(
        {
          documents: base.documents + Number(row!.documents),
          // The missing documents beyond the ids kept are carried until the next exact count.
          missing: Number(row!.still_missing) + (base.missing - exact.missingIds.length) + Number(row!.missing),
          byModel: addModels(base.byModel, row!.by_model),
          wrongDimension: base.wrongDimension + Number(row!.wrong_dimension),
        },
        options.models,
      );
    },
  };
}
