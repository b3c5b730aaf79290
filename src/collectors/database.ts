import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_stat_database for the target database only (the exporter watches one database; the others on the
 * server are someone else's), its size, and how far its oldest unfrozen transaction ID is from the
 * wraparound protection that autovacuum_freeze_max_age triggers.
 * Names, types and labels of pg_stat_database_* and pg_database_size_bytes follow postgres_exporter.
 */
const STAT_LABELS = ['datid', 'datname'] as const;

function statFamily(column: string, type: 'gauge' | 'counter', help: string): MetricFamily {
  return { name: `pg_stat_database_${column}`, help, type, labelNames: STAT_LABELS, compatibility: 'postgres_exporter' };
}

/** pg_stat_database columns published as pg_stat_database_<column>, help in PostgreSQL's documentation words. */
const STAT_FAMILIES = {
  numbackends: statFamily('numbackends', 'gauge', 'Number of backends currently connected to this database.'),
  xact_commit: statFamily('xact_commit', 'counter', 'Number of transactions in this database that have been committed'),
  xact_rollback: statFamily('xact_rollback', 'counter', 'Number of transactions in this database that have been rolled back'),
  blks_read: statFamily('blks_read', 'counter', 'Number of disk blocks read in this database'),
  blks_hit: statFamily(
    'blks_hit',
    'counter',
    'Number of times disk blocks were found already in the buffer cache, so that a read was not necessary (this only includes hits in the PostgreSQL buffer cache, not the operating system\'s file system cache)',
  ),
  tup_returned: statFamily('tup_returned', 'counter', 'Number of rows returned by queries in this database'),
  tup_fetched: statFamily('tup_fetched', 'counter', 'Number of rows fetched by queries in this database'),
  tup_inserted: statFamily('tup_inserted', 'counter', 'Number of rows inserted by queries in this database'),
  tup_updated: statFamily('tup_updated', 'counter', 'Number of rows updated by queries in this database'),
  tup_deleted: statFamily('tup_deleted', 'counter', 'Number of rows deleted by queries in this database'),
  conflicts: statFamily(
    'conflicts',
    'counter',
    'Number of queries canceled due to conflicts with recovery in this database. (Conflicts occur only on standby servers.)',
  ),
  temp_files: statFamily('temp_files', 'counter', 'Number of temporary files created by queries in this database.'),
  temp_bytes: statFamily('temp_bytes', 'counter', 'Total amount of data written to temporary files by queries in this database.'),
  deadlocks: statFamily('deadlocks', 'counter', 'Number of deadlocks detected in this database'),
} satisfies Record<string, MetricFamily>;

type StatColumn = keyof typeof STAT_FAMILIES;

const FAMILIES = {
  size: { name: 'pg_database_size_bytes', help: 'Disk space used by the database', type: 'gauge', labelNames: ['datname'], compatibility: 'postgres_exporter' },
  frozenxidAge: {
    name: 'pg_database_frozenxid_age',
    help: 'Age in transactions of the database\'s datfrozenxid, age(datfrozenxid): autovacuum forces a wraparound-preventing vacuum when it exceeds autovacuum_freeze_max_age.',
    type: 'gauge',
    labelNames: ['datname'],
  },
  freezeMaxAge: {
    name: 'pg_settings_autovacuum_freeze_max_age',
    help: 'Age at which to autovacuum a table to prevent transaction ID wraparound.',
    type: 'gauge',
    labelNames: [],
    compatibility: 'postgres_exporter',
  },
} satisfies Record<string, MetricFamily>;

const STAT_COLUMNS = Object.keys(STAT_FAMILIES) as StatColumn[];

/**
 * One row. pg_database_size() walks the database's directory: cheap for one database, which is why this
 * collector never looks at the others. Counters are cast to float8 so pg hands back numbers, not strings.
 */
export const DATABASE_SQL = `
SELECT s.datid::text AS datid,
       s.datname,
       ${STAT_COLUMNS.map((c) => `s.${c}::float8 AS ${c}`).join(',\n       ')},
       pg_database_size(s.datid)::float8 AS size_bytes,
       age(d.datfrozenxid)::float8 AS frozenxid_age,
       current_setting('autovacuum_freeze_max_age')::float8 AS autovacuum_freeze_max_age
  FROM pg_stat_database s
  JOIN pg_database d ON d.oid = s.datid
 WHERE s.datname = current_database()`;

export type DatabaseRow = Record<string, unknown> & {
  datid: string;
  datname: string;
  size_bytes: number | null;
  frozenxid_age: number | null;
  autovacuum_freeze_max_age: number | null;
} & Record<StatColumn, number | null>;

/** A NULL column is left out (no sample), never published as 0: absent is honest, 0 is a claim. */
export function databaseSamples(row: DatabaseRow): Sample[] {
  const samples: Sample[] = [];
  const stat = { datid: row.datid, datname: row.datname };
  for (const column of STAT_COLUMNS) {
    const value = row[column];
    if (value !== null && value !== undefined) samples.push({ family: STAT_FAMILIES[column].name, labels: stat, value });
  }
  const db = { datname: row.datname };
  if (row.size_bytes !== null) samples.push({ family: FAMILIES.size.name, labels: db, value: row.size_bytes });
  if (row.frozenxid_age !== null) samples.push({ family: FAMILIES.frozenxidAge.name, labels: db, value: row.frozenxid_age });
  if (row.autovacuum_freeze_max_age !== null) samples.push({ family: FAMILIES.freezeMaxAge.name, value: row.autovacuum_freeze_max_age });
  return samples;
}

export function databaseCollector(): Collector {
  return {
    name: 'database',
    families: [...Object.values(STAT_FAMILIES), ...Object.values(FAMILIES)],
    async collect({ query }) {
      const rows = await query<DatabaseRow>(DATABASE_SQL);
      return rows.flatMap(databaseSamples);
    },
  };
}
