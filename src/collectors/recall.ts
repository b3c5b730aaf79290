import { isStatementTimeout } from '../db/errors.js';
import type { Collector, MetricFamily, QueryFn, Sample } from './collector.js';
import { NoDataError } from './collector.js';
import type { Logger } from '../log.js';
import { requireFeature } from './features.js';
import { inTransaction, setLocal } from './transaction.js';
import { VECTOR_INDEXES_SQL, distanceOperator, indexPattern, type VectorIndexRow } from '../pgvector/vector-index.js';

/**
 * pgvector recall, measured the way users feel it: stored embeddings serve as queries; for each, the
 * index's top k (the application's query shape, `ORDER BY embedding::halfvec(N) <=> $1::halfvec(N)
 * LIMIT k`) is compared with the exact top k (the same statement with index scans disabled, so a
 * sequential scan and sort). Recall@k = shared ids / exact ids, averaged over the sample.
 *
 * Each sample runs in its own short REPEATABLE READ READ ONLY transaction, so both passes see the
 * same rows without holding a snapshot across the whole measurement; SET LOCAL (set_config(..., true))
 * keeps hnsw.ef_search and the planner switches inside it (the poller hands a collector one connection
 * per poll, so consecutive statements share the transaction). Cost: the exact pass reads every
 * embedding (a sequential scan detoasting 12 KB per row) once per sample, so the collector is off by
 * default, runs every few minutes, and stops starting samples when its poll's time is spent
 * (statement_timeout of each transaction = the time left before the deadline); the sample size actually used is
 * published next to the ratio. The statements carry a "pgvector-exporter" comment so the statements
 * collector does not count them as search traffic.
 */
const FAMILIES = {
  ratio: {
    name: 'pgvector_index_recall_ratio',
    help: 'Mean recall@k of the vector index: share of the exact top k (index scans disabled) that the index scan also returns, over the sampled stored embeddings.',
    type: 'gauge',
    labelNames: ['indexrelname'],
  },
  queries: {
    name: 'pgvector_index_recall_queries',
    help: 'Sampled stored embeddings (queries) behind the last pgvector_index_recall_ratio.',
    type: 'gauge',
    labelNames: ['indexrelname'],
  },
  k: {
    name: 'pgvector_index_recall_k',
    help: 'The k of the last recall@k measurement (neighbours compared per query).',
    type: 'gauge',
    labelNames: ['indexrelname'],
  },
} satisfies Record<string, MetricFamily>;

export interface RecallOptions {
  sampleSize: number;
  topK: number;
  /** hnsw.ef_search for the index pass; 0 = the server's setting. */
  efSearch: number;
  /** Dimension of the halfvec cast the index is built on. */
  dimensions: number;
  /**
   * Discovered pgvector indexes to measure, each on its own table and expression, with its own k, sample
   * size, ef_search and probes: the first entry whose pattern (`schema.index`, `*` wildcards) matches an
   * index applies to it. Empty = the RAG search's index on chunk_embeddings, with the settings above.
   */
  indexes?: readonly RecallIndexOptions[];
  /** ivfflat.probes for the index pass of an IVFFlat index; 0 = the server's setting. */
  probes?: number;
}

export interface RecallIndexOptions {
  pattern: string;
  topK: number;
  sampleSize: number;
  efSearch: number;
  probes: number;
}

const MARKER = '/* pgvector-exporter: recall */';

/**
 * A random sample of embedding ids. SYSTEM sampling reads only the chosen pages (the percentage
 * aims at ~10x the sample from reltuples); ORDER BY random() then picks among those. $1 sample size; $2 the
 * percentage, or null for the one from reltuples.
 */
export const RECALL_SAMPLE_SQL = `${MARKER}
SELECT id::text AS id, embedding::text AS embedding
FROM chunk_embeddings
WHERE id = ANY (ARRAY(
  SELECT id FROM chunk_embeddings
  TABLESAMPLE SYSTEM (coalesce($2::float8, (SELECT CASE WHEN c.reltuples > 0 THEN least(100, 1000.0 * $1::integer / c.reltuples) ELSE 100 END
                         FROM pg_class c WHERE c.oid = 'chunk_embeddings'::regclass)))
  ORDER BY random() LIMIT $1::integer))`;

/** The top-k statement: the shipped vector search's shape. $1 query vector (text), $2 k. */
export function recallSearchSql(dimensions: number): string {
  return `${MARKER}
SELECT e.id::text AS id
FROM chunk_embeddings e
ORDER BY e.embedding::halfvec(${dimensions}) <=> $1::halfvec(${dimensions})
LIMIT $2::integer`;
}

