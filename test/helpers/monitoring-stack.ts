import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from '../../src/free-port.js';
import { stopChild } from './child.js';
import { ROOT, loadRuleFiles } from './monitoring-files.js';

/**
 * A real Prometheus and Alertmanager on loopback ports for the end-to-end alert tests, fed with the
 * shipped rule files and Alertmanager configuration, and a webhook receiver served by the test.
 */

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
}

export interface WebhookNotification {
  receivedAt: number;
  receiver: string;
  status: 'firing' | 'resolved';
  alerts: WebhookAlert[];
}

export interface Webhook {
  url: string;
  notifications: WebhookNotification[];
  close(): Promise<void>;
}

/** Records every notification Alertmanager posts (the path names the shipped receiver it replaces). */
export async function startWebhook(): Promise<Webhook> {
  const notifications: WebhookNotification[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      try {
        const payload = JSON.parse(body) as Omit<WebhookNotification, 'receivedAt'>;
        notifications.push({ receivedAt: Date.now(), receiver: payload.receiver, status: payload.status, alerts: payload.alerts });
      } catch {
        /* not a notification */
      }
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    notifications,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Shortened `for:` of the test rendering: PostgresDown first, so it is in Alertmanager before what it inhibits. */
const TEST_FOR = { PostgresDown: '0s', other: '3s' };

/**
 * The shipped rule files, rendered for a test: every `for:` shortened and every group evaluated at the global
 * (1 s) interval. The expressions, labels and annotations are the shipped ones, unchanged.
 */
export function renderRulesForTest(dir: string): string[] {
  return loadRuleFiles().map((file) => {
    const groups = file.groups.map((g) => ({
      name: g.name,
      rules: g.rules.map((r) => (r.alert && r.for ? { ...r, for: r.alert === 'PostgresDown' ? TEST_FOR.PostgresDown : TEST_FOR.other } : r)),
    }));
    const path = join(dir, file.path.split('/').pop()!);
    writeFileSync(path, stringify({ groups }));
    return path;
  });
}

/**
 * The specification's alerts.yml as shipped in alerts/specification/ (its four rules unchanged but for a
 * `for:` of 1 s), for loading beside the project's rules.
 */
export function renderSpecificationForTest(dir: string): string {
  const doc = parse(readFileSync(`${ROOT}alerts/specification/alerts.yml`, 'utf8')) as { groups: { name: string; rules: { for?: string }[] }[] };
  const groups = doc.groups.map((g) => ({ ...g, rules: g.rules.map((r) => (r.for ? { ...r, for: '1s' } : r)) }));
  const path = join(dir, 'specification.alerts.yml');
  writeFileSync(path, stringify({ groups }));
  return path;
}

interface AlertmanagerConfig {
  route: Record<string, unknown> & { routes?: Record<string, unknown>[] };
  receivers: { name: string }[];
  inhibit_rules: unknown[];
}

/**
 * The shipped alerts/alertmanager.yml with its routing and inhibition unchanged, every receiver pointed at
 * the test's webhook (path = receiver name) and the waits shortened to a second.
 */
export function renderAlertmanagerConfig(webhookUrl: string): string {
  const config = parse(readFileSync(`${ROOT}alerts/alertmanager.yml`, 'utf8')) as AlertmanagerConfig;
  const shorten = (route: Record<string, unknown>) => {
    if ('group_wait' in route) route.group_wait = '1s';
    if ('group_interval' in route) route.group_interval = '1s';
    if ('repeat_interval' in route) route.repeat_interval = '1h';
  };
  shorten(config.route);
  config.route.group_wait = '1s';
  config.route.group_interval = '1s';
  for (const route of config.route.routes ?? []) shorten(route);
  config.receivers = config.receivers.map((r) => ({ name: r.name, webhook_configs: [{ url: `${webhookUrl}/${r.name}`, send_resolved: true }] }));
  return stringify(config);
}

export interface ManagedProcess {
  url: string;
  child: ChildProcess;
  logs: () => string;
  stop(): Promise<void>;
}

/** Starts a server binary, waits until `readyPath` answers 200, and stops it with SIGTERM (SIGKILL after 5 s). */
async function startServer(binary: string, args: string[], port: number, readyPath: string, timeoutMs = 30_000): Promise<ManagedProcess> {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (logs = (logs + d.toString()).slice(-20_000)));
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(new Error(`${binary} could not start: ${err.message} (scripts/setup-system.sh installs it)`))));
  spawnError.catch(() => undefined);
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    await stopChild(child);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${binary} exited with ${child.exitCode}:\n${logs}`);
    try {
      if ((await Promise.race([fetch(`${url}${readyPath}`), spawnError])).ok) break;
    } catch (err) {
      if ((err as Error).message.includes('could not start')) throw err;
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${binary} not ready after ${timeoutMs} ms:\n${logs}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { url, child, logs: () => logs, stop };
}

export async function startAlertmanager(dir: string, webhookUrl: string): Promise<ManagedProcess> {
  const port = await freePort();
  const config = join(dir, 'alertmanager.yml');
  writeFileSync(config, renderAlertmanagerConfig(webhookUrl));
  return startServer(
    'prometheus-alertmanager',
    [`--config.file=${config}`, `--storage.path=${join(dir, 'alertmanager-data')}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='],
    port,
    '/-/ready',
  );
}

