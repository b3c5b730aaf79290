import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { adminQuery, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';
import { promQuery, startAlertmanager, startPrometheus, startWebhook, tempDir, type ManagedProcess, type Webhook } from './helpers/monitoring-stack.js';

/**
 * postgres_exporter users keep their alerts and dashboard: a real Prometheus scrapes a real exporter on a
 * primary with one physical replication slot, and every metric name the upstream postgres_mixin uses has
 * series, every expression of its "Postgres Overview" dashboard returns data, every alert expression
 * evaluates and, loaded as rules, fires into a real Alertmanager.
 *
 * Written out by hand from prometheus-community/postgres_exporter at commit
 * dbb1987e2f0db61c47efb1bb66cc15bbf16f4c11 (2026-08-18): postgres_mixin/alerts/postgres.libsonnet (15 alerts,
 * rendered with its config.libsonnet defaults: groupLabels [job], instanceLabels [instance, server],
 * dbNameFilter datname!~"template.*", empty postgresExporterSelector) and
 * postgres_mixin/dashboards/postgres-overview.json (15 panel expressions, 3 template queries). The upstream
 * files are not copied into this project.
 */
const ALERT_NAMES = [
  'pg_stat_activity_count',
  'pg_settings_max_connections',
  'pg_settings_superuser_reserved_connections',
  'pg_up',
  'pg_stat_activity_max_tx_duration',
  'pg_stat_database_xact_commit',
  'pg_stat_database_xact_rollback',
  'pg_stat_database_blks_hit',
  'pg_stat_database_blks_read',
  'pg_stat_database_deadlocks',
  'pg_locks_count',
  'pg_settings_max_locks_per_transaction',
  'pg_replication_lag',
  'pg_replication_is_replica',
  'pg_replication_slots_active',
  'pg_exporter_last_scrape_error',
  'pg_stat_user_tables_n_dead_tup',
  'pg_stat_user_tables_n_live_tup',
  'pg_settings_autovacuum_vacuum_scale_factor',
  'pg_settings_autovacuum_vacuum_threshold',
  'pg_stat_bgwriter_checkpoints_timed_total',
  'pg_stat_bgwriter_checkpoints_req_total',
];

const DASHBOARD_NAMES = [
  'pg_stat_database_tup_fetched',
  'pg_stat_database_tup_returned',
  'pg_stat_database_tup_inserted',
  'pg_stat_database_tup_updated',
  'pg_stat_database_tup_deleted',
  'pg_stat_bgwriter_buffers_alloc_total',
  'pg_stat_bgwriter_buffers_backend_fsync_total',
  'pg_stat_bgwriter_buffers_backend_total',
  'pg_stat_bgwriter_buffers_clean_total',
  'pg_stat_bgwriter_buffers_checkpoint_total',
  'pg_stat_database_conflicts',
  'pg_stat_database_numbackends',
];

const ALERT_EXPRESSIONS: Record<string, string> = {
  PostgreSQLMaxConnectionsReached:
    'sum by (job, instance, server) (pg_stat_activity_count{}) >= sum by (job, instance, server) (pg_settings_max_connections{}) - sum by (job, instance, server) (pg_settings_superuser_reserved_connections{})',
  PostgreSQLHighConnections:
    'sum by (job, instance, server) (pg_stat_activity_count{}) > (sum by (job, instance, server) (pg_settings_max_connections{}) - sum by (job, instance, server) (pg_settings_superuser_reserved_connections{})) * 0.8',
  PostgreSQLDown: 'pg_up{} != 1',
  PostgreSQLSlowQueries: 'avg by (datname, job, instance, server) (rate (pg_stat_activity_max_tx_duration{datname!~"template.*", }[2m])) > 2 * 60',
  PostgreSQLQPS:
    'avg by (datname, job, instance, server) (irate(pg_stat_database_xact_commit{datname!~"template.*", }[5m]) + irate(pg_stat_database_xact_rollback{datname!~"template.*", }[5m])) > 10000',
  PostgreSQLCacheHitRatio:
    'avg by (datname, job, instance, server) (rate(pg_stat_database_blks_hit{datname!~"template.*", }[5m]) / (rate(pg_stat_database_blks_hit{datname!~"template.*", }[5m]) + rate(pg_stat_database_blks_read{datname!~"template.*", }[5m]))) < 0.98',
  PostgresHasTooManyRollbacks:
    'avg without(pod, instance) (rate(pg_stat_database_xact_rollback{datname!~"template.*"}[5m]) / (rate(pg_stat_database_xact_commit{datname!~"template.*"}[5m]) + rate(pg_stat_database_xact_rollback{datname!~"template.*"}[5m]))) > 0.10',
  PostgresHasHighDeadLocks: 'max without(pod, instance) (rate(pg_stat_database_deadlocks{datname!~"template.*"}[5m]) * 60) > 5',
  PostgresAcquiredTooManyLocks:
    'max by(datname, job,instance,server) ((pg_locks_count{datname!~"template.*"}) / on(job,instance) group_left(server) (pg_settings_max_locks_per_transaction{} * pg_settings_max_connections{})) > 0.20',
  PostgresReplicationLaggingMore1Hour: '(pg_replication_lag{} > 3600) and on (job, instance, server) (pg_replication_is_replica{} == 1)',
  PostgresHasReplicationSlotUsed: 'pg_replication_slots_active{} == 0',
  PostgresReplicationRoleChanged: 'pg_replication_is_replica{} and changes(pg_replication_is_replica{}[1m]) > 0',
  PostgresHasExporterErrors: 'pg_exporter_last_scrape_error{} > 0',
  PostgresTablesNotVaccumed:
    'group without(pod, instance)(timestamp(pg_stat_user_tables_n_dead_tup{} > pg_stat_user_tables_n_live_tup{} * on(job, instance, server) group_left pg_settings_autovacuum_vacuum_scale_factor{} + on(job, instance, server) group_left pg_settings_autovacuum_vacuum_threshold{}) < time() - 36000)',
  PostgresTooManyCheckpointsRequested:
    'rate(pg_stat_bgwriter_checkpoints_timed_total{}[5m]) / (rate(pg_stat_bgwriter_checkpoints_timed_total{}[5m]) + rate(pg_stat_bgwriter_checkpoints_req_total{}[5m])) < 0.5',
};

/** The dashboard's panels, with its $db/$job/$instance variables and $__rate_interval left to be filled in. */
const DASHBOARD_EXPRESSIONS = [
  'sum(irate(pg_stat_database_xact_commit{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval])) + sum(irate(pg_stat_database_xact_rollback{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'sum(irate(pg_stat_database_tup_fetched{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'sum(irate(pg_stat_database_tup_returned{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'sum(irate(pg_stat_database_tup_inserted{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'sum(irate(pg_stat_database_tup_updated{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'sum(irate(pg_stat_database_tup_deleted{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval]))',
  'irate(pg_stat_bgwriter_buffers_alloc_total{job=~"$job",instance=~"$instance"}[$__rate_interval])',
  'irate(pg_stat_bgwriter_buffers_backend_fsync_total{job=~"$job",instance=~"$instance"}[$__rate_interval])',
  'irate(pg_stat_bgwriter_buffers_backend_total{job=~"$job",instance=~"$instance"}[$__rate_interval])',
  'irate(pg_stat_bgwriter_buffers_clean_total{job=~"$job",instance=~"$instance"}[$__rate_interval])',
  'irate(pg_stat_bgwriter_buffers_checkpoint_total{job=~"$job",instance=~"$instance"}[$__rate_interval])',
  'sum(pg_stat_database_deadlocks{datname=~"$db",job=~"$job",instance=~"$instance"})',
  'sum(pg_stat_database_conflicts{datname=~"$db",job=~"$job",instance=~"$instance"})',
  'round(sum by (datname) (rate(pg_stat_database_blks_hit{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval])) / (sum by (datname)(rate(pg_stat_database_blks_hit{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval])) + sum by (datname)(rate(pg_stat_database_blks_read{datname=~"$db",job=~"$job",instance=~"$instance"}[$__rate_interval])))*100,0.001)',
  'pg_stat_database_numbackends{datname=~"$db",job=~"$job",instance=~"$instance"}',
];

/** The template variables' queries, as Prometheus series selectors (Grafana's label_values(). */
const TEMPLATE_SELECTORS = ['pg_up', 'pg_up{job=~"$job"}', 'pg_stat_database_tup_fetched{job=~"$job",instance=~"$instance",datname!~"template.*|postgres"}'];

/**
 * The mixin's alerts as a Prometheus rule file: the expressions above, without `for:` (one evaluation
 * fires them) and without the mixin's labels and annotations (not copied here).
 */
function writeMixinRules(dir: string): string {
  const path = join(dir, 'postgres-mixin.rules.yml');
  writeFileSync(path, stringify({ groups: [{ name: 'postgres_mixin', rules: Object.entries(ALERT_EXPRESSIONS).map(([alert, expr]) => ({ alert, expr })) }] }));
  return path;
}

const MIXIN_COLLECTORS = ['connectivity', 'database', 'replication', 'connections', 'tables', 'locks', 'replication_slots', 'settings', 'stat_bgwriter'];

describe('the upstream postgres_mixin against this exporter, through a real Prometheus', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  let prometheus: ManagedProcess;
  let alertmanager: ManagedProcess;
  let webhook: Webhook;
  const dir = tempDir('pgve-mixin-');
  const slot = `mixin_${randomBytes(4).toString('hex')}`;
  const fill = (expr: string) => expr.replace(/\$db/g, db.name).replace(/\$job/g, 'pgvector-exporter').replace(/\$instance/g, '.+').replace(/\$__rate_interval/g, '1m');

  beforeAll(async () => {
    db = await createTestDatabase();
    // One physical replication slot with WAL reserved, no consumer: an inactive slot, as the alert expects.
    await adminQuery('SELECT pg_create_physical_replication_slot($1, true)', [slot]);
    const collectors = MIXIN_COLLECTORS.map((name) => `  ${name}: { interval: 300ms, timeout: 5s }`).join('\n');
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(`collectors:\n${collectors}\njobs:\n  enabled: false\n`)]);
    webhook = await startWebhook();
    alertmanager = await startAlertmanager(dir.path, webhook.url);
    prometheus = await startPrometheus(dir.path, { target: new URL(serve.url).host, alertmanager: new URL(alertmanager.url).host, ruleFiles: [writeMixinRules(dir.path)] });
    // Traffic for the rates: commits, rows inserted, updated, deleted, fetched.
    await db.pool.query('CREATE TABLE mixin_traffic (id int PRIMARY KEY, v text)');
    for (let i = 0; i < 5; i++) {
      await db.pool.query('INSERT INTO mixin_traffic SELECT g, $1 FROM generate_series($2::int, $2::int + 99) g', [`round ${i}`, i * 100]);
      await db.pool.query('UPDATE mixin_traffic SET v = v || $1 WHERE id % 7 = 0', [String(i)]);
      await db.pool.query('DELETE FROM mixin_traffic WHERE id % 11 = $1', [i]);
      await db.pool.query('SELECT count(*) FROM mixin_traffic');
      await new Promise((r) => setTimeout(r, 400));
    }
  });
  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await webhook?.close();
    await serve?.stop();
    await adminQuery('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [slot]).catch(() => undefined);
    await db?.drop();
    dir.remove();
  });

  it('lists 34 names: 22 in the alerts, 12 more in the dashboard', () => {
    expect(new Set([...ALERT_NAMES, ...DASHBOARD_NAMES]).size).toBe(34);
    expect(Object.keys(ALERT_EXPRESSIONS)).toHaveLength(15);
    expect(DASHBOARD_EXPRESSIONS).toHaveLength(15);
    // Every name of the list is in an expression, and every metric-like word of an expression is in the list.
    const words = new Set([...Object.values(ALERT_EXPRESSIONS), ...DASHBOARD_EXPRESSIONS, ...TEMPLATE_SELECTORS].flatMap((e) => e.match(/\bpg_[a-z_]+/g) ?? []));
    expect([...words].sort()).toEqual([...new Set([...ALERT_NAMES, ...DASHBOARD_NAMES])].sort());
  });

  it('has series in Prometheus for every metric name of the mixin', async () => {
    for (const name of [...ALERT_NAMES, ...DASHBOARD_NAMES]) {
      await eventually(async () => (await promQuery(prometheus.url, `group(${name}{job="pgvector-exporter"})`)).length > 0, `series of ${name}`, 60_000, 500);
    }
    // The slot is there, inactive, with its labels.
    // (A physical slot's database label is empty, so a target label "database" shows through, as in Prometheus.)
    const slots = await promQuery(prometheus.url, `pg_replication_slots_active{slot_name="${slot}"}`);
    expect(slots.map((s) => s.value[1])).toEqual(['0']);
    expect((await promQuery(prometheus.url, 'pg_replication_is_replica'))[0]!.value[1]).toBe('0');
    expect((await promQuery(prometheus.url, 'pg_exporter_last_scrape_error'))[0]!.value[1]).toBe('0');
  });

  it('returns data for every expression of the overview dashboard, and for its template queries', async () => {
    // Traffic while asking, so that the rates have something to divide (the hit ratio is 0/0 on an idle database).
    let next = 10_000;
    const traffic = async () => {
      await db.pool.query('INSERT INTO mixin_traffic SELECT g, $1 FROM generate_series($2::int, $2::int + 99) g', ['more', next]);
      await db.pool.query('SELECT count(*) FROM mixin_traffic');
      next += 100;
    };
    for (const expr of DASHBOARD_EXPRESSIONS) {
      await eventually(async () => {
        await traffic();
        const r = await promQuery(prometheus.url, fill(expr));
        return r.length > 0 && r.every((sample) => !Number.isNaN(Number(sample.value[1])));
      }, `data for ${expr}`, 60_000, 500);
    }
    for (const selector of TEMPLATE_SELECTORS) expect((await promQuery(prometheus.url, `count(${fill(selector)})`)).length, selector).toBe(1);
    // The rates see the traffic: Prometheus has seen the counter move.
    await eventually(async () => {
      await traffic();
      const inserted = await promQuery(prometheus.url, fill('sum(increase(pg_stat_database_tup_inserted{datname=~"$db"}[5m]))'));
      return inserted.length > 0 && Number(inserted[0]!.value[1]) > 0;
    }, 'an increase of pg_stat_database_tup_inserted', 60_000, 500);
  });

  it('evaluates every alert expression; the inactive slot is what PostgresHasReplicationSlotUsed reports', async () => {
    for (const [alert, expr] of Object.entries(ALERT_EXPRESSIONS)) await expect(promQuery(prometheus.url, expr), alert).resolves.toBeInstanceOf(Array);
    const unused = await promQuery(prometheus.url, ALERT_EXPRESSIONS.PostgresHasReplicationSlotUsed!);
    expect(unused.map((s) => s.metric.slot_name)).toContain(slot);
    expect(await promQuery(prometheus.url, ALERT_EXPRESSIONS.PostgreSQLDown!)).toEqual([]);
    expect(await promQuery(prometheus.url, ALERT_EXPRESSIONS.PostgresHasExporterErrors!)).toEqual([]);
    // The locks ratio has a value per database: the division matched (no server label here, on() ignores it).
    const locks = await promQuery(prometheus.url, ALERT_EXPRESSIONS.PostgresAcquiredTooManyLocks!.replace(' > 0.20', ' >= 0'));
    expect(locks.map((s) => s.metric.datname)).toContain(db.name);
  });

  it('fires the mixin\'s alerts into Alertmanager: the inactive slot reaches the receiver, PostgreSQLDown does not', async () => {
    const alerts = () => webhook.notifications.flatMap((n) => n.alerts);
    const slotAlert = await eventually(
      async () => alerts().find((a) => a.status === 'firing' && a.labels.alertname === 'PostgresHasReplicationSlotUsed' && a.labels.slot_name === slot),
      'PostgresHasReplicationSlotUsed notified by Alertmanager',
      60_000,
      500,
    );
    expect(slotAlert.labels.job).toBe('pgvector-exporter');
    // The server is up all along: the mixin's down alert never fired.
    expect(alerts().filter((a) => a.labels.alertname === 'PostgreSQLDown')).toEqual([]);
  });
});
