import type { Collector, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';

/**
 * Documents, embeddings per model, documents without an embedding, and embeddings of the wrong
 * dimension or model.
 *
 * Cost, on its slow (2 m) interval: exact counts, because EmbeddingGenerationFailure alerts on a
 * handful of missing embeddings and a reltuples estimate cannot see those. None of the counts reads
 * a vector: the 12 KB embeddings live in TOAST, the heap scans below touch only the narrow heap
 * tuples (or the document_id / model_name indexes), and the missing-embedding count is a hash
 * anti-join on document_id. The dimension check is the one that could detoast every vector; it is
 * skipped when the column's type (vector(N)) already guarantees it, and otherwise only detoasts the
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

export interface EmbeddingsOptions {
  /** Expected vector dimension (3072 for text-embedding-3-large). */
  dimensions: number;
  /** model_name values reported by name. */
  models: readonly string[];
}

/**
 * $1 dimensions, $2 known models. The CASE evaluates its scalar sub-select only when the column's
 * typmod does not already enforce the dimension. The size pre-filter: pgvector stores vectors with
 * STORAGE external, so an N-dimension vector out of line has exactly 4 + 4N bytes (dim, unused, the
 * floats; no varlena header), and above ~2,040 dimensions a value of that size cannot be inline (it
 * would not fit in a page), so an uncompressed value of that size IS an N-dimension vector. Every
 * other row is settled by vector_dims(). The cheap tests are written first: equal-cost quals keep
 * their order, so vector_dims() only detoasts the rows the pre-filter lets through.
 */
export const EMBEDDINGS_SQL = `
SELECT (SELECT count(*) FROM framework_documents) AS documents,
       (SELECT count(*) FROM framework_documents d
         WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id)) AS missing,
       (SELECT coalesce(json_object_agg(model, n), '{}')
          FROM (SELECT CASE WHEN model_name = ANY ($2::text[]) THEN model_name ELSE 'other' END AS model, count(*) AS n
                  FROM chunk_embeddings GROUP BY 1) m) AS by_model,
       CASE WHEN EXISTS (SELECT 1 FROM pg_attribute
                          WHERE attrelid = 'chunk_embeddings'::regclass AND attname = 'embedding' AND atttypmod = $1::integer)
            THEN 0
            ELSE (SELECT count(*) FROM chunk_embeddings
                   WHERE ($1::integer < 2040 OR pg_column_size(embedding) <> 4 + 4 * $1::integer
                          OR pg_column_compression(embedding) IS NOT NULL)
                     AND vector_dims(embedding) <> $1::integer)
       END AS wrong_dimension`;

interface Row extends Record<string, unknown> {
  documents: string;
  missing: string;
  by_model: Record<string, number>;
  wrong_dimension: string | number;
}

export function embeddingsSamples(row: Row, models: readonly string[]): Sample[] {
  const byModel: Record<string, number> = { ...Object.fromEntries(models.map((m) => [m, 0])), ...row.by_model };
  const unknown = models.includes(OTHER) ? 0 : (byModel[OTHER] ?? 0);
  return [
    { family: FAMILIES.documents.name, value: Number(row.documents) },
    { family: FAMILIES.missing.name, value: Number(row.missing) },
    { family: FAMILIES.wrongDimension.name, value: Number(row.wrong_dimension) },
    { family: FAMILIES.unknownModel.name, value: unknown },
    ...Object.entries(byModel).map(([model, n]) => ({ family: FAMILIES.embeddings.name, labels: { model_name: model }, value: Number(n) })),
  ];
}

export function embeddingsCollector(options: EmbeddingsOptions): Collector {
  return {
    name: 'embeddings',
    families: Object.values(FAMILIES),
    async collect(ctx) {
      if (!(await requireFeature(ctx, 'embeddings'))) return [];
      const [row] = await ctx.query<Row>(EMBEDDINGS_SQL, [options.dimensions, options.models]);
      return embeddingsSamples(row!, options.models);
    },
  };
}