/**
 * The index pass measures the index itself: on a small table the planner would rather scan it
 * sequentially (exact, recall 1), which says nothing about the index. The exact pass: no index at all.
 */
export const INDEX_PASS = { enable_seqscan: 'off' };
export const EXACT_PASS = { enable_seqscan: 'on', enable_indexscan: 'off', enable_bitmapscan: 'off', enable_indexonlyscan: 'off' };

interface SampleRow extends Record<string, unknown> {
  id: string;
  embedding: string;
}

interface PlanNode {
  'Index Name'?: string;
  Plans?: PlanNode[];
}

function indexNames(node: PlanNode): string[] {
  return [...(node['Index Name'] ? [node['Index Name']] : []), ...(node.Plans ?? []).flatMap(indexNames)];
}

/** Share of the exact ids that the index pass returned too. */
export function recallOf(approximate: readonly string[], exact: readonly string[]): number {
  if (exact.length === 0) return 1;
  const found = new Set(approximate);
  return exact.filter((id) => found.has(id)).length / exact.length;
}

/** The three series of one index's measurement: mean recall@k, the queries behind it, its k. */
function recallSamples(indexrelname: string, recalls: readonly number[], topK: number): Sample[] {
  const labels = { indexrelname };
  return [
    { family: FAMILIES.ratio.name, labels, value: recalls.reduce((a, b) => a + b, 0) / recalls.length },
    { family: FAMILIES.queries.name, labels, value: recalls.length },
    { family: FAMILIES.k.name, labels, value: topK },
  ];
}

