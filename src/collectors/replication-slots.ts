import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_replication_slots as postgres_exporter's replication_slots collector publishes it
 * (collector/pg_replication_slots.go, PostgreSQL 10 and later): per slot whether a consumer is
 * connected, how much WAL it holds back, and (PostgreSQL 13+) whether that WAL is still there. An
 * inactive slot keeps WAL forever: the mixin's PostgresHasReplicationSlotUsed fires on
 * pg_replication_slots_active == 0. A physical slot has no database: its database label is "".
 */
const SLOT = ['slot_name', 'database'] as const;
const SLOT_TYPE = ['slot_name', 'slot_type'] as const;
const compatibility = 'postgres_exporter' as const;

const FAMILIES = {
  active: { name: 'pg_replication_slots_active', help: 'Flag indicating if the slot is active', type: 'gauge', labelNames: SLOT, compatibility },
  lsnDiff: { name: 'pg_replication_slots_pg_wal_lsn_diff', help: 'Replication lag in bytes', type: 'gauge', labelNames: SLOT, compatibility },
  currentWal: { name: 'pg_replication_slots_slot_current_wal_lsn', help: 'current wal lsn value', type: 'gauge', labelNames: SLOT_TYPE, compatibility },
  confirmedFlush: {
    name: 'pg_replication_slots_slot_confirmed_flush_lsn',
    help: 'last lsn confirmed flushed to the replication slot',
    type: 'gauge',
    labelNames: SLOT_TYPE,
    compatibility,
  },
  isActive: { name: 'pg_replication_slots_slot_is_active', help: 'whether the replication slot is active or not', type: 'gauge', labelNames: SLOT_TYPE, compatibility },
  safeWal: {
    name: 'pg_replication_slots_safe_wal_size_bytes',
    help: 'number of bytes that can be written to WAL such that this slot is not in danger of getting in state lost',
    type: 'gauge',
    labelNames: SLOT_TYPE,
    compatibility,
  },
  walStatus: {
    name: 'pg_replication_slots_wal_status',
    help: 'availability of WAL files claimed by this slot',
    type: 'gauge',
    labelNames: ['slot_name', 'slot_type', 'wal_status'],
    compatibility,
  },
} satisfies Record<string, MetricFamily>;

/**
 * On a standby the WAL position is the last one received. safe_wal_size and wal_status exist from
 * PostgreSQL 13 on: read through to_jsonb so that one statement serves every version (NULL before 13).
 */
export const REPLICATION_SLOTS_SQL = `
SELECT s.slot_name,
       s.slot_type,
       s.database,
       s.active,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, s.restart_lsn)::float8 AS lsn_diff,
       pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END, '0/0')::float8 AS current_wal_lsn,
       pg_wal_lsn_diff(COALESCE(s.confirmed_flush_lsn, '0/0'), '0/0')::float8 AS confirmed_flush_lsn,
       (to_jsonb(s) ->> 'safe_wal_size')::float8 AS safe_wal_size,
       to_jsonb(s) ->> 'wal_status' AS wal_status
  FROM pg_replication_slots s`;

export interface SlotRow extends Record<string, unknown> {
  slot_name: string | null;
  slot_type: string | null;
  database: string | null;
  active: boolean | null;
  lsn_diff: number | null;
  current_wal_lsn: number | null;
  confirmed_flush_lsn: number | null;
  safe_wal_size: number | null;
  wal_status: string | null;
}

/** NULLs as postgres_exporter maps them: "" for the slot/database pair, "unknown" for the slot/type pair. */
export function replicationSlotSamples(rows: SlotRow[]): Sample[] {
  const samples: Sample[] = [];
  for (const row of rows) {
    const slot = { slot_name: row.slot_name ?? '', database: row.database ?? '' };
    const typed = { slot_name: row.slot_name ?? 'unknown', slot_type: row.slot_type ?? 'unknown' };
    if (row.active !== null) samples.push({ family: FAMILIES.active.name, labels: slot, value: row.active ? 1 : 0 });
    if (row.lsn_diff !== null) samples.push({ family: FAMILIES.lsnDiff.name, labels: slot, value: row.lsn_diff });
    if (row.current_wal_lsn !== null) samples.push({ family: FAMILIES.currentWal.name, labels: typed, value: row.current_wal_lsn });
    if (row.active === true && row.confirmed_flush_lsn !== null) samples.push({ family: FAMILIES.confirmedFlush.name, labels: typed, value: row.confirmed_flush_lsn });
    if (row.active !== null) samples.push({ family: FAMILIES.isActive.name, labels: typed, value: row.active ? 1 : 0 });
    if (row.safe_wal_size !== null) samples.push({ family: FAMILIES.safeWal.name, labels: typed, value: row.safe_wal_size });
    if (row.wal_status !== null) samples.push({ family: FAMILIES.walStatus.name, labels: { ...typed, wal_status: row.wal_status }, value: 1 });
  }
  return samples;
}

export function replicationSlotsCollector(): Collector {
  return {
    name: 'replication_slots',
    families: Object.values(FAMILIES),
    async collect({ query }) {
      return replicationSlotSamples(await query<SlotRow>(REPLICATION_SLOTS_SQL));
    },
  };
}
