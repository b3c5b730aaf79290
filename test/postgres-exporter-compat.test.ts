import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NoDataError, type MetricFamily, type Sample } from '../src/collectors/collector.js';
import { familyTypes, parseMetricsText } from '../src/metrics/exposition-text.js';
import { createRegistry } from '../src/metrics/registry.js';
import { registerSelfMetrics } from '../src/metrics/self-metrics.js';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
import { collectorsOptions } from '../src/commands/assembly.js';
import { loadConfig } from '../src/config/load.js';
import { freePort } from '../src/free-port.js';
import { stopChild } from './helpers/child.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { collectorContext, connect } from './helpers/collector-context.js';

/**
 * The families marked compatibility: 'postgres_exporter' must have the names, types and labels that
 * Debian's prometheus-postgres-exporter (0.11, installed by scripts/setup-system.sh) publishes for the
 * same database, so community dashboards and alerts work unchanged. Its `server` label is left out on
 * purpose (Prometheus' target labels identify the server); see docs/metrics.md.
 */
const PEER = '/usr/bin/prometheus-postgres-exporter';
/** pg_stat_user_tables comes from the example queries.yaml the Debian package ships (built in from 0.13). */
const PEER_QUERIES = '/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml';
/** Compatible by contract but absent from postgres_exporter 0.11; shaped after the pg_stat_user_indexes view. */
const NOT_IN_PEER = new Set(['pg_stat_user_indexes_idx_scan']);

/**
 * Where the current postgres_exporter differs from (or adds to) 0.11, ours is held to the current one:
 * names, types and labels written out from its collector sources at commit
 * dbb1987e2f0db61c47efb1bb66cc15bbf16f4c11 (collector/pg_stat_activity.go, pg_stat_bgwriter.go,
 * pg_stat_checkpointer.go, pg_replication.go, pg_replication_slots.go, pg_locks.go; the commit the
 * mixin test reads its mixin at). docs/metrics.md lists these differences.
 */
const ACTIVITY = ['datname', 'state', 'usename', 'application_name', 'backend_type', 'wait_event_type', 'wait_event'];
const counters = (prefix: string, names: string[]) => Object.fromEntries(names.map((n) => [`${prefix}_${n}_total`, { type: 'counter', labels: [] as string[] }]));
const CURRENT_UPSTREAM: Record<string, { type: string; labels: string[] }> = {
  pg_stat_activity_count: { type: 'gauge', labels: ACTIVITY },
  pg_stat_activity_max_tx_duration: { type: 'gauge', labels: ACTIVITY },
  ...counters('pg_stat_bgwriter', [
    'checkpoints_timed', 'checkpoints_req', 'checkpoint_write_time', 'checkpoint_sync_time', 'buffers_checkpoint', 'buffers_clean',
    'maxwritten_clean', 'buffers_backend', 'buffers_backend_fsync', 'buffers_alloc', 'stats_reset',
  ]),
  ...counters('pg_stat_checkpointer', [
    'num_timed', 'num_requested', 'restartpoints_timed', 'restartpoints_req', 'restartpoints_done', 'write_time', 'sync_time', 'buffers_written', 'stats_reset',
  ]),
  pg_replication_is_replica: { type: 'gauge', labels: [] },
  pg_replication_last_replay_seconds: { type: 'gauge', labels: [] },
  pg_locks_count: { type: 'gauge', labels: ['datname', 'mode'] },
  pg_replication_slots_active: { type: 'gauge', labels: ['slot_name', 'database'] },
  pg_replication_slots_pg_wal_lsn_diff: { type: 'gauge', labels: ['slot_name', 'database'] },
  pg_replication_slots_slot_current_wal_lsn: { type: 'gauge', labels: ['slot_name', 'slot_type'] },
  pg_replication_slots_slot_confirmed_flush_lsn: { type: 'gauge', labels: ['slot_name', 'slot_type'] },
  pg_replication_slots_slot_is_active: { type: 'gauge', labels: ['slot_name', 'slot_type'] },
  pg_replication_slots_safe_wal_size_bytes: { type: 'gauge', labels: ['slot_name', 'slot_type'] },
  pg_replication_slots_wal_status: { type: 'gauge', labels: ['slot_name', 'slot_type', 'wal_status'] },
};

/**
 * Published by both but deliberately not compatible: this exporter's family of the same name is its own
 * (docs/metrics.md says how). The test fails on any other family both publish that is not marked compatible.
 */
const SAME_NAME_OUR_OWN = new Set(['pg_replication_lag_seconds', 'pg_replication_lag_bytes']);

/** Families that need what this database does not have (a logical slot with a consumer, PostgreSQL 17, max_slot_wal_keep_size). */
const MAY_BE_EMPTY = new Set([
  'pg_replication_slots_slot_confirmed_flush_lsn',
  'pg_replication_slots_safe_wal_size_bytes',
  ...Object.keys(counters('pg_stat_checkpointer', ['num_timed', 'num_requested', 'restartpoints_timed', 'restartpoints_req', 'restartpoints_done', 'write_time', 'sync_time', 'buffers_written', 'stats_reset'])),
]);

interface PeerFamily {
  type: string;
  labels: Set<string>;
}

function peerFamilies(text: string): Map<string, PeerFamily> {
  const families = new Map<string, PeerFamily>([...familyTypes(text)].map(([name, type]) => [name, { type, labels: new Set<string>() }]));
  for (const sample of parseMetricsText(text)) {
    for (const label of Object.keys(sample.labels)) families.get(sample.name)?.labels.add(label);
  }
  return families;
}

