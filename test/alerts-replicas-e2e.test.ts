import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/free-port.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { stopChild } from './helpers/child.js';
import { eventually, startServe, type ServeProcess } from './helpers/exporter.js';
import { startRagCluster, type RagCluster } from './helpers/rag-cluster.js';
import { seedDocuments } from './helpers/seed.js';
import {
  alertmanagerAlerts,
  promQuery,
  renderRulesForTest,
  renderSpecificationForTest,
  startAlertmanager,
  startPrometheus,
  startWebhook,
  tempDir,
  type ManagedProcess,
  type PromSample,
  type Webhook,
} from './helpers/monitoring-stack.js';

/**
 * The open world, end to end: two replicas of pgvector-exporter watching one healthy database (job
 * pgvector-exporter, database="rag"), beside the real postgres_exporter (job postgres, same database label)
 * scraping a server that is stopped; a real Prometheus with the shipped rules and the specification's
 * alerts.yml (test rendering: `for:` shortened), a real Alertmanager with the shipped routing.
 */

const PEER = '/usr/bin/prometheus-postgres-exporter';
const TIMEOUT = 180_000;

function exporterConfig(): string {
  return `
collectors:
  connectivity: { interval: 1s, timeout: 2s }
  database: { interval: 1s, timeout: 2s }
  connections: { interval: 1s, timeout: 2s }
  indexes: { interval: 1s, timeout: 2s }
  query_log: { interval: 1s, timeout: 2s }
  embeddings: { interval: 1s, timeout: 5s }
  embedding_failures: { interval: 1s, timeout: 5s }
  health: { enabled: false }
  tables: { enabled: false }
  statements: { enabled: false }
  replication: { enabled: false }
embedding_failures:
  grace_period: 3s
jobs:
  enabled: false
`;
}

const firing = async (prometheus: ManagedProcess, matchers = ''): Promise<PromSample[]> =>
  promQuery(prometheus.url, `ALERTS{alertstate="firing"${matchers ? `, ${matchers}` : ''}}`);

/**
 * Waits until every rule group has been evaluated again `seconds` after now (at the 1 s evaluation interval,
 * that many evaluations): the state "the rules have seen the present", from Prometheus' own rule API.
 */
async function evaluations(prometheus: ManagedProcess, seconds: number): Promise<void> {
  const after = Date.now() + seconds * 1000;
  await eventually(
    async () => {
      const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: { lastEvaluation: string }[] } };
      const groups = body.data.groups;
      return groups.length > 0 && groups.every((g) => Date.parse(g.lastEvaluation) >= after);
    },
    `every rule group evaluated ${seconds} s on`,
    60_000,
    500,
  );
}

