import type { Collector, MetricFamily, Sample } from './collector.js';

/**
 * pg_stat_activity as postgres_exporter publishes it (count and oldest transaction per database and
 * state), plus what on-call needs when connections run out: how full the server is, who holds the
 * connections (application_name, bounded to the top N plus "other"), idle-in-transaction sessions,
 * lock waiters, and the search service's own pool as the database sees it.
 * The exporter's own connections (application_name pgvector-exporter) are counted like any other.
 */
/**
 * postgres_exporter's current labels (collector/pg_stat_activity.go; 0.11 had datname and state only).
 * application_name is whatever clients set: its values are as many as the clients' names.
 */
const ACTIVITY_LABELS = ['datname', 'state', 'usename', 'application_name', 'backend_type', 'wait_event_type', 'wait_event'] as const;

const FAMILIES = {
  count: { name: 'pg_stat_activity_count', help: 'number of connections in this state', type: 'gauge', labelNames: ACTIVITY_LABELS, compatibility: 'postgres_exporter' },
  maxTxDuration: {
    name: 'pg_stat_activity_max_tx_duration',
    help: 'max duration in seconds any active transaction has been running',
    type: 'gauge',
    labelNames: ACTIVITY_LABELS,
    compatibility: 'postgres_exporter',
  },
  applications: {
    name: 'pg_stat_activity_application_connections',
    help: 'Client backends by application_name: the top N names by connection count, the rest summed as "other".',
    type: 'gauge',
    labelNames: ['application_name'],
  },
  maxConnections: {
    name: 'pg_settings_max_connections',
    help: 'Sets the maximum number of concurrent connections.',
    type: 'gauge',
    labelNames: [],
    compatibility: 'postgres_exporter',
  },
  superuserReserved: {
    name: 'pg_settings_superuser_reserved_connections',
    help: 'Sets the number of connection slots reserved for superusers.',
    type: 'gauge',
    labelNames: [],
    compatibility: 'postgres_exporter',
  },
  utilization: {
    name: 'pg_connections_utilization_ratio',
    help: 'Client backends over the connection slots open to ordinary roles (max_connections - superuser_reserved_connections - reserved_connections).',
    type: 'gauge',
    labelNames: [],
  },
  idleInTransaction: {
    name: 'pg_stat_activity_max_idle_in_transaction_seconds',
    help: "Longest time any session has been in state 'idle in transaction' (or aborted), from state_change; 0 when none.",
    type: 'gauge',
    labelNames: [],
  },
  lockWaiters: {
    name: 'pg_locks_waiting_backends',
    help: "Backends whose wait_event_type is 'Lock': waiting for a heavyweight lock held by another session.",
    type: 'gauge',
    labelNames: [],
  },
  appPool: {
    name: 'rag_app_pool_connections',
    help: "The search service's connections (its configured application_name) by pg_stat_activity state.",
    type: 'gauge',
    labelNames: ['state'],
  },
  appPoolUtilization: {
    name: 'rag_app_pool_utilization_ratio',
    help: "The search service's connections over its configured pool maximum (app.pool_max).",
    type: 'gauge',
    labelNames: [],
  },
} satisfies Record<string, MetricFamily>;

/** The states postgres_exporter always reports (0 when empty), so series never appear and vanish. */
export const ACTIVITY_STATES = ['active', 'idle', 'idle in transaction', 'idle in transaction (aborted)', 'fastpath function call', 'disabled'];

/**
 * Every figure of the collector in one statement, so pg_stat_activity is read once per poll (one
 * consistent picture, one statement): $1 ACTIVITY_STATES, $2 the search service's application_name,
 * $3 how many application names are kept.
 *
 * - `activity`: postgres_exporter's current pg_stat_activity query (its own session left out), restricted
 *   to non-template databases (templates only ever show a CREATE DATABASE in passing). A state without
 *   sessions is one row with empty usename/application_name/backend_type/wait_event labels and 0.
 * - server-wide figures (the other columns). Lock waiters come from pg_stat_activity.wait_event_type, not
 *   pg_locks: reading pg_locks takes every lock-manager partition lock, which a 15-second poll should not
 *   do to a busy server. reserved_connections exists from PostgreSQL 16 (missing_ok keeps this working on 15).
 * - `applications`: client backends per application_name, the top $3 by count (ties by name) kept, the
 *   rest folded into 'other'.
 * - `app_pool`: the search service's connections by state (client backends with its application_name).
 */
