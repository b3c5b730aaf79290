import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_stat_bgwriter as postgres_exporter's stat_bgwriter collector publishes it
 * (collector/pg_stat_bgwriter.go): cluster-wide counters, named with _total, times in milliseconds as
 * PostgreSQL counts them. PostgreSQL 17 moved the checkpoint columns to pg_stat_checkpointer and dropped
 * buffers_backend(_fsync) (now in pg_stat_io); as postgres_exporter, from 17 on only buffers_clean,
 * maxwritten_clean, buffers_alloc and stats_reset are published here, and the checkpoint counters by the
 * stat_checkpointer collector (off by default there and here).
 */
const counter = (column: string, help: string): MetricFamily => ({
  name: `pg_stat_bgwriter_${column}_total`,
  help,
  type: 'counter',
  labelNames: [],
  compatibility: 'postgres_exporter',
});

/** Column -> family; the before17 flag marks the columns PostgreSQL 17 removed from the view. */
const COLUMNS: { column: string; before17: boolean; family: MetricFamily }[] = [
  { column: 'checkpoints_timed', before17: true, family: counter('checkpoints_timed', 'Number of scheduled checkpoints that have been performed') },
  { column: 'checkpoints_req', before17: true, family: counter('checkpoints_req', 'Number of requested checkpoints that have been performed') },
  {
    column: 'checkpoint_write_time',
    before17: true,
    family: counter('checkpoint_write_time', 'Total amount of time that has been spent in the portion of checkpoint processing where files are written to disk, in milliseconds'),
  },
  {
    column: 'checkpoint_sync_time',
    before17: true,
    family: counter('checkpoint_sync_time', 'Total amount of time that has been spent in the portion of checkpoint processing where files are synchronized to disk, in milliseconds'),
  },
  { column: 'buffers_checkpoint', before17: true, family: counter('buffers_checkpoint', 'Number of buffers written during checkpoints') },
  { column: 'buffers_clean', before17: false, family: counter('buffers_clean', 'Number of buffers written by the background writer') },
  {
    column: 'maxwritten_clean',
    before17: false,
    family: counter('maxwritten_clean', 'Number of times the background writer stopped a cleaning scan because it had written too many buffers'),
  },
  { column: 'buffers_backend', before17: true, family: counter('buffers_backend', 'Number of buffers written directly by a backend') },
  {
    column: 'buffers_backend_fsync',
    before17: true,
    family: counter('buffers_backend_fsync', 'Number of times a backend had to execute its own fsync call (normally the background writer handles those even when the backend does its own write)'),
  },
  { column: 'buffers_alloc', before17: false, family: counter('buffers_alloc', 'Number of buffers allocated') },
  { column: 'stats_reset', before17: false, family: counter('stats_reset', 'Time at which these statistics were last reset') },
];

/** to_jsonb reads whichever columns this server's view has; stats_reset as Unix seconds. */
export const STAT_BGWRITER_SQL = `
SELECT current_setting('server_version_num')::int AS version_num,
       to_jsonb(b) - 'stats_reset' AS counters,
       COALESCE(extract(epoch FROM b.stats_reset), 0)::float8 AS stats_reset
  FROM pg_stat_bgwriter b`;

export interface BgwriterRow extends Record<string, unknown> {
  version_num: number;
  counters: Record<string, number | string | null>;
  stats_reset: number;
}

/** NULL counts as 0, as in postgres_exporter. */
export function bgwriterSamples(row: BgwriterRow): Sample[] {
  const modern = row.version_num >= 170000;
  return COLUMNS.filter((c) => !(modern && c.before17)).map(({ column, family }) => ({
    family: family.name,
    value: column === 'stats_reset' ? row.stats_reset : Number(row.counters[column] ?? 0),
  }));
}

export function statBgwriterCollector(): Collector {
  return {
    name: 'stat_bgwriter',
    families: COLUMNS.map((c) => c.family),
    async collect({ query }) {
      const [row] = await query<BgwriterRow>(STAT_BGWRITER_SQL);
      return row ? bgwriterSamples(row) : [];
    },
  };
}