describe.skipIf(!existsSync(PEER))('alerts with two exporter replicas and postgres_exporter beside them', () => {
  let ours: LocalCluster | undefined;
  let theirs: LocalCluster | undefined;
  let db: pg.Pool;
  const replicas: ServeProcess[] = [];
  let peer: ChildProcess | undefined;
  let prometheus: ManagedProcess | undefined;
  let alertmanager: ManagedProcess | undefined;
  let webhook: Webhook | undefined;
  let rag: RagCluster | undefined;
  const dir = tempDir('pgve-alerts-replicas-');

  beforeAll(async () => {
    // 40 connection slots, 3 reserved for superusers: 37 open to the exporters, the test and the "service"
    rag = await startRagCluster({ settings: { max_connections: '40', superuser_reserved_connections: '3' }, documents: 20 });
    ours = rag.cluster;
    db = rag.db;
    theirs = await LocalCluster.start();
    theirs.stopServer();

    const config = join(dir.path, 'exporter.yaml');
    writeFileSync(config, exporterConfig());
    for (let i = 0; i < 2; i++) replicas.push(await startServe(['--database-url', ours.url('rag'), '--config', config]));

    const peerPort = await freePort();
    peer = spawn(PEER, [`--web.listen-address=127.0.0.1:${peerPort}`], {
      env: { ...process.env, DATA_SOURCE_NAME: `${theirs.url('postgres')}?sslmode=disable` },
      stdio: 'ignore',
    });

    webhook = await startWebhook();
    alertmanager = await startAlertmanager(dir.path, webhook.url);
    prometheus = await startPrometheus(dir.path, {
      jobs: [
        { job: 'pgvector-exporter', targets: replicas.map((r) => new URL(r.url).host), labels: { database: 'rag' } },
        // postgres_exporter 0.11 takes over a second to answer when its server is down
        { job: 'postgres', targets: [`127.0.0.1:${peerPort}`], labels: { database: 'rag' }, interval: '5s' },
      ],
      alertmanager: new URL(alertmanager.url).host,
      ruleFiles: [...renderRulesForTest(dir.path), renderSpecificationForTest(dir.path)],
    });
    await eventually(async () => (await promQuery(prometheus!.url, 'pg_up{job="pgvector-exporter"} == 1')).length === 2, 'both replicas scraped with pg_up 1', 60_000);
    await eventually(async () => (await promQuery(prometheus!.url, 'pg_up{job="postgres"} == 0')).length === 1, 'postgres_exporter scraped with pg_up 0', 60_000);
  }, TIMEOUT);

  afterAll(async () => {
    await prometheus?.stop();
    await alertmanager?.stop();
    for (const r of replicas) await r.stop();
    if (peer) await stopChild(peer);
    await webhook?.close();
    theirs?.remove();
    await rag?.remove();
    dir.remove();
  }, TIMEOUT);

  it(
    "fires none of our alerts while postgres_exporter's server is down and ours is healthy",
    async () => {
      // long enough for every shortened `for:` (3 s) to have turned a pending alert into a firing one
      await evaluations(prometheus!, 8);
      const alerts = await promQuery(prometheus!.url, 'ALERTS');
      expect(alerts.map((a) => `${a.metric.alertname} ${a.metric.alertstate} ${JSON.stringify(a.metric)}`)).toEqual([]);
      expect((await alertmanagerAlerts(alertmanager!.url)).map((a) => a.labels.alertname)).toEqual([]);
    },
    TIMEOUT,
  );

  it(
    'fires one PostgresDown, carrying job, as one notification, when our database stops; resolves when it returns',
    async () => {
      const stopped = Date.now();
      ours!.stopServer();
      try {
        const [alert] = await eventually(async () => {
          const found = await firing(prometheus!, 'alertname="PostgresDown"');
          return found.length > 0 ? found : undefined;
        }, 'PostgresDown firing in Prometheus', 90_000);
        await eventually(
          async () => webhook!.notifications.some((n) => n.receivedAt >= stopped && n.alerts.some((a) => a.labels.alertname === 'PostgresDown' && a.status === 'firing')),
          'PostgresDown at the webhook',
          60_000,
        );
        // a few more evaluations and group intervals: still one alert, one notification
        await evaluations(prometheus!, 5);
        const down = await firing(prometheus!, 'alertname="PostgresDown"');
        expect(down).toHaveLength(1);
        expect(alert!.metric).toMatchObject({ job: 'pgvector-exporter', database: 'rag', severity: 'critical' });
        expect(alert!.metric.instance).toBeUndefined();
        const inAlertmanager = (await alertmanagerAlerts(alertmanager!.url)).filter((a) => a.labels.alertname === 'PostgresDown');
        expect(inAlertmanager).toHaveLength(1);
        const notified = webhook!.notifications.filter((n) => n.receivedAt >= stopped && n.alerts.some((a) => a.labels.alertname === 'PostgresDown' && a.status === 'firing'));
        expect(notified).toHaveLength(1);
        expect(notified[0]!.receiver).toBe('pager');
        expect(notified[0]!.alerts.filter((a) => a.labels.alertname === 'PostgresDown')).toHaveLength(1);
        expect(notified[0]!.alerts[0]!.labels).toMatchObject({ job: 'pgvector-exporter', database: 'rag' });
        // the failing collectors of both replicas reach Alertmanager inhibited, never the webhook
        const leaked = webhook!.notifications
          .filter((n) => n.receivedAt >= stopped)
          .flatMap((n) => n.alerts)
          .filter((a) => a.status === 'firing' && a.labels.alertname !== 'PostgresDown');
        expect(leaked.map((a) => a.labels.alertname)).toEqual([]);
      } finally {
        ours!.startServer();
      }
      const restarted = Date.now();
      await eventually(
        async () => webhook!.notifications.some((n) => n.receivedAt >= restarted && n.alerts.some((a) => a.labels.alertname === 'PostgresDown' && a.status === 'resolved')),
        'PostgresDown resolved at the webhook',
        90_000,
      );
      await eventually(async () => (await promQuery(prometheus!.url, 'pg_up{job="pgvector-exporter"} == 1')).length === 2, 'both replicas back to pg_up 1', 60_000);
    },
    TIMEOUT * 2,
  );

  /** The specification's alert (told from ours of the same name by its labels), one series for the database. */
  async function specificationAlert(alertname: string, isSpec: (labels: Record<string, string>) => boolean, timeoutMs = 120_000): Promise<Record<string, string>> {
    const found = await eventually(async () => {
      const alerts = (await firing(prometheus!, `alertname="${alertname}"`)).filter((a) => isSpec(a.metric));
      return alerts.length > 0 ? alerts : undefined;
    }, `the specification's ${alertname} firing`, timeoutMs, 500);
    expect(found, `one ${alertname} for the database, not one per replica`).toHaveLength(1);
    expect(found[0]!.metric).toMatchObject({ job: 'pgvector-exporter', database: 'rag' });
    return found[0]!.metric;
  }

  it(
    "fires each of the specification's four alerts on its fault",
    async () => {
      await eventually(async () => (await promQuery(prometheus!.url, 'pg_up{job="pgvector-exporter"} == 1')).length === 2, 'both replicas with pg_up 1', 60_000);

      // three documents left without an embedding, three embedding_generation log rows with an error
      await seedDocuments(db as unknown as pg.Client, { count: 3, prefix: 'unembedded' });
      await db.query(`INSERT INTO query_performance_log (query_type, duration_ms, error) SELECT 'embedding_generation', 900, 'openai: 500 Internal Server Error' FROM generate_series(1, 3)`);
      const embedding = await specificationAlert('EmbeddingGenerationFailure', (l) => l.severity === 'critical');
      expect(embedding.severity).toBe('critical');
      // each failure once, one series for the database: 3 log rows + 3 documents past the grace period
      const total = await eventually(async () => {
        const series = await promQuery(prometheus!.url, 'embedding_generation_failures_total');
        return series.length === 1 && Number(series[0]!.value[1]) >= 6 ? series : undefined;
      }, 'embedding_generation_failures_total reaching 6', 60_000);
      expect(Number(total[0]!.value[1])).toBe(6);

      // the vector index dropped
      await db.query('DROP INDEX idx_embeddings_vector');
      const corruption = await specificationAlert('VectorIndexCorruption', (l) => l.index === 'idx_embeddings_vector');
      expect(corruption.severity).toBe('critical');

      // slow vector searches: 1.5 s each
      const slow = setInterval(() => {
        db.query(`INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) SELECT 'vector_search', 1500, 10 FROM generate_series(1, 100)`).catch(() => undefined);
      }, 500);
      try {
        // avg_over_time(...[5m]) > 500 averages the fast minutes before the fault too: the longer the test has
        // run, the longer the slow searches take to outweigh them (up to the whole 5-minute window)
        await specificationAlert('VectorSearchSlowness', (l) => l.query_type === undefined, 330_000);
      } finally {
        clearInterval(slow);
      }

      // 35 of the 37 slots open to ordinary roles held (of max_connections 40)
      const held: pg.Client[] = [];
      try {
        const clientBackends = async () =>
          Number((await db.query(`SELECT count(*) AS n FROM pg_stat_activity WHERE backend_type = 'client backend'`)).rows[0].n);
        while ((await clientBackends()) < 35) {
          const c = new pg.Client({ connectionString: ours!.url('rag') });
          await c.connect();
          c.on('error', () => undefined);
          held.push(c);
        }
        await specificationAlert('DatabaseConnectionPoolExhaustion', (l) => l.pool === undefined);
        const ratio = await promQuery(prometheus!.url, 'postgres_connections_active / postgres_connections_max');
        expect(ratio).toHaveLength(1);
        expect(Number(ratio[0]!.value[1])).toBeGreaterThan(0.9);
      } finally {
        await Promise.all(held.map((c) => c.end().catch(() => undefined)));
      }
    },
    TIMEOUT * 4,
  );
});