export function recallCollector(options: RecallOptions): Collector {
  const searchSql = recallSearchSql(options.dimensions);

  /** Runs `body` in a REPEATABLE READ READ ONLY transaction with `settings` SET LOCAL; never leaves it open. */
  const inSnapshot = <T>(query: QueryFn, settings: Record<string, string>, body: () => Promise<T>): Promise<T> =>
    inTransaction(query, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', settings, body);

  /** The index the search shape is served by when the planner may not choose a sequential scan. */
  async function usedIndex(query: QueryFn, vector: string): Promise<string | undefined> {
    return inSnapshot(query, INDEX_PASS, async () => {
      const [row] = await query<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(`EXPLAIN (FORMAT JSON) ${searchSql}`, [vector, options.topK]);
      return indexNames(row!['QUERY PLAN'][0].Plan)[0];
    });
  }

  /**
   * The one measurement, of the RAG index and of discovered ones alike: for each stored vector of the
   * sample, the index pass and the exact pass of `search` ($1 vector, $2 k, one `id` column) in one
   * snapshot, each under statement_timeout = the time left before `until`. Stops starting vectors when
   * less than 100 ms is left or the poll is cut short; a statement timeout ends the series (what was
   * measured within the time is kept). Returns recall@k per measured vector.
   */
  async function measureSample(
    query: QueryFn,
    search: string,
    vectors: readonly string[],
    topK: number,
    settings: Record<string, string>,
    until: number,
    signal: AbortSignal,
  ): Promise<number[]> {
    const recalls: number[] = [];
    for (const vector of vectors) {
      const left = until - Date.now();
      if (left < 100 || signal.aborted) break;
      try {
        recalls.push(
          await inSnapshot(query, { ...settings, statement_timeout: String(Math.ceil(left)) }, async () => {
            const approximate = await query<{ id: string }>(search, [vector, topK]);
            await setLocal(query, EXACT_PASS);
            const exact = await query<{ id: string }>(search, [vector, topK]);
            return recallOf(approximate.map((r) => r.id), exact.map((r) => r.id));
          }),
        );
      } catch (err) {
        if (!isStatementTimeout(err)) throw err;
        break;
      }
    }
    return recalls;
  }

  /**
   * Recall of every valid discovered index matching a pattern: stored values of its own column or
   * expression serve as queries, ordered by its operator class's distance; rows compared by ctid (the
   * snapshot is shared by both passes). The poll's time is shared evenly between the indexes.
   */
  async function measureDiscovered(query: QueryFn, deadline: number, signal: AbortSignal, log: Logger): Promise<Sample[]> {
    const entries = (options.indexes ?? []).map((entry) => ({ ...entry, regex: indexPattern(entry.pattern) }));
    const rows = (await query<VectorIndexRow>(VECTOR_INDEXES_SQL)).flatMap((row) => {
      const setting = row.valid ? entries.find((e) => e.regex.test(`${row.schemaname}.${row.indexrelname}`)) : undefined;
      return setting ? [{ row, setting }] : [];
    });
    const duplicated = new Set(rows.map((r) => r.row.indexrelname).filter((name, i, all) => all.indexOf(name) !== i));
    const result: Sample[] = [];
    for (const [n, { row, setting }] of rows.entries()) {
      const operator = distanceOperator(row.opclass);
      if (!operator) {
        log.info({ index: `${row.schemaname}.${row.indexrelname}`, opclass: row.opclass }, 'recall: no distance operator known for this operator class; skipped');
        continue;
      }
      const until = Date.now() + (deadline - Date.now()) / (rows.length - n);
      const expr = `(${row.column_expression})`;
      const percent = row.table_reltuples > 0 ? Math.min(100, (1000 * setting.sampleSize) / row.table_reltuples) : 100;
      const sampleSql = `${MARKER} SELECT ${expr}::text AS v FROM ${row.qualified_table} TABLESAMPLE SYSTEM ($2::float8) WHERE ${expr} IS NOT NULL ORDER BY random() LIMIT $1::integer`;
      let sample = await query<{ v: string }>(sampleSql, [setting.sampleSize, percent]);
      // SYSTEM sampling picks whole pages: on a table of few pages it can pick none.
      if (sample.length < setting.sampleSize && percent < 100) sample = await query<{ v: string }>(sampleSql, [setting.sampleSize, 100]);
      const search = `${MARKER} SELECT ctid::text AS id FROM ${row.qualified_table} ORDER BY ${expr} ${operator} $1::${row.indexed_type} LIMIT $2::integer`;
      const settings: Record<string, string> = { ...INDEX_PASS };
      if (setting.efSearch > 0 && row.method === 'hnsw') settings['hnsw.ef_search'] = String(setting.efSearch);
      if (setting.probes > 0 && row.method === 'ivfflat') settings['ivfflat.probes'] = String(setting.probes);
      const recalls = await measureSample(
        query,
        search,
        sample.map(({ v }) => v),
        setting.topK,
        settings,
        until,
        signal,
      );
      if (recalls.length === 0) continue;
      result.push(...recallSamples(duplicated.has(row.indexrelname) ? `${row.schemaname}.${row.indexrelname}` : row.indexrelname, recalls, setting.topK));
    }
    if (rows.length === 0) throw new NoDataError(`no valid pgvector index matches ${entries.map((e) => e.pattern).join(', ')}`);
    return result;
  }

  return {
    name: 'recall',
    families: Object.values(FAMILIES),
    async collect(ctx) {
      const { query, log, deadline: pollDeadline, signal } = ctx;
      // A tenth of the poll's time stays in reserve, for the ROLLBACK of a transaction cut short.
      const deadline = pollDeadline - (pollDeadline - Date.now()) * 0.1;
      if (options.indexes && options.indexes.length > 0) return measureDiscovered(query, deadline, signal, log);
      if (!(await requireFeature(ctx, 'recall'))) return [];
      let samples = await query<SampleRow>(RECALL_SAMPLE_SQL, [options.sampleSize, null]);
      // SYSTEM sampling picks whole pages: on a table of few pages it can pick none (as for discovered indexes).
      if (samples.length < options.sampleSize) samples = await query<SampleRow>(RECALL_SAMPLE_SQL, [options.sampleSize, 100]);
      if (samples.length === 0) throw new NoDataError('chunk_embeddings is empty: no stored embedding to measure recall with');
      const index = await usedIndex(query, samples[0]!.embedding);
      if (!index) throw new NoDataError('the vector search uses no index: nothing to measure recall of');

      const settings: Record<string, string> = { ...INDEX_PASS };
      if (options.efSearch > 0) settings['hnsw.ef_search'] = String(options.efSearch);
      const vectors = samples.map((sample) => sample.embedding);
      const recalls = await measureSample(query, searchSql, vectors, options.topK, settings, deadline, signal);
      if (recalls.length === 0) throw new Error('recall: the time budget of the poll was spent before the first query');
      if (recalls.length < samples.length) log.info({ measured: recalls.length, sampled: samples.length }, 'recall: time budget spent before the whole sample');
      return recallSamples(index, recalls, options.topK);
    },
  };
}
