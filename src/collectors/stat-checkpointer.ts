import { NoDataError, type Collector, type MetricFamily, type Sample } from './collector.js';

/**
 * pg_stat_checkpointer (PostgreSQL 17+) as postgres_exporter's stat_checkpointer collector publishes it
 * (collector/pg_stat_checkpointer.go): the checkpoint counters that left pg_stat_bgwriter. Off by default,
 * as there; before PostgreSQL 17 the view does not exist and the collector reports no data (not a failure).
 * Whether it exists is asked once per collector (the server's version decides), not on every poll.
 */
const counter = (column: string, help: string): MetricFamily => ({
  name: `pg_stat_checkpointer_${column}_total`,
  help,
  type: 'counter',
  labelNames: [],
  compatibility: 'postgres_exporter',
});

const COLUMNS: { column: string; family: MetricFamily }[] = [
  { column: 'num_timed', family: counter('num_timed', 'Number of scheduled checkpoints due to timeout') },
  { column: 'num_requested', family: counter('num_requested', 'Number of requested checkpoints that have been performed') },
  { column: 'restartpoints_timed', family: counter('restartpoints_timed', 'Number of scheduled restartpoints due to timeout or after a failed attempt to perform it') },
  { column: 'restartpoints_req', family: counter('restartpoints_req', 'Number of requested restartpoints') },
  { column: 'restartpoints_done', family: counter('restartpoints_done', 'Number of restartpoints that have been performed') },
  {
    column: 'write_time',
    family: counter('write_time', 'Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are written to disk, in milliseconds'),
  },
  {
    column: 'sync_time',
    family: counter('sync_time', 'Total amount of time that has been spent in the portion of processing checkpoints and restartpoints where files are synchronized to disk, in milliseconds'),
  },
  { column: 'buffers_written', family: counter('buffers_written', 'Number of buffers written during checkpoints and restartpoints') },
  { column: 'stats_reset', family: counter('stats_reset', 'Time at which these statistics were last reset') },
];

export const STAT_CHECKPOINTER_SQL = `
SELECT to_jsonb(c) - 'stats_reset' AS counters, COALESCE(extract(epoch FROM c.stats_reset), 0)::float8 AS stats_reset
  FROM pg_stat_checkpointer c`;

export const HAS_CHECKPOINTER_SQL = "SELECT to_regclass('pg_catalog.pg_stat_checkpointer') IS NOT NULL AS present";

interface Row extends Record<string, unknown> {
  counters: Record<string, number | string | null>;
  stats_reset: number;
}

export function checkpointerSamples(row: Row): Sample[] {
  return COLUMNS.map(({ column, family }) => ({ family: family.name, value: column === 'stats_reset' ? row.stats_reset : Number(row.counters[column] ?? 0) }));
}

export function statCheckpointerCollector(): Collector {
  /**
   * Whether the view exists depends only on the server's version: asked once, and again after a failed
   * poll (the server may have been upgraded in between: its restart fails a poll).
   */
  let present: boolean | undefined;
  return {
    name: 'stat_checkpointer',
    families: COLUMNS.map((c) => c.family),
    async collect({ query }) {
      try {
        present ??= (await query<{ present: boolean }>(HAS_CHECKPOINTER_SQL))[0]?.present === true;
        if (!present) throw new NoDataError('pg_stat_checkpointer exists from PostgreSQL 17 on');
        const [row] = await query<Row>(STAT_CHECKPOINTER_SQL);
        return row ? checkpointerSamples(row) : [];
      } catch (err) {
        if (!(err instanceof NoDataError)) present = undefined;
        throw err;
      }
    },
  };
}
