import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ACTIVITY_STATES,
  CONNECTIONS_SQL,
  appPoolSamples,
  connectionsCollector,
  summarySamples,
  type ConnectionsOptions,
  type ConnectionsRow,
} from '../src/collectors/connections.js';
import { type TestDatabase } from './helpers/database.js';
import { eventually } from './helpers/exporter.js';
import { collectorContext, connect, exporterLogin, recordingContext, samplesOf, valueOf, useDatabaseClient } from './helpers/collector-context.js';

// Other test files share the server, so assertions are about this file's own connections (unique
// application names) or relations that hold whatever else is connected.
describe('connections collector', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let opened: pg.Client[] = [];
  const app = `rag-search-${randomBytes(3).toString('hex')}`;
  const options: ConnectionsOptions = { topApplications: 100, appApplicationName: app, appPoolMax: 50 };

  async function open(count: number, applicationName: string): Promise<pg.Client[]> {
    const clients = await Promise.all(Array.from({ length: count }, () => connect(db.url, applicationName)));
    opened.push(...clients);
    return clients;
  }

  useDatabaseClient((opened) => ({ db, client } = opened));
  afterEach(async () => {
    await Promise.all(opened.map((c) => c.end().catch(() => undefined)));
    opened = [];
  });

  it('publishes pg_stat_activity_count/max_tx_duration with postgres_exporter\'s current labels, every state, its own session left out', async () => {
    const [inTx, busy] = await open(2, 'holder');
    await inTx!.query('BEGIN');
    await inTx!.query('SELECT txid_current()');
    const begun = Date.now();
    const busyPid = (await busy!.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
    // Long enough to outlast the collect on a busy machine; cancelled once the snapshot is taken.
    const sleeping = busy!.query('SELECT pg_sleep(60)').catch(() => undefined);
    await eventually(
      async () => (await client.query("SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event = 'PgSleep'", [busyPid])).rowCount === 1,
      'the busy session sleeping',
    );
    // The transaction is at least a second old (max_tx_duration >= 1 below): a state of the clock, not a proxy.
    await new Promise((r) => setTimeout(r, Math.max(0, 1100 - (Date.now() - begun))));

    const samples = await connectionsCollector(options).collect(collectorContext(client));
    await client.query('SELECT pg_cancel_backend($1)', [busyPid]);
    await sleeping;
    const sum = (family: string, labels: Record<string, string>) => samplesOf(samples, family, labels).reduce((n, s) => n + ('value' in s ? s.value : 0), 0);
    for (const state of ACTIVITY_STATES) expect(samplesOf(samples, 'pg_stat_activity_count', { datname: db.name, state }).length, state).toBeGreaterThanOrEqual(1);
    for (const sample of samplesOf(samples, 'pg_stat_activity_count', {})) {
      expect(Object.keys(sample.labels ?? {}).sort()).toEqual(['application_name', 'backend_type', 'datname', 'state', 'usename', 'wait_event', 'wait_event_type']);
    }
    expect(sum('pg_stat_activity_count', { datname: db.name, state: 'idle in transaction', application_name: 'holder' })).toBe(1);
    expect(sum('pg_stat_activity_count', { datname: db.name, state: 'active', application_name: 'holder', wait_event_type: 'Timeout', wait_event: 'PgSleep' })).toBe(1);
    // postgres_exporter leaves its own session out: the collector's query is not counted as active.
    const own = (await client.query<{ application_name: string }>('SELECT current_setting(\'application_name\') AS application_name')).rows[0]!.application_name;
    expect(sum('pg_stat_activity_count', { datname: db.name, state: 'active', application_name: own })).toBe(0);
    expect(sum('pg_stat_activity_count', { datname: db.name, state: 'disabled' })).toBe(0);
    expect(valueOf(samples, 'pg_stat_activity_max_tx_duration', { datname: db.name, state: 'idle in transaction', application_name: 'holder' })).toBeGreaterThanOrEqual(1);
    expect(valueOf(samples, 'pg_stat_activity_max_idle_in_transaction_seconds')).toBeGreaterThanOrEqual(1);
    expect(samplesOf(samples, 'pg_stat_activity_count', { datname: 'template1' })).toHaveLength(0);
  });

  it("measures the search service's pool by its application_name, and the server's utilisation", async () => {
    const before = await connectionsCollector(options).collect(collectorContext(client));
    expect(valueOf(before, 'rag_app_pool_utilization_ratio')).toBe(0);
    for (const state of ACTIVITY_STATES) expect(valueOf(before, 'rag_app_pool_connections', { state })).toBe(0);

    const pool = await open(10, app);
    await pool[0]!.query('BEGIN');
    await pool[0]!.query('SELECT 1');
    const statements: string[] = [];
    const after = await connectionsCollector(options).collect(recordingContext(client, statements));
    // Every figure from one read of pg_stat_activity.
    expect(statements).toHaveLength(1);
    expect(statements[0]!.match(/pg_stat_activity/g)).toHaveLength(1);
    expect(valueOf(after, 'rag_app_pool_connections', { state: 'idle' })).toBe(9);
    expect(valueOf(after, 'rag_app_pool_connections', { state: 'idle in transaction' })).toBe(1);
    expect(valueOf(after, 'rag_app_pool_utilization_ratio')).toBeCloseTo(10 / 50);

    const maxConnections = valueOf(after, 'pg_settings_max_connections');
    const reserved = valueOf(after, 'pg_settings_superuser_reserved_connections');
    const { rows } = await client.query<{ max: string; reserved: string }>(
      "SELECT current_setting('max_connections') AS max, current_setting('superuser_reserved_connections') AS reserved",
    );
    expect(maxConnections).toBe(Number(rows[0]!.max));
    expect(reserved).toBe(Number(rows[0]!.reserved));
    // At least this file's 11 client backends (the 10 pool connections and the collector's own) are counted.
    const clientBackends = valueOf(after, 'pg_connections_utilization_ratio') * (maxConnections - reserved);
    expect(clientBackends).toBeGreaterThanOrEqual(11);
    expect(Math.abs(clientBackends - Math.round(clientBackends))).toBeLessThan(1e-6);
  });

  it('bounds application_name to the top N and folds the rest into "other"', async () => {
    const top = `top-${randomBytes(3).toString('hex')}`;
    const minor = `minor-${randomBytes(3).toString('hex')}`;
    await open(15, top);
    await open(2, minor);

    const all = await connectionsCollector(options).collect(collectorContext(client));
    expect(valueOf(all, 'pg_stat_activity_application_connections', { application_name: top })).toBe(15);
    expect(valueOf(all, 'pg_stat_activity_application_connections', { application_name: minor })).toBe(2);
    expect(valueOf(all, 'pg_stat_activity_application_connections', { application_name: 'pgvector-exporter' })).toBeGreaterThanOrEqual(1);

    const bounded = await connectionsCollector({ ...options, topApplications: 1 }).collect(collectorContext(client));
    const series = samplesOf(bounded, 'pg_stat_activity_application_connections');
    expect(series.map((s) => s.labels!.application_name).sort()).toEqual(['other', top].sort());
    expect(valueOf(bounded, 'pg_stat_activity_application_connections', { application_name: 'other' })).toBeGreaterThanOrEqual(2 + 1);
  });

  it('counts backends waiting on a lock', async () => {
    await client.query('CREATE TABLE IF NOT EXISTS lock_target (id int)');
    const [holder, waiter] = await open(2, 'locks');
    await holder!.query('BEGIN');
    await holder!.query('LOCK TABLE lock_target IN ACCESS EXCLUSIVE MODE');
    const blocked = waiter!.query('SELECT count(*) FROM lock_target');
    // Wait until the server shows the waiter, then collect.
    for (let i = 0; i < 50; i++) {
      const { rows } = await client.query("SELECT 1 FROM pg_stat_activity WHERE application_name = 'locks' AND wait_event_type = 'Lock'");
      if (rows.length) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const samples = await connectionsCollector(options).collect(collectorContext(client));
    expect(valueOf(samples, 'pg_locks_waiting_backends')).toBeGreaterThanOrEqual(1);
    await holder!.query('COMMIT');
    await blocked;
  });

  it('sees other roles\' sessions with the least-privilege pgvector_exporter role alone (pg_monitor)', async () => {
    const pool = await open(3, app);
    await pool[0]!.query('BEGIN');
    await pool[0]!.query('SELECT 1');
    const login = await exporterLogin(db.pool, db.url);
    try {
      const samples = await connectionsCollector(options).collect(collectorContext(login.client));
      // Without pg_read_all_stats, the state of a superuser's session reads NULL and these would be 0.
      expect(valueOf(samples, 'rag_app_pool_connections', { state: 'idle' })).toBe(2);
      expect(valueOf(samples, 'rag_app_pool_connections', { state: 'idle in transaction' })).toBe(1);
    } finally {
      await login.drop();
    }
  });

  it('publishes 0, never Infinity or a missing series, for empty or degenerate inputs', async () => {
    const [row] = (await client.query<ConnectionsRow>(CONNECTIONS_SQL, [ACTIVITY_STATES, 'no-such-application', 100])).rows;
    expect(row!.app_pool).toEqual([]);
    const samples = summarySamples({ ...row!, max_connections: 3, superuser_reserved_connections: 3 }, 0);
    expect(valueOf(samples, 'pg_connections_utilization_ratio')).toBe(0);
    expect(valueOf(samples, 'rag_app_pool_utilization_ratio')).toBe(0);
    expect(appPoolSamples([]).every((s) => 'value' in s && s.value === 0)).toBe(true);
    expect(appPoolSamples([])).toHaveLength(ACTIVITY_STATES.length);
  });
});
