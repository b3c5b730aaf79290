import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * Heavyweight locks held or awaited, per database and lock mode, as postgres_exporter's locks collector
 * publishes them (collector/pg_locks.go): every database of pg_database crossed with every lock mode,
 * 0 where there is none, so a mode's series exists before its first lock. The mixin's
 * PostgresAcquiredTooManyLocks divides this by max_locks_per_transaction * max_connections.
 */
const FAMILIES = {
  count: { name: 'pg_locks_count', help: 'Number of locks', type: 'gauge', labelNames: ['datname', 'mode'], compatibility: 'postgres_exporter' },
} satisfies Record<string, MetricFamily>;

/** Lock modes in lower case, as pg_locks.mode lowered; database-less locks (relation-less advisory, ...) are not counted. */
export const LOCKS_SQL = `
SELECT d.datname, m.mode, COALESCE(l.count, 0)::float8 AS count
  FROM (VALUES ('accesssharelock'), ('rowsharelock'), ('rowexclusivelock'), ('shareupdateexclusivelock'), ('sharelock'),
               ('sharerowexclusivelock'), ('exclusivelock'), ('accessexclusivelock'), ('sireadlock')) AS m(mode)
 CROSS JOIN pg_database d
  LEFT JOIN (SELECT database, lower(mode) AS mode, count(*) AS count
               FROM pg_locks
              WHERE database IS NOT NULL
              GROUP BY database, lower(mode)) AS l ON l.mode = m.mode AND l.database = d.oid
 ORDER BY 1, 2`;

interface Row extends Record<string, unknown> {
  datname: string | null;
  mode: string | null;
  count: number;
}

export function locksSamples(rows: Row[]): Sample[] {
  return rows.filter((r) => r.datname !== null && r.mode !== null).map((r) => ({ family: FAMILIES.count.name, labels: { datname: r.datname!, mode: r.mode! }, value: r.count }));
}

export function locksCollector(): Collector {
  return {
    name: 'locks',
    families: Object.values(FAMILIES),
    async collect({ query }) {
      return locksSamples(await query<Row>(LOCKS_SQL));
    },
  };
}
