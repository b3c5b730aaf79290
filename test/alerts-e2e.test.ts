import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { eventually, startServe, type ServeProcess } from './helpers/exporter.js';
import { startRagCluster, type RagCluster } from './helpers/rag-cluster.js';
import { panelTargets, substituteGrafanaVariables, variableQueries } from './helpers/monitoring-files.js';
import {
  alertmanagerAlerts,
  promQuery,
  renderRulesForTest,
  startAlertmanager,
  startPrometheus,
  startWebhook,
  tempDir,
  type ManagedProcess,
  type Webhook,
  type WebhookNotification,
} from './helpers/monitoring-stack.js';

/**
 * End to end on this machine: a PostgreSQL cluster of the test's own (it gets stopped) with a streaming
 * standby, `pgvector-exporter serve`, a real Prometheus with the shipped rules (test rendering: shorter
 * `for:`), a real Alertmanager with the shipped routing and inhibition, and a webhook served here.
 */

/**
 * Panels allowed to return an empty (but valid) result here, each with the reason. Everything else must
 * return data, so a "No data" panel is a visible, justified exception.
 */
const MAY_BE_EMPTY: Record<string, string> = {
  'vector-index-maintenance.json "Index build progress"':
    'pg_index_build_progress_ratio exists only while a CREATE INDEX / REINDEX runs; the test index builds finish within a poll',
};

const TIMEOUT = 120_000;
const API_TOKEN = 'e2e-test-token';

function exporterConfig(backupDir: string, pgBin: string): string {
  return `
collectors:
  connectivity: { interval: 1s, timeout: 2s }
  database: { interval: 1s, timeout: 2s }
  replication: { interval: 1s, timeout: 2s }
  connections: { interval: 1s, timeout: 2s }
  tables: { interval: 1s, timeout: 2s }
  indexes: { interval: 1s, timeout: 2s }
  health: { interval: 1s, timeout: 5s }
  query_log: { interval: 1s, timeout: 2s }
  embeddings: { interval: 1s, timeout: 5s }
  recall: { enabled: true, interval: 2s, timeout: 10s }
  statements: { interval: 1s, timeout: 2s }
recall:
  sample_size: 3
jobs:
  enabled: true
  api_token: ${API_TOKEN}
  backup:
    enabled: true
    directory: ${backupDir}
    pg_dump: ${join(pgBin, 'pg_dump')}
    pg_restore: ${join(pgBin, 'pg_restore')}
`;
}

/** Notifications about `alertname` with `status`, received after `since` (ms). */
function received(webhook: Webhook, alertname: string, status: 'firing' | 'resolved', since = 0): WebhookNotification[] {
  return webhook.notifications.filter((n) => n.receivedAt >= since && n.alerts.some((a) => a.labels.alertname === alertname && a.status === status));
}

async function firingInPrometheus(prometheus: ManagedProcess, alertname: string): Promise<boolean> {
  return (await promQuery(prometheus.url, `ALERTS{alertname="${alertname}", alertstate="firing"}`)).length > 0;
}

