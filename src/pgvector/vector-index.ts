/**
 * What this project knows about pgvector's indexes, in one place: the catalog join that reads an index
 * with its table, schema, access method and build parameters; pgvector's defaults for those parameters;
 * and pgvector's IVFFlat sizing rule. The indexes collector (the pgvector_index_* and
 * pgvector_ivfflat_* metrics) and the reindex-vector job (the rebuild decision) both read from here, so
 * the recommended-lists metric and the rebuild decision cannot drift apart.
 * Source: pgvector 0.8 README ("HNSW" and "IVFFlat" sections).
 */

/** pgvector's index access methods. */
export const VECTOR_METHODS: ReadonlySet<string> = new Set(['hnsw', 'ivfflat']);

/** pgvector's defaults for the build parameters an index's reloptions may leave unset. */
export const VECTOR_INDEX_DEFAULTS = { m: 16, ef_construction: 64, lists: 100 } as const;

/** pgvector's IVFFlat guidance: lists = rows / 1000 up to 1M rows, sqrt(rows) above; never fewer than 1 list. */
export function recommendedLists(rows: number): number {
  const lists = rows <= 1_000_000 ? rows / 1000 : Math.sqrt(rows);
  return Math.max(1, Math.round(lists));
}

/** The lists an IVFFlat index was built with: its `lists` reloption, or pgvector's default when unset. */
export function ivfflatLists(listsOption: string | null | undefined): number {
  return listsOption === null || listsOption === undefined ? VECTOR_INDEX_DEFAULTS.lists : Number(listsOption);
}

/** A build parameter of the index `i` (its reloptions), NULL when unset, selected as `name`. */
function reloption(name: keyof typeof VECTOR_INDEX_DEFAULTS): string {
  return `(SELECT option_value FROM pg_options_to_table(i.reloptions) WHERE option_name = '${name}') AS ${name}`;
}

/**
 * The columns every index reading shares (aliases: x pg_index, i the index, t its table, n the table's
 * schema, am the access method, opc the first column's operator class, a the first column): names,
 * validity, method, operator class, the first column's typmod and pgvector's build parameters
 * (m, ef_construction, lists: NULL when the reloption is unset).
 * The dimensions are the typmod of the index's first column, which for an expression index such as
 * (embedding::halfvec(3072)) is the expression's type, halfvec(3072); -1 when it declares none.
 */
export const INDEX_CATALOG_COLUMNS = `n.nspname AS schemaname, t.relname, i.relname AS indexrelname,
       i.oid::int8 AS index_oid, t.oid::int8 AS table_oid,
       x.indisvalid AS valid, x.indisready AS ready,
       am.amname AS method, opc.opcname AS opclass, a.atttypmod AS typmod,
       ${reloption('m')}, ${reloption('ef_construction')}, ${reloption('lists')}`;

export const INDEX_CATALOG_FROM = `pg_index x
  JOIN pg_class i ON i.oid = x.indexrelid
  JOIN pg_class t ON t.oid = x.indrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
  JOIN pg_am am ON am.oid = i.relam
  LEFT JOIN pg_opclass opc ON opc.oid = x.indclass[0]
  LEFT JOIN pg_attribute a ON a.attrelid = i.oid AND a.attnum = 1`;

/** One row of INDEX_CATALOG_COLUMNS. */
export interface IndexCatalogRow extends Record<string, unknown> {
  schemaname: string;
  relname: string;
  indexrelname: string;
  /** int8 columns arrive as strings from node-postgres. */
  index_oid: string | number;
  table_oid: string | number;
  valid: boolean;
  ready: boolean;
  method: string;
  opclass: string | null;
  typmod: number | null;
  m: string | null;
  ef_construction: string | null;
  lists: string | null;
}

/** One index by schema ($1) and name ($2). */
export const INDEX_BY_NAME_SQL = `
SELECT ${INDEX_CATALOG_COLUMNS}
  FROM ${INDEX_CATALOG_FROM}
 WHERE n.nspname = $1 AND i.relname = $2 AND i.relkind = 'i'`;

/**
 * Every pgvector index of the database, in every schema but the system's: pgvector's access methods
 * (HNSW, IVFFlat) index only its own types (vector, halfvec, sparsevec, bit), on a column or an
 * expression over one such as (embedding::halfvec(3072)). `column_expression` is the indexed column or
 * expression as pg_get_indexdef() prints it; `vector_type` the indexed type's name (for an expression,
 * the expression's type).
 */
export const VECTOR_INDEXES_SQL = `
SELECT ${INDEX_CATALOG_COLUMNS},
       pg_get_indexdef(i.oid, 1, true) AS column_expression,
       ty.typname AS vector_type,
       format_type(a.atttypid, a.atttypmod) AS indexed_type,
       format('%I.%I', n.nspname, t.relname) AS qualified_table,
       t.reltuples::float8 AS table_reltuples
  FROM ${INDEX_CATALOG_FROM}
  LEFT JOIN pg_type ty ON ty.oid = a.atttypid
 WHERE am.amname IN ('hnsw', 'ivfflat')
   AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'`;

/** One row of VECTOR_INDEXES_SQL. */
export interface VectorIndexRow extends IndexCatalogRow {
  column_expression: string;
  vector_type: string | null;
  /** The indexed type with its typmod, e.g. halfvec(3072): what a query vector is cast to. */
  indexed_type: string;
  /** schema.table, quoted where needed. */
  qualified_table: string;
  table_reltuples: number;
}

/** The distance operator each of pgvector's operator classes orders by (pgvector 0.8 README, "Querying"). */
export function distanceOperator(opclass: string | null): string | undefined {
  if (!opclass) return undefined;
  if (opclass === 'bit_hamming_ops') return '<~>';
  if (opclass === 'bit_jaccard_ops') return '<%>';
  const suffix = /_(l2|ip|cosine|l1)_ops$/.exec(opclass)?.[1];
  return suffix ? { l2: '<->', ip: '<#>', cosine: '<=>', l1: '<+>' }[suffix] : undefined;
}

/** `*` matches any run of characters; the rest is literal. Matched against `schema.index`. */
export function indexPattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}