async function scrapePeer(url: string): Promise<Map<string, PeerFamily>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const text = await (await fetch(url)).text();
      if (text.includes('pg_up 1') || /pg_up\{[^}]*\} 1/.test(text)) return peerFamilies(text);
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`postgres_exporter did not answer at ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!existsSync(PEER))('postgres_exporter compatibility', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let peer: ChildProcess;
  let peerFamilies: Map<string, PeerFamily>;
  const families: MetricFamily[] = [];
  const samples: Sample[] = [];

  const slot = `compat_${Math.random().toString(16).slice(2, 10)}`;
  let ourText = '';

  beforeAll(async () => {
    db = await createTestDatabase();
    client = await connect(db.url);
    await client.query('ANALYZE');
    // A physical slot, so both exporters publish the slot families.
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    const port = await freePort();
    const url = new URL(db.url);
    url.searchParams.set('sslmode', 'disable');
    peer = spawn(PEER, [`--web.listen-address=127.0.0.1:${port}`, ...(existsSync(PEER_QUERIES) ? [`--extend.query-path=${PEER_QUERIES}`] : [])], {
      env: { ...process.env, DATA_SOURCE_NAME: url.toString() },
      stdio: 'ignore',
    });
    peerFamilies = await scrapePeer(`http://127.0.0.1:${port}/metrics`);

    const config = loadConfig();
    for (const factory of Object.values(COLLECTOR_FACTORIES)) {
      const collector = factory(collectorsOptions(config));
      families.push(...collector.families);
      if (!collector.families.some((f) => f.compatibility === 'postgres_exporter')) continue;
      try {
        samples.push(...(await collector.collect(collectorContext(client))));
      } catch (err) {
        // stat_checkpointer before PostgreSQL 17: "no data", as in postgres_exporter.
        if (!(err instanceof NoDataError)) throw err;
      }
    }
    const registry = createRegistry();
    registerSelfMetrics(registry).observe('database', 0.01, true);
    ourText = await registry.metrics();
  });
  afterAll(async () => {
    await client?.query('SELECT pg_drop_replication_slot($1)', [slot]).catch(() => undefined);
    // Gone, with its connection, before the database is dropped.
    if (peer) await stopChild(peer);
    await client?.end();
    await db?.drop();
  });

  it("publishes every compatible family with the peer's type and labels (without its server label), or the current postgres_exporter's where 0.11 differs", () => {
    const compatible = families.filter((f) => f.compatibility === 'postgres_exporter');
    expect(compatible.length).toBeGreaterThan(60);
    const checked: string[] = [];
    const differsFrom011: string[] = [];
    for (const family of compatible) {
      const theirs = peerFamilies.get(family.name);
      const current = CURRENT_UPSTREAM[family.name];
      theirs?.labels.delete('server');
      const ourShape = { name: family.name, type: family.type, labels: [...family.labelNames].sort() };
      if (current) {
        expect(ourShape).toEqual({ name: family.name, type: current.type, labels: [...current.labels].sort() });
        if (theirs && (theirs.type !== current.type || [...theirs.labels].sort().join() !== [...current.labels].sort().join())) differsFrom011.push(family.name);
      } else if (theirs) {
        expect(ourShape).toEqual({ name: family.name, type: theirs.type, labels: [...theirs.labels].sort() });
      } else {
        const userTables = family.name.startsWith('pg_stat_user_tables_') && !existsSync(PEER_QUERIES);
        if (!NOT_IN_PEER.has(family.name) && !userTables) expect.fail(`${family.name} is published neither by postgres_exporter 0.11 nor listed as current postgres_exporter`);
        continue;
      }
      // And this exporter really publishes it, with exactly those labels.
      const ours = samples.filter((s) => s.family === family.name);
      if (!MAY_BE_EMPTY.has(family.name)) expect(ours.length, family.name).toBeGreaterThan(0);
      for (const sample of ours) expect(Object.keys(sample.labels ?? {}).sort(), family.name).toEqual([...family.labelNames].sort());
      checked.push(family.name);
    }
    for (const name of ['pg_up', 'pg_stat_database_xact_commit', 'pg_stat_activity_count', 'pg_locks_count', 'pg_replication_lag', 'pg_replication_slots_active', 'pg_stat_bgwriter_checkpoints_timed_total', 'pg_settings_max_locks_per_transaction']) {
      expect(checked).toContain(name);
    }
    // 0.11 labels pg_stat_activity_count with datname and state only: the current labels are checked instead.
    expect(differsFrom011).toContain('pg_stat_activity_count');
    // The slot: same labels and value on both sides.
    expect(samples.find((s) => s.family === 'pg_replication_slots_active' && s.labels?.slot_name === slot)).toMatchObject({ labels: { slot_name: slot, database: '' }, value: 0 });
  });

  it('marks every family both exporters publish as compatible, unless it is one of our own of the same name', () => {
    const ours = new Map(families.map((f) => [f.name, f]));
    const shared = [...peerFamilies.keys()].filter((name) => ours.has(name));
    expect(shared.length).toBeGreaterThan(30);
    const unmarked = shared.filter((name) => ours.get(name)!.compatibility !== 'postgres_exporter' && !SAME_NAME_OUR_OWN.has(name));
    expect(unmarked, 'families both publish, not marked compatible').toEqual([]);
  });

  it("publishes pg_exporter_last_scrape_error as the peer does (gauge, no labels but the peer's server)", () => {
    const theirs = peerFamilies.get('pg_exporter_last_scrape_error');
    expect(theirs?.type).toBe('gauge');
    theirs!.labels.delete('server');
    expect([...theirs!.labels]).toEqual([]);
    expect(ourText).toMatch(/^# TYPE pg_exporter_last_scrape_error gauge$/m);
    expect(ourText).toMatch(/^pg_exporter_last_scrape_error 0$/m);
  });
});
