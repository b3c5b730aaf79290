import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { startProcess, waitForHttp, type ManagedProcess } from './managed-process.js';

/**
 * Prometheus and Alertmanager for the demo, on loopback ports, with the shipped rules in alerts/
 * and the example alerts/alertmanager.yml: the same files docker-compose and the PrometheusRule
 * carry, so the demo shows the alerts on-call would get.
 */
export const ALERTS_DIR = fileURLToPath(new URL('../../alerts/', import.meta.url));
export const ALERTMANAGER_CONFIG = join(ALERTS_DIR, 'alertmanager.yml');
export const EXPORTER_JOB = 'pgvector-exporter';

export function findBinary(names: string[], path = process.env.PATH ?? ''): string | undefined {
  for (const name of names) {
    for (const dir of path.split(delimiter).filter(Boolean)) {
      const candidate = join(dir, name);
      if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
    }
  }
  return undefined;
}

/** Every YAML file under alerts/ holding rule groups; promtool tests and the Alertmanager config are not rules. */
export function ruleFiles(dir = ALERTS_DIR): string[] {
  if (!existsSync(dir)) return [];
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      // tests: promtool tests; specification: the database specification's optional alerts (docs/alerts.md)
      if (entry.name !== 'tests' && entry.name !== 'specification') found.push(...ruleFiles(path));
    } else if (/\.ya?ml$/.test(entry.name) && entry.name !== 'alertmanager.yml' && hasRuleGroups(path)) {
      found.push(path);
    }
  }
  return found.sort();
}

function hasRuleGroups(path: string): boolean {
  try {
    const doc = parse(readFileSync(path, 'utf8')) as { groups?: unknown } | null;
    return Array.isArray(doc?.groups);
  } catch {
    return false;
  }
}

export interface PrometheusConfigOptions {
  exporterAddress: string;
  alertmanagerAddress?: string;
  rules: string[];
  intervalSeconds: number;
}

export function prometheusConfig(options: PrometheusConfigOptions): string {
  const interval = `${options.intervalSeconds}s`;
  return stringify({
    global: { scrape_interval: interval, evaluation_interval: interval, external_labels: { environment: 'demo' } },
    rule_files: options.rules,
    ...(options.alertmanagerAddress ? { alerting: { alertmanagers: [{ static_configs: [{ targets: [options.alertmanagerAddress] }] }] } } : {}),
    // the database label: the identity label the shipped rules aggregate by (monitoring/config.yml)
    scrape_configs: [{ job_name: EXPORTER_JOB, static_configs: [{ targets: [options.exporterAddress], labels: { database: 'rag' } }] }],
  });
}

export interface StackOptions {
  dir: string;
  exporterAddress: string;
  prometheusPort: number;
  alertmanagerPort: number;
  signal?: AbortSignal;
  /** Told about each helper as soon as it is spawned, so it is stopped even if the start fails later. */
  onStarted: (process: ManagedProcess) => void;
  warn: (line: string) => void;
}

export interface PrometheusStack {
  prometheusUrl?: string;
  alertmanagerUrl?: string;
  rules: string[];
}

/** Starts what is installed; a helper that fails to start is a warning, never the end of the demo. */
export async function startPrometheusStack(options: StackOptions): Promise<PrometheusStack> {
  const prometheus = findBinary(['prometheus']);
  const alertmanager = findBinary(['prometheus-alertmanager', 'alertmanager']);
  const rules = ruleFiles();
  const stack: PrometheusStack = { rules };
  if (!prometheus) {
    options.warn('prometheus is not installed: skipping Prometheus and Alertmanager (scripts/setup-system.sh installs them)');
    return stack;
  }
  if (alertmanager && existsSync(ALERTMANAGER_CONFIG)) {
    stack.alertmanagerUrl = await startAlertmanager(alertmanager, options).catch((err: Error) => {
      options.warn(`Alertmanager did not start: ${err.message}`);
      return undefined;
    });
  } else {
    options.warn(alertmanager ? `${ALERTMANAGER_CONFIG} not found: no Alertmanager` : 'prometheus-alertmanager is not installed: no Alertmanager');
  }
  stack.prometheusUrl = await startPrometheus(prometheus, rules, stack.alertmanagerUrl !== undefined, options).catch((err: Error) => {
    options.warn(`Prometheus did not start: ${err.message}`);
    return undefined;
  });
  return stack;
}

async function startAlertmanager(binary: string, options: StackOptions): Promise<string> {
  const storage = join(options.dir, 'alertmanager');
  mkdirSync(storage, { recursive: true });
  const address = `127.0.0.1:${options.alertmanagerPort}`;
  const proc = startProcess({
    name: 'alertmanager',
    command: binary,
    args: [
      `--config.file=${ALERTMANAGER_CONFIG}`,
      `--storage.path=${storage}`,
      `--web.listen-address=${address}`,
      // A single instance: no gossip port (9094 by default) to collide with anything.
      '--cluster.listen-address=',
    ],
    logFile: join(options.dir, 'alertmanager.log'),
  });
  options.onStarted(proc);
  const url = `http://${address}`;
  await waitForHttp(`${url}/-/ready`, proc, 30_000, options.signal);
  return url;
}

async function startPrometheus(binary: string, rules: string[], withAlertmanager: boolean, options: StackOptions): Promise<string> {
  const storage = join(options.dir, 'prometheus');
  mkdirSync(storage, { recursive: true });
  const configFile = join(options.dir, 'prometheus.yml');
  writeFileSync(
    configFile,
    prometheusConfig({
      exporterAddress: options.exporterAddress,
      alertmanagerAddress: withAlertmanager ? `127.0.0.1:${options.alertmanagerPort}` : undefined,
      rules,
      intervalSeconds: 5,
    }),
  );
  const address = `127.0.0.1:${options.prometheusPort}`;
  const proc = startProcess({
    name: 'prometheus',
    command: binary,
    args: [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${storage}`,
      `--web.listen-address=${address}`,
      '--storage.tsdb.retention.time=1d',
      // Resend firing alerts soon after Alertmanager is found, not after the default minute.
      '--rules.alert.resend-delay=5s',
    ],
    logFile: join(options.dir, 'prometheus.log'),
  });
  options.onStarted(proc);
  const url = `http://${address}`;
  await waitForHttp(`${url}/-/ready`, proc, 60_000, options.signal);
  return url;
}
