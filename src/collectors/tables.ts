import { isLockTimeout } from '../db/errors.js';
import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_stat_user_tables for the managed tables only (config managed_tables in config schema): the series
 * count stays bounded however many other tables the database holds. The pg_stat_user_tables_* families
 * follow postgres_exporter: counters without _total, last_* as unix seconds and 0 when never.
 */
const LABELS = ['datname', 'schemaname', 'relname'] as const;

function family(name: string, type: 'gauge' | 'counter', help: string): MetricFamily {
  return { name, help, type, labelNames: LABELS };
}

function compatible(name: string, type: 'gauge' | 'counter', help: string): MetricFamily {
  return { ...family(name, type, help), compatibility: 'postgres_exporter' };
}

/** Row column -> family, help in PostgreSQL's documentation words (as postgres_exporter has them). */
const COLUMN_FAMILIES = {
  seq_scan: compatible('pg_stat_user_tables_seq_scan', 'counter', 'Number of sequential scans initiated on this table'),
  idx_scan: compatible('pg_stat_user_tables_idx_scan', 'counter', 'Number of index scans initiated on this table'),
  n_tup_ins: compatible('pg_stat_user_tables_n_tup_ins', 'counter', 'Number of rows inserted'),
  n_tup_upd: compatible('pg_stat_user_tables_n_tup_upd', 'counter', 'Number of rows updated'),
  n_tup_del: compatible('pg_stat_user_tables_n_tup_del', 'counter', 'Number of rows deleted'),
  n_live_tup: compatible('pg_stat_user_tables_n_live_tup', 'gauge', 'Estimated number of live rows'),
  n_dead_tup: compatible('pg_stat_user_tables_n_dead_tup', 'gauge', 'Estimated number of dead rows'),
  n_mod_since_analyze: compatible('pg_stat_user_tables_n_mod_since_analyze', 'gauge', 'Estimated number of rows changed since last analyze'),
  last_vacuum: compatible('pg_stat_user_tables_last_vacuum', 'gauge', 'Last time at which this table was manually vacuumed (not counting VACUUM FULL)'),
  last_autovacuum: compatible('pg_stat_user_tables_last_autovacuum', 'gauge', 'Last time at which this table was vacuumed by the autovacuum daemon'),
  last_analyze: compatible('pg_stat_user_tables_last_analyze', 'gauge', 'Last time at which this table was manually analyzed'),
  last_autoanalyze: compatible('pg_stat_user_tables_last_autoanalyze', 'gauge', 'Last time at which this table was analyzed by the autovacuum daemon'),
  table_size_bytes: family('pg_table_size_bytes', 'gauge', 'Disk space used by the table, excluding indexes (but including TOAST, free space map, and visibility map): pg_table_size().'),
  total_size_bytes: family('pg_total_relation_size_bytes', 'gauge', 'Total disk space used by the table, including all indexes and TOAST data: pg_total_relation_size().'),
} satisfies Record<string, MetricFamily>;

type Column = keyof typeof COLUMN_FAMILIES;
const COLUMNS = Object.keys(COLUMN_FAMILIES) as Column[];

const DERIVED = {
  analyzeAge: family(
    'pg_stat_user_tables_last_analyze_age_seconds',
    'gauge',
    'Seconds since the table was last analyzed, manually or by autovacuum (greatest of last_analyze, last_autoanalyze); +Inf when never.',
  ),
  deadRatio: family('pg_stat_user_tables_dead_tuple_ratio', 'gauge', 'n_dead_tup / (n_live_tup + n_dead_tup); 0 for an empty table.'),
} satisfies Record<string, MetricFamily>;

/** A timestamp column as unix seconds, NULL (never) stays NULL for the mapping to decide. */
const epoch = (column: string) => `extract(epoch FROM s.${column})::float8 AS ${column}`;

/** The activity counters, which a partitioned table (no storage of its own: all zero) reports as the sums over its partitions. */
const SUMMED = ['seq_scan', 'idx_scan', 'n_tup_ins', 'n_tup_upd', 'n_tup_del', 'n_live_tup', 'n_dead_tup', 'n_mod_since_analyze'] as const;

/**
 * The filter on schemaname/relname reaches pg_class before the per-table statistics functions run, so
 * 2,000 other tables cost nothing. The statistics take no lock on the tables; the sizes do (see
 * TABLE_SIZES_SQL), so they are read apart, table by table.
 *
 * The counters are summed over the leaves of pg_partition_tree() (empty for a plain table, which keeps
 * its own): the daily-partitioned query log reads its rows, scans and dead tuples instead of zeros. Its
 * partitions are not reported one by one (one series set per day would grow without bound). The last_*
 * times stay the parent's own: autovacuum never ANALYZEs a partitioned table, so its planner statistics
 * age until the maintenance job's ANALYZE, which is what pg_stat_user_tables_last_analyze_age_seconds shows.
 */
