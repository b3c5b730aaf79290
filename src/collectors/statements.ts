import { databaseSelector } from '../db/database-selector.js';
import { isObjectNotInPrerequisiteState } from '../db/errors.js';
import type { Collector, Labels, MetricFamily, QueryFn, Sample } from './collector.js';

/**
 * The database's own view of vector-search latency: pg_stat_statements entries of the target
 * database whose text uses a pgvector distance operator (<->, <=>, <#>, <+>), independent of what
 * the application logs. Label values stay bounded: the top `topN` statements by total execution time,
 * by queryid only; the normalized text (constants are already $n there) goes into an info series,
 * cut to QUERY_TEXT_MAX characters. Totals over every vector statement keep rates meaningful when
 * statements enter or leave the top N. Counters can go down when pg_stat_statements evicts an entry
 * or is reset; Prometheus' rate() reads that as a counter reset.
 *
 * The exporter's own vector queries (the recall collector) carry a "pgvector-exporter" comment and are
 * left out, so measuring recall never shows up as search traffic.
 *
 * With auto-discovery (`databases` set) it runs once, on the primary connection, and reads the entries
 * of every watched database in one statement, each sample labelled datname: pg_stat_statements is one
 * view for the whole server, and reading it (query texts included) once per database would cost
 * databases x entries.
 */
const FAMILIES = {
  calls: {
    name: 'pgvector_statements_calls_total',
    help: 'Times the statement was executed (pg_stat_statements calls), for the top vector statements by total time.',
    type: 'counter',
    labelNames: ['queryid'],
  },
  seconds: {
    name: 'pgvector_statements_seconds_total',
    help: 'Total time spent executing the statement (pg_stat_statements total_exec_time), for the top vector statements.',
    type: 'counter',
    labelNames: ['queryid'],
  },
  rows: {
    name: 'pgvector_statements_rows_total',
    help: 'Rows retrieved or affected by the statement (pg_stat_statements rows), for the top vector statements.',
    type: 'counter',
    labelNames: ['queryid'],
  },
  mean: {
    name: 'pgvector_statements_mean_seconds',
    help: 'Mean execution time of the statement since its statistics were reset (total_exec_time / calls).',
    type: 'gauge',
    labelNames: ['queryid'],
  },
  info: {
    name: 'pgvector_statements_query_info',
    help: 'The normalized text of a top vector statement (value 1), without comments, whitespace collapsed, cut to 100 characters; only with statements.query_text and only for statements pg_stat_statements normalized.',
    type: 'gauge',
    labelNames: ['queryid', 'query'],
  },
  allCalls: {
    name: 'pgvector_statements_all_calls_total',
    help: 'Executions of all statements of the database that use a pgvector distance operator, summed.',
    type: 'counter',
    labelNames: [],
  },
  allSeconds: {
    name: 'pgvector_statements_all_seconds_total',
    help: 'Execution time of all statements of the database that use a pgvector distance operator, summed.',
    type: 'counter',
    labelNames: [],
  },
  allRows: {
    name: 'pgvector_statements_all_rows_total',
    help: 'Rows of all statements of the database that use a pgvector distance operator, summed.',
    type: 'counter',
    labelNames: [],
  },
  tracked: {
    name: 'pgvector_statements_tracked',
    help: 'Distinct statements (queryid) in pg_stat_statements that use a pgvector distance operator.',
    type: 'gauge',
    labelNames: [],
  },
} satisfies Record<string, MetricFamily>;

export const QUERY_TEXT_MAX = 100;

/** The marker the exporter's own vector queries carry in a comment. */
export const EXPORTER_QUERY_MARKER = 'pgvector-exporter';

export const STATEMENTS_SCHEMA_SQL = `
SELECT n.nspname AS schema FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'`;

/** $1 top N. The window sums run before LIMIT, so they cover every vector statement. */
export function statementsSql(schema: string): string {
  return `
WITH vector_statements AS (
  SELECT queryid, sum(calls) AS calls, sum(total_exec_time) / 1000 AS seconds, sum(rows) AS rows, min(query) AS query
  FROM ${quoteIdent(schema)}.pg_stat_statements
  WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    AND queryid IS NOT NULL
    AND query ~ '<->|<=>|<#>|<\\+>'
    AND strpos(query, '${EXPORTER_QUERY_MARKER}') = 0
  GROUP BY queryid
)
SELECT queryid::text AS queryid, calls, seconds, rows, query,
       count(*) OVER () AS tracked, sum(calls) OVER () AS all_calls,
       sum(seconds) OVER () AS all_seconds, sum(rows) OVER () AS all_rows
FROM vector_statements
ORDER BY seconds DESC, queryid
LIMIT $1::integer`;
}

