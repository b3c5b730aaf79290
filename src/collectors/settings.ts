import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * Numeric server settings as postgres_exporter's settings collector publishes them
 * (collector/pg_setting.go): pg_settings_<name> with dots and dashes as underscores, time units converted
 * to seconds and memory units to bytes (suffix _seconds / _bytes), booleans as 1/0, -1 kept as -1.
 * postgres_exporter publishes every bool/integer/real setting; here a fixed list (the settings its mixin
 * and the common dashboards use, and those that size a pgvector workload), so that every published family
 * is declared and documented. max_connections, superuser_reserved_connections (connections collector) and
 * autovacuum_freeze_max_age (database collector) are published by the collectors that use them.
 */
const SETTINGS: Record<string, '' | 'seconds' | 'bytes'> = {
  max_locks_per_transaction: '',
  max_pred_locks_per_transaction: '',
  max_prepared_transactions: '',
  autovacuum: '',
  autovacuum_max_workers: '',
  autovacuum_naptime: 'seconds',
  autovacuum_vacuum_threshold: '',
  autovacuum_vacuum_scale_factor: '',
  autovacuum_vacuum_insert_threshold: '',
  autovacuum_vacuum_insert_scale_factor: '',
  autovacuum_analyze_threshold: '',
  autovacuum_analyze_scale_factor: '',
  autovacuum_vacuum_cost_delay: 'seconds',
  autovacuum_vacuum_cost_limit: '',
  autovacuum_multixact_freeze_max_age: '',
  vacuum_cost_limit: '',
  shared_buffers: 'bytes',
  work_mem: 'bytes',
  maintenance_work_mem: 'bytes',
  effective_cache_size: 'bytes',
  max_wal_size: 'bytes',
  min_wal_size: 'bytes',
  wal_keep_size: 'bytes',
  max_slot_wal_keep_size: 'bytes',
  checkpoint_timeout: 'seconds',
  checkpoint_completion_target: '',
  max_wal_senders: '',
  max_replication_slots: '',
  hot_standby: '',
  max_worker_processes: '',
  max_parallel_workers: '',
  max_parallel_workers_per_gather: '',
  max_parallel_maintenance_workers: '',
  statement_timeout: 'seconds',
  lock_timeout: 'seconds',
  idle_in_transaction_session_timeout: 'seconds',
  deadlock_timeout: 'seconds',
  random_page_cost: '',
  seq_page_cost: '',
  effective_io_concurrency: '',
  track_io_timing: '',
  fsync: '',
};

const familyName = (setting: string, unit: string) => `pg_settings_${setting.replace(/[.-]/g, '_')}${unit ? `_${unit}` : ''}`;

const FAMILIES: MetricFamily[] = Object.entries(SETTINGS).map(([setting, unit]) => ({
  name: familyName(setting, unit),
  help: `Server Parameter: ${setting}${unit ? ` [Units converted to ${unit}.]` : ''}`,
  type: 'gauge',
  labelNames: [],
  compatibility: 'postgres_exporter',
}));
const DECLARED = new Set(FAMILIES.map((f) => f.name));

export const SETTINGS_SQL = `
SELECT name, setting, COALESCE(unit, '') AS unit, vartype
  FROM pg_settings
 WHERE vartype IN ('bool', 'integer', 'real') AND name = ANY($1::text[])`;

interface Row extends Record<string, unknown> {
  name: string;
  setting: string;
  unit: string;
  vartype: string;
}

const SECONDS: Record<string, number> = { ms: 1 / 1000, s: 1, min: 60, h: 3600, d: 86400 };
/** Memory units, including the block-sized ones pg_settings uses (8kB for shared_buffers, 16MB for WAL segments). */
const BYTES: Record<string, number> = {
  B: 1,
  kB: 2 ** 10,
  MB: 2 ** 20,
  GB: 2 ** 30,
  TB: 2 ** 40,
  '1kB': 2 ** 10,
  '2kB': 2 ** 11,
  '4kB': 2 ** 12,
  '8kB': 2 ** 13,
  '16kB': 2 ** 14,
  '32kB': 2 ** 15,
  '64kB': 2 ** 16,
  '16MB': 2 ** 24,
  '32MB': 2 ** 25,
  '64MB': 2 ** 26,
};

/** One setting as postgres_exporter computes it, or undefined (an unknown unit, as there, is skipped). */
export function settingSample(row: Row): Sample | undefined {
  if (row.vartype === 'bool') return { family: familyName(row.name, ''), value: row.setting === 'on' ? 1 : 0 };
  const raw = Number(row.setting);
  if (!Number.isFinite(raw)) return undefined;
  let unit = '';
  let factor = 1;
  if (row.unit in SECONDS) [unit, factor] = ['seconds', SECONDS[row.unit]!];
  else if (row.unit in BYTES) [unit, factor] = ['bytes', BYTES[row.unit]!];
  else if (row.unit !== '') return undefined;
  // -1 means "disabled" (e.g. max_slot_wal_keep_size) and stays -1 whatever the unit.
  return { family: familyName(row.name, unit), value: raw === -1 ? -1 : raw * factor };
}

export function settingsCollector(): Collector {
  return {
    name: 'settings',
    families: FAMILIES,
    async collect({ query }) {
      const rows = await query<Row>(SETTINGS_SQL, [Object.keys(SETTINGS)]);
      return rows.flatMap((row) => {
        const sample = settingSample(row);
        return sample && DECLARED.has(sample.family) ? [sample] : [];
      });
    },
  };
}
