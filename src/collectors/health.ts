import type { Collector, MetricFamily, Sample } from './collector.js';
import { requireFeature } from './features.js';

/**
 * system_health_check() per component: one series per component and status, 1 for the current
 * status and 0 for the other two, so every component always has all three series and an alert on
 * `== 1` never meets a series that just appeared or vanished.
 */
const FAMILIES = {
  status: {
    name: 'rag_health_check_status',
    help: 'system_health_check() result per component: 1 for its current status (HEALTHY, WARNING, CRITICAL), 0 for the others.',
    type: 'gauge',
    labelNames: ['component', 'status'],
  },
} satisfies Record<string, MetricFamily>;

export const HEALTH_STATUSES = ['HEALTHY', 'WARNING', 'CRITICAL'] as const;

export const HEALTH_SQL = 'SELECT component, status FROM system_health_check()';

interface Row extends Record<string, unknown> {
  component: string;
  status: string;
}

export function healthSamples(rows: readonly Row[]): Sample[] {
  return rows.flatMap((row) =>
    HEALTH_STATUSES.map((status) => ({
      family: FAMILIES.status.name,
      labels: { component: row.component, status },
      value: row.status === status ? 1 : 0,
    })),
  );
}

export function healthCollector(): Collector {
  return {
    name: 'health',
    families: Object.values(FAMILIES),
    async collect(ctx) {
      const { query, log } = ctx;
      if (!(await requireFeature(ctx, 'health_check'))) return [];
      const rows = await query<Row>(HEALTH_SQL);
      for (const row of rows) {
        // An unknown status leaves all three series at 0: visible, and never mistaken for HEALTHY.
        if (!(HEALTH_STATUSES as readonly string[]).includes(row.status)) {
          log.warn({ component: row.component, status: row.status }, 'system_health_check() returned an unknown status');
        }
      }
      return healthSamples(rows);
    },
  };
}