/** Every database's vector statements at once: the top N per database, its totals per database. */
export function everyDatabaseStatementsSql(schema: string): string {
  return `
WITH vector_statements AS (
  SELECT d.datname, s.queryid, sum(s.calls) AS calls, sum(s.total_exec_time) / 1000 AS seconds, sum(s.rows) AS rows, min(s.query) AS query
  FROM ${quoteIdent(schema)}.pg_stat_statements s
  JOIN pg_database d ON d.oid = s.dbid
  WHERE s.queryid IS NOT NULL
    AND s.query ~ '<->|<=>|<#>|<\\+>'
    AND strpos(s.query, '${EXPORTER_QUERY_MARKER}') = 0
  GROUP BY d.datname, s.queryid
), ranked AS (
  SELECT datname, datname = current_database() AS primary_database, queryid::text AS queryid, calls, seconds, rows, query,
         count(*) OVER w AS tracked, sum(calls) OVER w AS all_calls, sum(seconds) OVER w AS all_seconds, sum(rows) OVER w AS all_rows,
         row_number() OVER (PARTITION BY datname ORDER BY seconds DESC, queryid) AS rank
  FROM vector_statements
  WINDOW w AS (PARTITION BY datname)
)
SELECT * FROM ranked WHERE rank <= $1::integer ORDER BY datname, rank`;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

interface Row extends Record<string, unknown> {
  queryid: string;
  calls: string;
  seconds: number;
  rows: string;
  query: string;
  tracked: string;
  all_calls: string;
  all_seconds: number;
  all_rows: string;
  /** Every-database statement only. */
  datname?: string;
  primary_database?: boolean;
}

/** The statement without comments, whitespace collapsed, cut to QUERY_TEXT_MAX characters. */
export function queryLabel(text: string): string {
  const flat = text
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return flat.length > QUERY_TEXT_MAX ? `${flat.slice(0, QUERY_TEXT_MAX - 3)}...` : flat;
}

/** Statements pg_stat_statements plans and normalizes; everything else is a utility statement kept verbatim. */
const OPTIMIZABLE = /^(select|insert|update|delete|with|values|table|merge)\b/i;

/**
 * True when the text can carry no literal: an optimizable statement (its constants became $n) with no
 * quoted string, dollar-quoted body or bare number left. Conservative on purpose: a statement with a
 * type modifier such as vector(3) is left out rather than risk a literal.
 */
export function isNormalizedStatement(text: string): boolean {
  const flat = queryLabel(text);
  if (!OPTIMIZABLE.test(flat)) return false;
  if (/'/.test(flat) || /\$[A-Za-z_]*\$/.test(flat)) return false;
  return !/(?<![\w$.])\d/.test(flat);
}

export function statementsSamples(rows: readonly Row[], options: { queryText?: boolean; database?: string } = {}): Sample[] {
  const first = rows[0];
  const db: Labels = options.database === undefined ? {} : { datname: options.database };
  // Totals carry no label with one database (labels left out, as before auto-discovery).
  const totals = options.database === undefined ? {} : { labels: db };
  const samples: Sample[] = [
    { family: FAMILIES.allCalls.name, ...totals, value: Number(first?.all_calls ?? 0) },
    { family: FAMILIES.allSeconds.name, ...totals, value: Number(first?.all_seconds ?? 0) },
    { family: FAMILIES.allRows.name, ...totals, value: Number(first?.all_rows ?? 0) },
    { family: FAMILIES.tracked.name, ...totals, value: Number(first?.tracked ?? 0) },
  ];
  for (const row of rows) {
    const labels: Labels = { ...db, queryid: row.queryid };
    const calls = Number(row.calls);
    samples.push(
      { family: FAMILIES.calls.name, labels, value: calls },
      { family: FAMILIES.seconds.name, labels, value: Number(row.seconds) },
      { family: FAMILIES.rows.name, labels, value: Number(row.rows) },
      { family: FAMILIES.mean.name, labels, value: calls > 0 ? Number(row.seconds) / calls : 0 },
    );
    if (options.queryText && isNormalizedStatement(row.query)) {
      samples.push({ family: FAMILIES.info.name, labels: { ...labels, query: queryLabel(row.query) }, value: 1 });
    }
  }
  return samples;
}

async function extensionSchema(query: QueryFn): Promise<string | undefined> {
  const [row] = await query<{ schema: string }>(STATEMENTS_SCHEMA_SQL);
  return row?.schema;
}

export interface StatementsOptions {
  topN: number;
  /** Publish pgvector_statements_query_info (normalized statements only); off by default. */
  queryText?: boolean;
  /** With auto-discovery: the watched databases' include/exclude lists; every one of them is read at once. */
  databases?: { include: readonly string[]; exclude: readonly string[] };
}

/** Per watched database (the primary connection's always), its samples labelled datname. */
function everyDatabaseSamples(rows: readonly Row[], options: StatementsOptions): Sample[] {
  const watched = databaseSelector(options.databases!.include, options.databases!.exclude);
  const byDatabase = new Map<string, Row[]>();
  for (const row of rows) {
    if (!row.primary_database && !watched(row.datname!)) continue;
    byDatabase.set(row.datname!, [...(byDatabase.get(row.datname!) ?? []), row]);
  }
  return [...byDatabase].flatMap(([database, own]) => statementsSamples(own, { queryText: options.queryText, database }));
}

export function statementsCollector(options: StatementsOptions): Collector {
  return {
    name: 'statements',
    families: Object.values(FAMILIES),
    async collect({ query, reportFeature }) {
      const schema = await extensionSchema(query);
      if (schema === undefined) {
        reportFeature('pg_stat_statements', false, 'pg_stat_statements is not installed in this database (CREATE EXTENSION pg_stat_statements; it must also be in shared_preload_libraries)');
        return [];
      }
      let rows: Row[];
      try {
        rows = await query<Row>(options.databases ? everyDatabaseStatementsSql(schema) : statementsSql(schema), [options.topN]);
      } catch (err) {
        // pg_stat_statements created but not in shared_preload_libraries ("must be loaded via shared_preload_libraries").
        if (!isObjectNotInPrerequisiteState(err)) throw err;
        reportFeature('pg_stat_statements', false, (err as Error).message);
        return [];
      }
      reportFeature('pg_stat_statements', true);
      return options.databases ? everyDatabaseSamples(rows, options) : statementsSamples(rows, options);
    },
  };
}
