import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * The server's role and its replication lag. On a primary: each connected standby's lag from
 * pg_stat_replication. On a standby: how far replay is behind what was received, and whether the WAL
 * receiver is streaming. Lag families carry application_name/client_addr/state on a primary and no
 * labels on a standby (an empty label is no label in Prometheus).
 */
const STANDBY_LABELS = ['application_name', 'client_addr', 'state'] as const;

const FAMILIES = {
  isStandby: {
    name: 'pg_replication_is_standby',
    help: 'Whether the server is a standby in recovery, pg_is_in_recovery() (1), or a primary (0).',
    type: 'gauge',
    labelNames: [],
  },
  lagBytes: {
    name: 'pg_replication_lag_bytes',
    help: "Replication lag in bytes of WAL. On a primary, per standby: pg_current_wal_lsn() - replay_lsn. On a standby: last WAL received - last WAL replayed.",
    type: 'gauge',
    labelNames: STANDBY_LABELS,
  },
  lagSeconds: {
    name: 'pg_replication_lag_seconds',
    help: 'Replication lag in seconds. On a primary, per standby: replay_lag. On a standby: now() - pg_last_xact_replay_timestamp(), 0 when everything received has been replayed.',
    type: 'gauge',
    labelNames: STANDBY_LABELS,
  },
  connectedStandbys: {
    name: 'pg_replication_connected_standbys',
    help: 'On a primary: WAL sender processes, one per connected standby (rows of pg_stat_replication).',
    type: 'gauge',
    labelNames: [],
  },
  // postgres_exporter's names (its replication collector and its example queries.yaml), used by its mixin:
  // unlabelled, 0 on a primary. pg_replication_is_standby above says the same as is_replica and stays.
  isReplica: { name: 'pg_replication_is_replica', help: 'Indicates if the server is a replica', type: 'gauge', labelNames: [], compatibility: 'postgres_exporter' },
  lag: {
    name: 'pg_replication_lag',
    help: 'Replication lag behind master in seconds',
    type: 'gauge',
    labelNames: [],
    compatibility: 'postgres_exporter',
  },
  lastReplay: { name: 'pg_replication_last_replay_seconds', help: 'Age of last replay in seconds', type: 'gauge', labelNames: [], compatibility: 'postgres_exporter' },
  streaming: {
    name: 'pg_replication_wal_receiver_streaming',
    help: "On a standby: 1 when the WAL receiver's status (pg_stat_wal_receiver) is 'streaming', 0 otherwise or when there is no WAL receiver.",
    type: 'gauge',
    labelNames: [],
  },
} satisfies Record<string, MetricFamily>;

/**
 * Role, and lag as postgres_exporter computes it (collector/pg_replication.go): 0 on a primary and on a
 * standby that has replayed all it received, else the age of the last replayed transaction; the age of the
 * last replay regardless (0 on a primary, where there is none).
 */
export const ROLE_SQL = `
SELECT pg_is_in_recovery() AS standby,
       CASE WHEN NOT pg_is_in_recovery() THEN 0
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
       END::float8 AS lag,
       COALESCE(greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp())), 0)::float8 AS last_replay`;

export interface RoleRow extends Record<string, unknown> {
  standby: boolean;
  lag: number | null;
  last_replay: number;
}

export function roleSamples(role: RoleRow): Sample[] {
  return [
    { family: FAMILIES.isReplica.name, value: role.standby ? 1 : 0 },
    { family: FAMILIES.lag.name, value: role.lag ?? 0 },
    { family: FAMILIES.lastReplay.name, value: role.last_replay },
  ];
}

/**
 * One row per standby. The details of other roles' WAL senders are NULL without pg_read_all_stats
 * (pg_monitor has it). replay_lsn is NULL until the standby first reports; replay_lag turns NULL a
 * little after the standby has caught up and WAL traffic stops.
 */
export const PRIMARY_SQL = `
SELECT application_name,
       COALESCE(host(client_addr), '') AS client_addr,
       state,
       pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::float8 AS lag_bytes,
       extract(epoch FROM replay_lag)::float8 AS lag_seconds
  FROM pg_stat_replication`;

/**
 * Replay lag measured as the age of the last replayed transaction would grow forever on an idle
 * primary; it counts only while received WAL is still waiting to be replayed.
 */
export const STANDBY_SQL = `
SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE greatest(0, extract(epoch FROM now() - pg_last_xact_replay_timestamp()))
       END::float8 AS lag_seconds,
       greatest(0, pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()))::float8 AS lag_bytes,
       (SELECT status FROM pg_stat_wal_receiver) AS receiver_status`;

export interface PrimaryRow extends Record<string, unknown> {
  application_name: string | null;
  client_addr: string;
  state: string | null;
  lag_bytes: number | null;
  lag_seconds: number | null;
}

export interface StandbyRow extends Record<string, unknown> {
  lag_seconds: number | null;
  lag_bytes: number | null;
  receiver_status: string | null;
}

/** A standby that has not reported a replay position yet has no lag to show; one caught up with no traffic has 0 s. */
export function primarySamples(rows: PrimaryRow[]): Sample[] {
  const samples: Sample[] = [
    { family: FAMILIES.isStandby.name, value: 0 },
    { family: FAMILIES.connectedStandbys.name, value: rows.length },
  ];
  for (const row of rows) {
    const labels = { application_name: row.application_name ?? '', client_addr: row.client_addr, state: row.state ?? '' };
    if (row.lag_bytes === null) continue;
    samples.push({ family: FAMILIES.lagBytes.name, labels, value: row.lag_bytes });
    const seconds = row.lag_seconds ?? (row.lag_bytes === 0 ? 0 : null);
    if (seconds !== null) samples.push({ family: FAMILIES.lagSeconds.name, labels, value: seconds });
  }
  return samples;
}

/** NULL lag (nothing received or replayed since the standby started) is left out, never shown as 0. */
export function standbySamples(row: StandbyRow): Sample[] {
  const samples: Sample[] = [
    { family: FAMILIES.isStandby.name, value: 1 },
    { family: FAMILIES.streaming.name, value: row.receiver_status === 'streaming' ? 1 : 0 },
  ];
  if (row.lag_bytes !== null) samples.push({ family: FAMILIES.lagBytes.name, value: row.lag_bytes });
  if (row.lag_seconds !== null) samples.push({ family: FAMILIES.lagSeconds.name, value: row.lag_seconds });
  return samples;
}

export function replicationCollector(): Collector {
  return {
    name: 'replication',
    families: Object.values(FAMILIES),
    async collect({ query }) {
      const [role] = await query<RoleRow>(ROLE_SQL);
      if (!role) return [];
      if (role.standby) {
        const [row] = await query<StandbyRow>(STANDBY_SQL);
        return [...roleSamples(role), ...(row ? standbySamples(row) : [])];
      }
      return [...roleSamples(role), ...primarySamples(await query<PrimaryRow>(PRIMARY_SQL))];
    },
  };
}