export const TABLES_SQL = `
SELECT current_database() AS datname, s.schemaname, s.relname,
       ${SUMMED.map((c) => `COALESCE(p.${c}, s.${c}::float8) AS ${c}`).join(', ')},
       ${epoch('last_vacuum')}, ${epoch('last_autovacuum')}, ${epoch('last_analyze')}, ${epoch('last_autoanalyze')},
       extract(epoch FROM now() - greatest(s.last_analyze, s.last_autoanalyze))::float8 AS analyze_age_seconds,
       s.relid::int8 AS relid
  FROM pg_stat_user_tables s
  CROSS JOIN LATERAL (
    SELECT ${SUMMED.map((c) => `sum(l.${c})::float8 AS ${c}`).join(', ')}
      FROM pg_partition_tree(s.relid) t JOIN pg_stat_user_tables l ON l.relid = t.relid
     WHERE t.isleaf) p
 WHERE s.schemaname = $1 AND s.relname = ANY($2::text[])`;

/**
 * pg_table_size() and pg_total_relation_size() open the table with ACCESS SHARE, so they wait behind an
 * ACCESS EXCLUSIVE lock (a migration, VACUUM FULL, REINDEX without CONCURRENTLY). One statement per table
 * under the poll's short lock_timeout: a locked table loses only its two size series for that poll; its
 * statistics and every other table's series stay. A partitioned table (the query log, by day) has no
 * storage of its own: its sizes are the sums over its partitions (pg_partition_tree is empty for a plain table).
 */
export const TABLE_SIZES_SQL = `
SELECT COALESCE((SELECT sum(pg_table_size(pt.relid)) FROM pg_partition_tree($1::oid) pt), pg_table_size($1::oid))::float8 AS table_size_bytes,
       COALESCE((SELECT sum(pg_total_relation_size(pt.relid)) FROM pg_partition_tree($1::oid) pt), pg_total_relation_size($1::oid))::float8 AS total_size_bytes`;

const SIZE_COLUMNS = ['table_size_bytes', 'total_size_bytes'] as const;

export type TableRow = Record<string, unknown> & {
  datname: string;
  schemaname: string;
  relname: string;
  analyze_age_seconds: number | null;
} & Record<Column, number | null>;

/**
 * NULL becomes 0, as postgres_exporter does: for last_* it means "never" (unix time 0), for idx_scan
 * "the table has no index", and the sizes can only be NULL if the table was dropped mid-query.
 */
export function tableSamples(row: TableRow): Sample[] {
  const labels = { datname: row.datname, schemaname: row.schemaname, relname: row.relname };
  const samples: Sample[] = COLUMNS.filter((column) => !(SIZE_COLUMNS as readonly string[]).includes(column) || row[column] !== undefined).map((column) => ({
    family: COLUMN_FAMILIES[column].name,
    labels,
    value: row[column] ?? 0,
  }));
  samples.push({ family: DERIVED.analyzeAge.name, labels, value: row.analyze_age_seconds ?? Infinity });
  const live = row.n_live_tup ?? 0;
  const dead = row.n_dead_tup ?? 0;
  samples.push({ family: DERIVED.deadRatio.name, labels, value: live + dead > 0 ? dead / (live + dead) : 0 });
  return samples;
}

export interface TablesOptions {
  schema: string;
  tables: readonly string[];
}

export function tablesCollector(options: TablesOptions): Collector {
  return {
    name: 'tables',
    families: [...Object.values(COLUMN_FAMILIES), ...Object.values(DERIVED)],
    async collect({ query, log }) {
      const rows = await query<TableRow>(TABLES_SQL, [options.schema, options.tables]);
      const locked: string[] = [];
      for (const row of rows) {
        try {
          const [sizes] = await query<Pick<TableRow, (typeof SIZE_COLUMNS)[number]>>(TABLE_SIZES_SQL, [row.relid]);
          Object.assign(row, sizes);
        } catch (err) {
          if (!isLockTimeout(err)) throw err;
          locked.push(row.relname);
        }
        delete row.relid;
      }
      if (locked.length) log.info({ tables: locked }, 'sizes skipped this poll: the tables are locked (ACCESS EXCLUSIVE)');
      return rows.flatMap(tableSamples);
    },
  };
}