export interface ScrapeJob {
  /** The job's name, e.g. pgvector-exporter or postgres (postgres_exporter). */
  job: string;
  targets: string[];
  /** Target labels, e.g. the database label of monitoring/config.yml. */
  labels?: Record<string, string>;
  /** Scrape interval and timeout when not the global 1 s (postgres_exporter takes over a second to fail). */
  interval?: string;
}

/**
 * A Prometheus scraping `target` as job pgvector-exporter with the label database="rag" (as the shipped
 * prometheus.yml does), or the given jobs.
 */
export async function startPrometheus(
  dir: string,
  options: {
    target?: string;
    jobs?: ScrapeJob[];
    /** Scrape configs as written in prometheus.yml (relabelling, params, metrics_path), beside `jobs`. */
    scrapeConfigs?: Record<string, unknown>[];
    alertmanager?: string;
    ruleFiles?: string[];
  },
): Promise<ManagedProcess> {
  const port = await freePort();
  const config = join(dir, 'prometheus.yml');
  const jobs = options.jobs ?? (options.target ? [{ job: 'pgvector-exporter', targets: [options.target], labels: { database: 'rag' } }] : []);
  writeFileSync(
    config,
    stringify({
      global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
      rule_files: options.ruleFiles ?? [],
      ...(options.alertmanager ? { alerting: { alertmanagers: [{ static_configs: [{ targets: [options.alertmanager] }] }] } } : {}),
      scrape_configs: [
        ...jobs.map((j) => ({
          job_name: j.job,
          ...(j.interval ? { scrape_interval: j.interval, scrape_timeout: j.interval } : {}),
          static_configs: [{ targets: j.targets, labels: j.labels ?? {} }],
        })),
        ...(options.scrapeConfigs ?? []),
      ],
    }),
  );
  return startServer(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      // the first notification is dropped when an alert fires before the Alertmanager is discovered; resend soon
      '--rules.alert.resend-delay=2s',
    ],
    port,
    '/-/ready',
  );
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** An instant query; throws with Prometheus' error (a parse error names the expression). */
export async function promQuery(prometheusUrl: string, expr: string): Promise<PromSample[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ query: expr }),
  });
  const body = (await response.json()) as { status: string; error?: string; data?: { resultType: string; result: PromSample[] | [number, string] } };
  if (body.status !== 'success') throw new Error(`Prometheus refused ${expr}: ${body.error}`);
  const result = body.data!.result;
  // a scalar result (e.g. time()) is one value
  return body.data!.resultType === 'scalar' ? [{ metric: {}, value: result as [number, string] }] : (result as PromSample[]);
}

export interface AmAlert {
  labels: Record<string, string>;
  status: { state: string; inhibitedBy: string[]; silencedBy: string[] };
}

export async function alertmanagerAlerts(alertmanagerUrl: string): Promise<AmAlert[]> {
  return (await (await fetch(`${alertmanagerUrl}/api/v2/alerts?active=true&inhibited=true&silenced=true&unprocessed=true`)).json()) as AmAlert[];
}

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
