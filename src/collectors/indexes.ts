import {
  INDEX_CATALOG_COLUMNS,
  INDEX_CATALOG_FROM,
  VECTOR_INDEX_DEFAULTS,
  VECTOR_METHODS,
  VECTOR_INDEXES_SQL,
  ivfflatLists,
  recommendedLists,
  type IndexCatalogRow,
  type VectorIndexRow,
} from '../pgvector/vector-index.js';
import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * Every index on the managed tables (valid, ready, size, scans), leftovers of an interrupted
 * CREATE INDEX / REINDEX CONCURRENTLY (`*_ccnew*`, invalid) included; a presence gauge for each
 * expected index that reads 0 when the index is gone instead of a series that just disappears; every
 * pgvector index of the database, in any schema and on any table (discovered, not configured), with
 * what pgvector's guidance asks of it (method, operator class, dimensions, build parameters, IVFFlat
 * lists against rows, size against shared_buffers, the table's dead tuples, validity, build progress);
 * and index builds in progress.
 */
const INDEX_LABELS = ['schemaname', 'relname', 'indexrelname'] as const;
const VECTOR_LABELS = INDEX_LABELS;

const FAMILIES = {
  valid: {
    name: 'pg_index_valid',
    help: 'pg_index.indisvalid: 1 if the index is currently valid for queries, 0 if it may be incomplete (an interrupted CREATE INDEX CONCURRENTLY or REINDEX CONCURRENTLY).',
    type: 'gauge',
    labelNames: INDEX_LABELS,
  },
  ready: {
    name: 'pg_index_ready',
    help: 'pg_index.indisready: 1 if the index is ready for inserts, 0 if it is still being built and inserts ignore it.',
    type: 'gauge',
    labelNames: INDEX_LABELS,
  },
  size: { name: 'pg_index_size_bytes', help: 'Disk space used by the index, pg_relation_size().', type: 'gauge', labelNames: INDEX_LABELS },
  scans: {
    name: 'pg_stat_user_indexes_idx_scan',
    help: 'Number of index scans initiated on this index',
    type: 'counter',
    labelNames: INDEX_LABELS,
    compatibility: 'postgres_exporter',
  },
  tuplesRead: {
    name: 'pg_stat_user_indexes_idx_tup_read_total',
    help: 'Number of index entries returned by scans on this index',
    type: 'counter',
    labelNames: INDEX_LABELS,
  },
  expected: {
    name: 'pg_index_expected_present',
    help: 'For each index named in expected_indexes: 1 when an index of that name exists in the schema (valid or not), 0 when it is missing.',
    type: 'gauge',
    labelNames: ['indexrelname'],
  },
  vectorInfo: {
    name: 'pgvector_index_info',
    help: 'A pgvector index (value 1), found in any schema, with its indexed column or expression, vector type, access method, operator class, dimensions and build parameters (m and ef_construction for hnsw, lists for ivfflat; pgvector defaults when not set).',
    type: 'gauge',
    labelNames: ['schemaname', 'relname', 'indexrelname', 'column', 'type', 'method', 'opclass', 'dimensions', 'm', 'ef_construction', 'lists'],
  },
  vectorSize: {
    name: 'pgvector_index_size_bytes',
    help: 'Disk space used by the pgvector index, pg_relation_size().',
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  vectorValid: {
    name: 'pgvector_index_valid',
    help: 'pg_index.indisvalid of the pgvector index: 0 while a CREATE INDEX CONCURRENTLY builds it, or after one was interrupted (searches then scan the table).',
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  vectorBuildProgress: {
    name: 'pgvector_index_build_progress_ratio',
    help: 'Progress of a running CREATE INDEX CONCURRENTLY / REINDEX CONCURRENTLY of the pgvector index in its current phase (blocks or tuples done over total, 0 in the waiting phases); absent when none.',
    type: 'gauge',
    labelNames: [...VECTOR_LABELS, 'phase'],
  },
  sharedBuffers: {
    name: 'pgvector_index_shared_buffers_ratio',
    help: 'Vector index size over shared_buffers: above 1 the index no longer fits in the buffer cache and search throughput drops sharply.',
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  tableDeadTuples: {
    name: 'pgvector_index_table_dead_tuples',
    help: "n_dead_tup of the vector index's table: HNSW searches return fewer results until VACUUM removes dead tuples.",
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  rowsPerList: {
    name: 'pgvector_ivfflat_rows_per_list',
    help: "An IVFFlat index's table rows (n_live_tup) divided by its lists.",
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  recommendedLists: {
    name: 'pgvector_ivfflat_recommended_lists',
    help: "pgvector's guidance for the table's current rows: lists = rows / 1000 up to 1M rows, sqrt(rows) above (at least 1).",
    type: 'gauge',
    labelNames: VECTOR_LABELS,
  },
  buildInProgress: {
    name: 'pg_index_build_in_progress',
    help: 'CREATE INDEX / REINDEX commands running on the table, by phase (pg_stat_progress_create_index); absent when none.',
    type: 'gauge',
    labelNames: ['relname', 'phase'],
  },
  buildProgress: {
    name: 'pg_index_build_progress_ratio',
    help: 'Progress of the running index builds on the table in the current phase: blocks_done/blocks_total, or tuples_done/tuples_total when the phase counts tuples.',
    type: 'gauge',
    labelNames: ['relname', 'phase'],
  },
} satisfies Record<string, MetricFamily>;

/**
 * The statistics functions are called for these indexes only (pg_stat_user_indexes would compute every
 * index of the database first). The catalog part (names, method, opclass, dimensions, build
 * parameters) is pgvector/vector-index.ts's, shared with the reindex-vector job.
 * A partitioned index (relkind 'I', e.g. on the daily-partitioned query log) has no storage and no
 * statistics of its own: it reports the sums over its partitions' indexes, and its table's tuples the
 * sums over the table's partitions (pg_partition_tree lists the tree, root included).
 */
const overPartitions = (fn: string, alias: 'i' | 't') =>
  `CASE WHEN ${alias}.relkind IN ('I', 'p') THEN (SELECT sum(${fn}(pt.relid)) FROM pg_partition_tree(${alias}.oid) pt) ELSE ${fn}(${alias}.oid) END::float8`;

export const INDEXES_SQL = `
SELECT ${INDEX_CATALOG_COLUMNS},
       ${overPartitions('pg_relation_size', 'i')} AS size_bytes,
       ${overPartitions('pg_stat_get_numscans', 'i')} AS idx_scan,
       ${overPartitions('pg_stat_get_tuples_returned', 'i')} AS idx_tup_read,
       ${overPartitions('pg_stat_get_live_tuples', 't')} AS table_live_tuples,
       ${overPartitions('pg_stat_get_dead_tuples', 't')} AS table_dead_tuples,
       pg_size_bytes(current_setting('shared_buffers'))::float8 AS shared_buffers_bytes
  FROM ${INDEX_CATALOG_FROM}
 WHERE n.nspname = $1 AND t.relname = ANY($2::text[])`;

/**
 * The pgvector indexes (pgvector/vector-index.ts) with their sizes, their tables' tuples and the
 * progress of a concurrent build of the index itself (a plain CREATE INDEX has no index to name yet:
 * pg_index_build_* covers it per table), and on every row the builds of this database summed per table
 * and phase (`builds`, JSON: two builds never make duplicate series). pg_stat_progress_create_index is
 * read once for both. Always one row at least: without a pgvector index, one whose index columns are NULL.
 */
export const VECTOR_INDEX_STATS_SQL = `
WITH progress AS MATERIALIZED (
  SELECT relid, index_relid, phase, blocks_done, blocks_total, tuples_done, tuples_total
    FROM pg_stat_progress_create_index
   WHERE datname = current_database()
),
builds AS (
  SELECT coalesce(json_agg(b), '[]') AS builds
    FROM (SELECT c.relname, p.phase, count(*)::float8 AS builds,
                 sum(p.blocks_done)::float8 AS blocks_done, sum(p.blocks_total)::float8 AS blocks_total,
                 sum(p.tuples_done)::float8 AS tuples_done, sum(p.tuples_total)::float8 AS tuples_total
            FROM progress p
            JOIN pg_class c ON c.oid = p.relid
           GROUP BY c.relname, p.phase) b
)
SELECT v.*, b.builds
  FROM builds b
  LEFT JOIN (
    SELECT v.*,
           pg_relation_size(v.index_oid::oid)::float8 AS size_bytes,
           pg_stat_get_live_tuples(v.table_oid::oid)::float8 AS table_live_tuples,
           pg_stat_get_dead_tuples(v.table_oid::oid)::float8 AS table_dead_tuples,
           pg_size_bytes(current_setting('shared_buffers'))::float8 AS shared_buffers_bytes,
           p.phase, p.blocks_done::float8, p.blocks_total::float8, p.tuples_done::float8, p.tuples_total::float8
      FROM (${VECTOR_INDEXES_SQL}) v
      LEFT JOIN progress p ON p.index_relid = v.index_oid::oid
  ) v ON true`;

export interface VectorIndexStatsRow extends VectorIndexRow {
  size_bytes: number | null;
  table_live_tuples: number | null;
  table_dead_tuples: number | null;
  shared_buffers_bytes: number;
  phase: string | null;
  blocks_done: number | null;
  blocks_total: number | null;
  tuples_done: number | null;
  tuples_total: number | null;
  /** The builds of this database, per table and phase (the same on every row). */
  builds: BuildRow[];
}

/** Whether each expected index name exists in the schema, as an index or a partitioned index. */
export const EXPECTED_SQL = `
SELECT e.name AS indexrelname,
       EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE c.relname = e.name AND n.nspname = $1 AND c.relkind IN ('i', 'I')) AS present
  FROM unnest($2::text[]) AS e(name)`;

export interface IndexRow extends IndexCatalogRow {
  size_bytes: number | null;
  idx_scan: number | null;
  idx_tup_read: number | null;
  table_live_tuples: number | null;
  table_dead_tuples: number | null;
  shared_buffers_bytes: number;
}

interface ExpectedRow extends Record<string, unknown> {
  indexrelname: string;
  present: boolean;
}

/** One table's builds in one phase. */
export interface BuildRow extends Record<string, unknown> {
  relname: string;
  phase: string;
  builds: number;
  blocks_done: number | null;
  blocks_total: number | null;
  tuples_done: number | null;
  tuples_total: number | null;
}

export function indexSamples(row: IndexRow): Sample[] {
  const labels = { schemaname: row.schemaname, relname: row.relname, indexrelname: row.indexrelname };
  const samples: Sample[] = [
    { family: FAMILIES.valid.name, labels, value: row.valid ? 1 : 0 },
    { family: FAMILIES.ready.name, labels, value: row.ready ? 1 : 0 },
    { family: FAMILIES.size.name, labels, value: row.size_bytes ?? 0 },
    { family: FAMILIES.scans.name, labels, value: row.idx_scan ?? 0 },
    { family: FAMILIES.tuplesRead.name, labels, value: row.idx_tup_read ?? 0 },
  ];
  return samples;
}

export function vectorIndexSamples(row: VectorIndexStatsRow): Sample[] {
  // The one row of a database without a pgvector index names none.
  if (row.index_oid === null || !VECTOR_METHODS.has(row.method)) return [];
  const labels = { schemaname: row.schemaname, relname: row.relname, indexrelname: row.indexrelname };
  const hnsw = row.method === 'hnsw';
  const lists = hnsw ? undefined : ivfflatLists(row.lists);
  const info = {
    ...labels,
    column: row.column_expression,
    type: row.vector_type ?? '',
    method: row.method,
    opclass: row.opclass ?? '',
    // A typmod of -1 means the column declares no dimensions (pgvector refuses to index those).
    dimensions: row.typmod !== null && row.typmod > 0 ? String(row.typmod) : '',
    m: hnsw ? (row.m ?? String(VECTOR_INDEX_DEFAULTS.m)) : '',
    ef_construction: hnsw ? (row.ef_construction ?? String(VECTOR_INDEX_DEFAULTS.ef_construction)) : '',
    lists: lists === undefined ? '' : String(lists),
  };
  const samples: Sample[] = [
    { family: FAMILIES.vectorInfo.name, labels: info, value: 1 },
    { family: FAMILIES.vectorSize.name, labels, value: row.size_bytes ?? 0 },
    { family: FAMILIES.vectorValid.name, labels, value: row.valid ? 1 : 0 },
    { family: FAMILIES.sharedBuffers.name, labels, value: (row.size_bytes ?? 0) / row.shared_buffers_bytes },
    { family: FAMILIES.tableDeadTuples.name, labels, value: row.table_dead_tuples ?? 0 },
  ];
  if (lists !== undefined) {
    const rows = row.table_live_tuples ?? 0;
    samples.push(
      { family: FAMILIES.rowsPerList.name, labels, value: lists > 0 ? rows / lists : 0 },
      { family: FAMILIES.recommendedLists.name, labels, value: recommendedLists(rows) },
    );
  }
  // The waiting phases count neither blocks nor tuples: 0 done.
  if (row.phase) samples.push({ family: FAMILIES.vectorBuildProgress.name, labels: { ...labels, phase: row.phase }, value: progressRatio(row) ?? 0 });
  return samples;
}

export function expectedSamples(rows: ExpectedRow[]): Sample[] {
  return rows.map((row) => ({ family: FAMILIES.expected.name, labels: { indexrelname: row.indexrelname }, value: row.present ? 1 : 0 }));
}

export function buildSamples(row: BuildRow): Sample[] {
  const labels = { relname: row.relname, phase: row.phase };
  const samples: Sample[] = [{ family: FAMILIES.buildInProgress.name, labels, value: row.builds }];
  const ratio = progressRatio(row);
  if (ratio !== undefined) samples.push({ family: FAMILIES.buildProgress.name, labels, value: ratio });
  return samples;
}

/** Phases count either blocks (scanning the table) or tuples (loading, validating); some count neither. */
function progressRatio(row: Pick<BuildRow, 'blocks_done' | 'blocks_total' | 'tuples_done' | 'tuples_total'>): number | undefined {
  if (row.blocks_total) return (row.blocks_done ?? 0) / row.blocks_total;
  if (row.tuples_total) return (row.tuples_done ?? 0) / row.tuples_total;
  return undefined;
}

export interface IndexesOptions {
  schema: string;
  tables: readonly string[];
  expectedIndexes: readonly string[];
  /**
   * The expected indexes are the defaults, which name the RAG schema's index: checked only where that
   * schema is present (its chunk_embeddings), so a database of another schema never reads "missing".
   */
  expectedIndexesNeedRagSchema?: boolean;
}

/** $1 schema: whether it holds the RAG schema's vector table. */
export const RAG_SCHEMA_SQL = "SELECT to_regclass(quote_ident($1) || '.chunk_embeddings') IS NOT NULL AS present";

export function indexesCollector(options: IndexesOptions): Collector {
  return {
    name: 'indexes',
    families: Object.values(FAMILIES),
    async collect({ query, reportFeature }) {
      const indexes = await query<IndexRow>(INDEXES_SQL, [options.schema, options.tables]);
      let expected: ExpectedRow[] = [];
      if (options.expectedIndexes.length > 0) {
        const [rag] = options.expectedIndexesNeedRagSchema ? await query<{ present: boolean }>(RAG_SCHEMA_SQL, [options.schema]) : [{ present: true }];
        reportFeature(
          'expected_indexes',
          rag!.present,
          `the RAG schema (chunk_embeddings) is not in schema ${options.schema}: the default expected_indexes (${options.expectedIndexes.join(', ')}) do not apply; set expected_indexes to check indexes of your own`,
        );
        if (rag!.present) expected = await query<ExpectedRow>(EXPECTED_SQL, [options.schema, options.expectedIndexes]);
      }
      const vectorIndexes = await query<VectorIndexStatsRow>(VECTOR_INDEX_STATS_SQL);
      return [
        ...indexes.flatMap(indexSamples),
        ...vectorIndexes.flatMap(vectorIndexSamples),
        ...expectedSamples(expected),
        ...(vectorIndexes[0]?.builds ?? []).flatMap(buildSamples),
      ];
    },
  };
}