describe('alerts and dashboards against a real Prometheus and Alertmanager', () => {
  let cluster: LocalCluster | undefined;
  let standby: LocalCluster | undefined;
  let db: pg.Pool;
  let exporter: ServeProcess | undefined;
  let prometheus: ManagedProcess | undefined;
  let alertmanager: ManagedProcess | undefined;
  let webhook: Webhook | undefined;
  let rag: RagCluster | undefined;
  const dir = tempDir('pgve-alerts-e2e-');

  beforeAll(async () => {
    const t0 = Date.now();
    const step = (what: string) => process.env.E2E_DEBUG && console.log(`${Date.now() - t0} ms: ${what}`);
    rag = await startRagCluster({ documents: 40, unembedded: 2, checkpoint: true });
    cluster = rag.cluster;
    db = rag.db;
    step('cluster');
    standby = await cluster.createStandby();
    step('standby');

    const config = join(dir.path, 'exporter.yaml');
    writeFileSync(config, exporterConfig(join(dir.path, 'backups'), cluster.binDir));
    exporter = await startServe(['--database-url', cluster.url('rag'), '--config', config], {
      JOBS_API_TOKEN: API_TOKEN,
    });
    step('exporter');
    webhook = await startWebhook();
    alertmanager = await startAlertmanager(dir.path, webhook.url);
    step('alertmanager');
    prometheus = await startPrometheus(dir.path, {
      target: new URL(exporter.url).host,
      alertmanager: new URL(alertmanager.url).host,
      ruleFiles: renderRulesForTest(dir.path),
    });
    step('prometheus');
    // a backup run, so the backup and job panels have something to show
    const run = await fetch(`${exporter.url}/jobs/backup/run`, { method: 'POST', headers: { authorization: `Bearer ${API_TOKEN}` } });
    expect(run.status, await run.text()).toBe(200); // the route waits for the run
    step('backup');
    await eventually(async () => (await promQuery(prometheus!.url, 'pg_up == 1')).length > 0, 'Prometheus scraping pg_up 1', 60_000);
  }, TIMEOUT);

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    await exporter?.stop();
    await webhook?.close();
    standby?.remove();
    await rag?.remove();
    dir.remove();
  }, TIMEOUT);

  it(
    'answers every dashboard expression with data (except the justified allow-list)',
    async () => {
      const targets = [...panelTargets(), ...variableQueries()];
      expect(targets.length).toBeGreaterThan(50);
      const pending = new Map(targets.map((t) => [`${t.dashboard} "${t.panel}" ${t.expr}`, t]));
      const deadline = Date.now() + 90_000;
      let lastEmpty: string[] = [];
      while (pending.size > 0) {
        lastEmpty = [];
        for (const [key, target] of pending) {
          const result = await promQuery(prometheus!.url, substituteGrafanaVariables(target.expr)); // throws on a parse error
          const allowed = MAY_BE_EMPTY[`${target.dashboard} "${target.panel}"`];
          if (result.length > 0 || allowed) pending.delete(key);
          else lastEmpty.push(`${target.dashboard} "${target.panel}": ${target.expr}`);
        }
        if (pending.size === 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 2_000));
      }
      expect(lastEmpty, 'panels without data').toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'fires VectorIndexCorruption when idx_embeddings_vector is dropped, and resolves it when the index is back',
    async () => {
      const since = Date.now();
      await db.query('DROP INDEX idx_embeddings_vector');
      const [notification] = await eventually(async () => {
        const notifications = received(webhook!, 'VectorIndexCorruption', 'firing', since);
        return notifications.length > 0 ? notifications : undefined;
      }, 'VectorIndexCorruption at the webhook', 90_000);
      const alert = notification!.alerts.find((a) => a.labels.alertname === 'VectorIndexCorruption')!;
      expect(notification!.receiver).toBe('pager');
      expect(alert.labels.severity).toBe('critical');
      expect(alert.annotations.runbook_url).toMatch(/docs\/runbooks\/VectorIndexCorruption\.md$/);
      expect(alert.labels).toMatchObject({ job: 'pgvector-exporter', database: 'rag' });
      expect(alert.labels.instance).toBeUndefined();
      expect(alert.annotations.description).toContain('idx_embeddings_vector on rag ');

      const restored = Date.now();
      await db.query('CREATE INDEX idx_embeddings_vector ON chunk_embeddings USING hnsw ((embedding::halfvec(3072)) halfvec_cosine_ops)');
      await eventually(async () => received(webhook!, 'VectorIndexCorruption', 'resolved', restored).length > 0, 'VectorIndexCorruption resolved at the webhook', 90_000);
    },
    TIMEOUT * 2,
  );

  it(
    'fires VectorSearchSlowness when slow vector searches are logged, and resolves it when fast ones dilute them',
    async () => {
      const since = Date.now();
      // 0.9 s each: above the 0.5 s threshold, in the histogram's (0.75, 1] bucket
      const slow = setInterval(() => {
        db.query(`INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) SELECT 'vector_search', 900, 10 FROM generate_series(1, 20)`).catch(() => undefined);
      }, 500);
      try {
        const notifications = await eventually(async () => {
          const found = received(webhook!, 'VectorSearchSlowness', 'firing', since);
          return found.length > 0 ? found : undefined;
        }, 'VectorSearchSlowness at the webhook', 90_000);
        const alert = notifications[0]!.alerts.find((a) => a.labels.alertname === 'VectorSearchSlowness')!;
        expect(notifications[0]!.receiver).toBe('ticket');
        expect(alert.labels).toMatchObject({ severity: 'warning', query_type: 'vector_search' });
        expect(alert.annotations.description).toMatch(/p95 on \S+ is \d+(\.\d+)?ms/);
      } finally {
        clearInterval(slow);
      }
      // the p95 over 5 minutes falls under 0.5 s once slow queries are far below 5 % of the window
      const restored = Date.now();
      await db.query(`INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) SELECT 'vector_search', 30, 10 FROM generate_series(1, 200000)`);
      await eventually(async () => received(webhook!, 'VectorSearchSlowness', 'resolved', restored).length > 0, 'VectorSearchSlowness resolved at the webhook', 90_000);
    },
    TIMEOUT * 2,
  );

  it(
    'fires PostgresDown when PostgreSQL stops, inhibits the alerts it causes, and resolves when it is back',
    async () => {
      const stopped = Date.now();
      cluster!.stopServer();
      try {
        await eventually(async () => received(webhook!, 'PostgresDown', 'firing', stopped).length > 0, 'PostgresDown at the webhook', 90_000);
        // the outage makes the collectors fail: firing in Prometheus, suppressed in Alertmanager
        await eventually(async () => firingInPrometheus(prometheus!, 'ExporterCollectorFailing'), 'ExporterCollectorFailing firing in Prometheus', 60_000);
        const inhibited = await eventually(async () => {
          const alerts = await alertmanagerAlerts(alertmanager!.url);
          const failing = alerts.filter((a) => a.labels.alertname === 'ExporterCollectorFailing');
          return failing.length > 0 && failing.every((a) => a.status.state === 'suppressed' && a.status.inhibitedBy.length > 0) ? failing : undefined;
        }, 'ExporterCollectorFailing inhibited in Alertmanager', 30_000);
        expect(inhibited.length).toBeGreaterThan(0);
        // give Alertmanager a few group intervals to (wrongly) notify them
        await new Promise((r) => setTimeout(r, 4_000));
        const leaked = webhook!.notifications
          .filter((n) => n.receivedAt >= stopped && n.status === 'firing')
          .flatMap((n) => n.alerts)
          .filter((a) => a.status === 'firing' && a.labels.alertname !== 'PostgresDown' && Date.parse(a.startsAt) >= stopped);
        expect(leaked.map((a) => a.labels.alertname), 'alerts that started during the outage and were notified anyway').toEqual([]);
      } finally {
        cluster!.startServer();
      }
      const restarted = Date.now();
      await eventually(async () => received(webhook!, 'PostgresDown', 'resolved', restarted).length > 0, 'PostgresDown resolved at the webhook', 90_000);
      await eventually(async () => (await promQuery(prometheus!.url, 'pg_up == 1')).length > 0, 'pg_up back to 1', 30_000);
    },
    TIMEOUT * 2,
  );
});
