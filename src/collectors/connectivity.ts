import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_up, the server and pgvector versions, and the exporter's own pool.
 * A failed connection is this collector's measurement (pg_up 0), not its failure. It polls on a
 * connection of its own (ownConnection), so collectors waiting on locks with every pooled connection
 * can never make pg_up read 0 while the server answers; the pool figures are of the shared pool.
 */
const FAMILIES = {
  up: { name: 'pg_up', help: 'Whether the last connection to the database succeeded (1) or not (0).', type: 'gauge', labelNames: [], compatibility: 'postgres_exporter' },
  version: {
    name: 'pg_version_info',
    help: 'PostgreSQL server version (value 1), as server_version and server_version_num.',
    type: 'gauge',
    labelNames: ['server_version', 'server_version_num'],
  },
  pgvector: {
    name: 'pgvector_extension_info',
    help: 'Installed pgvector version in the target database (value 1); absent when the extension is not installed.',
    type: 'gauge',
    labelNames: ['version'],
  },
  poolConnections: {
    name: 'pgvector_exporter_pool_connections',
    help: "Connections in the exporter's own pg pool, by state (total, idle, waiting clients).",
    type: 'gauge',
    labelNames: ['state'],
  },
} satisfies Record<string, MetricFamily>;

/** Whether a connectivity poll's samples say the server did not answer (pg_up 0). */
export function reportsDown(samples: readonly Sample[]): boolean {
  return samples.some((sample) => sample.family === FAMILIES.up.name && 'value' in sample && sample.value === 0);
}

export const CONNECTIVITY_SQL = `
SELECT current_setting('server_version') AS server_version,
       current_setting('server_version_num') AS server_version_num,
       (SELECT extversion FROM pg_extension WHERE extname = 'vector') AS pgvector_version,
       current_user AS role, pg_has_role(current_user, 'pg_monitor', 'USAGE') AS pg_monitor`;

interface Row extends Record<string, unknown> {
  server_version: string;
  server_version_num: string;
  pgvector_version: string | null;
  role: string;
  pg_monitor: boolean;
}

export function connectivityCollector(): Collector {
  return {
    name: 'connectivity',
    families: Object.values(FAMILIES),
    ownConnection: true,
    // A connection attempt that outlasts the poll's deadline is a server not answering: pg_up 0, not no pg_up.
    failureSamples: () => [{ family: FAMILIES.up.name, value: 0 }],
    async collect({ query, poolStats, log, reportFeature }) {
      const pool = poolStats();
      const samples: Sample[] = [
        { family: FAMILIES.poolConnections.name, labels: { state: 'total' }, value: pool.total },
        { family: FAMILIES.poolConnections.name, labels: { state: 'idle' }, value: pool.idle },
        { family: FAMILIES.poolConnections.name, labels: { state: 'waiting' }, value: pool.waiting },
      ];
      let row: Row | undefined;
      try {
        [row] = await query<Row>(CONNECTIVITY_SQL);
      } catch (err) {
        log.warn({ error: (err as Error).message }, 'database unreachable');
        return [...samples, { family: FAMILIES.up.name, value: 0 }];
      }
      samples.push({ family: FAMILIES.up.name, value: 1 });
      if (row) {
        reportFeature(
          'pg_monitor',
          row.pg_monitor,
          `role ${row.role} is not a member of pg_monitor: GRANT pg_monitor TO ${row.role} (without it other sessions' queries, wait events and replication details read as NULL)`,
        );
        samples.push({
          family: FAMILIES.version.name,
          labels: { server_version: row.server_version.split(' ')[0]!, server_version_num: row.server_version_num },
          value: 1,
        });
        if (row.pgvector_version) samples.push({ family: FAMILIES.pgvector.name, labels: { version: row.pgvector_version }, value: 1 });
      }
      return samples;
    },
  };
}
