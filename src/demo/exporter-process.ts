import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { startProcess, waitForHttp, type ManagedProcess } from './managed-process.js';

/**
 * The exporter of the demo: `pgvector-exporter serve` as a child process, exactly what an operator
 * runs (collectors, scheduler, HTTP server), with short intervals so the summary moves, and the
 * recall collector on. The one place the demo decides how the exporter is run.
 */
export const CLI_PATH = fileURLToPath(new URL('../cli.js', import.meta.url));

export function demoExporterConfig(applicationName: string, logLevel = 'info'): Record<string, unknown> {
  return {
    log_level: logLevel,
    app: { application_name: applicationName },
    collectors: {
      connectivity: { interval: '5s' },
      database: { interval: '10s' },
      replication: { interval: '15s' },
      connections: { interval: '5s' },
      tables: { interval: '10s' },
      indexes: { interval: '10s' },
      health: { interval: '10s' },
      query_log: { interval: '5s' },
      embeddings: { interval: '30s' },
      // One measurement reads every embedding 20 times (~25 s of database time at 10,000 chunks).
      recall: { enabled: true, interval: '5m', timeout: '2m' },
      statements: { interval: '15s' },
    },
    // Catch the rows the workload logged before the exporter's first poll.
    query_log: { lookback: '10m' },
    jobs: {
      analyze: { schedule: '*/10 * * * *' },
      'log-retention': { schedule: '*/15 * * * *' },
    },
  };
}

export interface ExporterProcessOptions {
  dir: string;
  databaseUrl: string;
  listenAddress: string;
  applicationName: string;
  logLevel?: string;
  signal?: AbortSignal;
  onStarted: (process: ManagedProcess) => void;
}

export interface ExporterProcess {
  url: string;
  process: ManagedProcess;
}

/** Where Prometheus reaches an address the exporter listens on (":9188" and "0.0.0.0:9188" are loopback here). */
export function scrapeAddress(listenAddress: string): string {
  const at = listenAddress.lastIndexOf(':');
  const host = listenAddress.slice(0, at);
  return `${host === '' || host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${listenAddress.slice(at + 1)}`;
}

export async function startExporterProcess(options: ExporterProcessOptions): Promise<ExporterProcess> {
  const configFile = join(options.dir, 'exporter.yml');
  writeFileSync(configFile, stringify(demoExporterConfig(options.applicationName, options.logLevel)));
  const proc = startProcess({
    name: 'exporter',
    command: process.execPath,
    args: [CLI_PATH, 'serve', '--config', configFile, '--web.listen-address', options.listenAddress],
    logFile: join(options.dir, 'exporter.log'),
    // A clean environment: variables of the user's shell would override the demo's config file.
    // The URL travels in the environment, not argv, where ps would show its password.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: options.databaseUrl },
  });
  options.onStarted(proc);
  const url = `http://${scrapeAddress(options.listenAddress)}`;
  await waitForHttp(`${url}/readyz`, proc, 60_000, options.signal);
  return { url, process: proc };
}