export const CONNECTIONS_SQL = `
WITH activity AS MATERIALIZED (
  SELECT pid = pg_backend_pid() AS own, datname, state, usename, application_name, backend_type,
         wait_event_type, wait_event, xact_start, state_change
    FROM pg_stat_activity
),
per_state AS (
  SELECT d.datname,
         s.state,
         COALESCE(a.usename::text, '') AS usename,
         COALESCE(a.application_name, '') AS application_name,
         COALESCE(a.backend_type, '') AS backend_type,
         COALESCE(a.wait_event_type, '') AS wait_event_type,
         COALESCE(a.wait_event, '') AS wait_event,
         COALESCE(a.count, 0)::float8 AS count,
         COALESCE(a.max_tx_duration, 0)::float8 AS max_tx_duration
    FROM unnest($1::text[]) AS s(state)
   CROSS JOIN pg_database d
    LEFT JOIN (SELECT datname, state, usename, application_name, backend_type, wait_event_type, wait_event, count(*) AS count,
                      max(extract(epoch FROM now() - xact_start)) AS max_tx_duration
                 FROM activity
                WHERE NOT own
                GROUP BY datname, state, usename, application_name, backend_type, wait_event_type, wait_event) a
      ON a.datname = d.datname AND a.state = s.state
   WHERE NOT d.datistemplate
),
apps AS (
  SELECT application_name, count(*) AS n,
         row_number() OVER (ORDER BY count(*) DESC, application_name) AS rank
    FROM activity
   WHERE backend_type = 'client backend'
   GROUP BY application_name
),
applications AS (
  SELECT CASE WHEN rank <= $3 THEN application_name ELSE 'other' END AS application_name, sum(n)::float8 AS count
    FROM apps
   GROUP BY 1
),
app_pool AS (
  SELECT state, count(*)::float8 AS count
    FROM activity
   WHERE backend_type = 'client backend' AND application_name = $2 AND state IS NOT NULL
   GROUP BY state
)
SELECT current_setting('max_connections')::float8 AS max_connections,
       current_setting('superuser_reserved_connections')::float8 AS superuser_reserved_connections,
       COALESCE(current_setting('reserved_connections', true), '0')::float8 AS reserved_connections,
       count(*) FILTER (WHERE backend_type = 'client backend')::float8 AS client_backends,
       COALESCE(max(extract(epoch FROM now() - state_change))
                  FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')), 0)::float8 AS max_idle_in_transaction,
       count(*) FILTER (WHERE wait_event_type = 'Lock')::float8 AS lock_waiters,
       count(*) FILTER (WHERE backend_type = 'client backend' AND application_name = $2)::float8 AS app_connections,
       (SELECT COALESCE(json_agg(p), '[]') FROM per_state p) AS activity,
       (SELECT COALESCE(json_agg(a), '[]') FROM applications a) AS applications,
       (SELECT COALESCE(json_agg(p), '[]') FROM app_pool p) AS app_pool
  FROM activity`;

interface ActivityRow extends Record<string, unknown> {
  datname: string;
  state: string;
  usename: string;
  application_name: string;
  backend_type: string;
  wait_event_type: string;
  wait_event: string;
  count: number;
  max_tx_duration: number;
}

export interface SummaryRow extends Record<string, unknown> {
  max_connections: number;
  superuser_reserved_connections: number;
  reserved_connections: number;
  client_backends: number;
  max_idle_in_transaction: number;
  lock_waiters: number;
  app_connections: number;
}

interface CountRow extends Record<string, unknown> {
  count: number;
}

/** The one row of CONNECTIONS_SQL (the arrays arrive as JSON: numbers as float8 writes them, exactly). */
export interface ConnectionsRow extends SummaryRow {
  activity: ActivityRow[];
  applications: (CountRow & { application_name: string })[];
  app_pool: (CountRow & { state: string })[];
}

export interface ConnectionsOptions {
  topApplications: number;
  appApplicationName: string;
  appPoolMax: number;
}

export function activitySamples(rows: ActivityRow[]): Sample[] {
  return rows.flatMap((row) => {
    const labels = Object.fromEntries(ACTIVITY_LABELS.map((label) => [label, row[label]]));
    return [
      { family: FAMILIES.count.name, labels, value: row.count },
      { family: FAMILIES.maxTxDuration.name, labels, value: row.max_tx_duration },
    ];
  });
}

/** Ratios are 0 when their denominator is not positive (a misconfigured server must not publish Infinity). */
function ratio(numerator: number, denominator: number): number {
  return denominator > 0 ? numerator / denominator : 0;
}

export function summarySamples(row: SummaryRow, appPoolMax: number): Sample[] {
  const slots = row.max_connections - row.superuser_reserved_connections - row.reserved_connections;
  return [
    { family: FAMILIES.maxConnections.name, value: row.max_connections },
    { family: FAMILIES.superuserReserved.name, value: row.superuser_reserved_connections },
    { family: FAMILIES.utilization.name, value: ratio(row.client_backends, slots) },
    { family: FAMILIES.idleInTransaction.name, value: row.max_idle_in_transaction },
    { family: FAMILIES.lockWaiters.name, value: row.lock_waiters },
    { family: FAMILIES.appPoolUtilization.name, value: ratio(row.app_connections, appPoolMax) },
  ];
}

/** "other" is always published (0 when every name fits), so a dashboard's stack never loses a series. */
export function applicationSamples(rows: (CountRow & { application_name: string })[]): Sample[] {
  const samples: Sample[] = rows.map((row) => ({ family: FAMILIES.applications.name, labels: { application_name: row.application_name }, value: row.count }));
  if (!rows.some((row) => row.application_name === 'other')) {
    samples.push({ family: FAMILIES.applications.name, labels: { application_name: 'other' }, value: 0 });
  }
  return samples;
}

/** Every state is published, 0 when empty, so the pool panel shows a flat line rather than "No data". */
export function appPoolSamples(rows: (CountRow & { state: string })[]): Sample[] {
  const byState = new Map(rows.map((row) => [row.state, row.count]));
  const states = new Set([...ACTIVITY_STATES, ...byState.keys()]);
  return [...states].map((state) => ({ family: FAMILIES.appPool.name, labels: { state }, value: byState.get(state) ?? 0 }));
}

export function connectionsCollector(options: ConnectionsOptions): Collector {
  return {
    name: 'connections',
    families: Object.values(FAMILIES),
    async collect({ query }) {
      const [row] = await query<ConnectionsRow>(CONNECTIONS_SQL, [ACTIVITY_STATES, options.appApplicationName, options.topApplications]);
      if (!row) return [];
      return [...activitySamples(row.activity), ...summarySamples(row, options.appPoolMax), ...applicationSamples(row.applications), ...appPoolSamples(row.app_pool)];
    },
  };
}
