import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { COLLECTOR_NAMES, type CollectorName } from '../src/collectors/index.js';
import { freePort } from '../src/free-port.js';
import { onCleanup } from './cleanup.js';
import { OUR_ROLE, PEER_ROLE, type BenchDatabase } from './database.js';
import { startExporterProcess, type ExporterProcess } from './processes.js';

const CLI = fileURLToPath(new URL(import.meta.url.includes('/dist-bench/') ? '../../dist/cli.js' : '../dist/cli.js', import.meta.url));
const DOCKERFILE = fileURLToPath(new URL(import.meta.url.includes('/dist-bench/') ? '../../Dockerfile' : '../Dockerfile', import.meta.url));

/** The flags between "node" and the script in the Dockerfile's ENTRYPOINT. */
export function imageNodeFlags(dockerfile = readFileSync(DOCKERFILE, 'utf8')): string[] {
  const line = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!line) throw new Error('Dockerfile has no exec-form ENTRYPOINT');
  const argv = JSON.parse(line[1]!) as string[];
  return argv.slice(1).filter((a) => a.startsWith('--'));
}

export const PEER_BINARY = 'prometheus-postgres-exporter';

let configDir: string | undefined;

function writeConfig(name: string, yaml: string): string {
  if (!configDir) {
    const dir = mkdtempSync(join(tmpdir(), 'pgvector-exporter-bench-'));
    configDir = dir;
    onCleanup('bench config directory', () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(configDir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

export interface OurExporterOptions {
  name: string;
  /** Every enabled collector polls at this interval; undefined = each collector's default interval. */
  intervalMs?: number;
  /** Login role; OUR_ROLE by default. */
  role?: string;
  /** Database of the cluster to watch; the bench database by default. */
  database?: string;
  /** database.pool_max; the default (3) when undefined. */
  poolMax?: number;
  /** Collectors to run; default every collector except recall (off by default, and not something the peer does). */
  collectors?: readonly CollectorName[];
  /** query_log.lookback, e.g. to read a backlog on start. */
  lookbackMs?: number;
  /** YAML of a custom collector file (docs/custom-collectors.md) to load. */
  customCollectors?: string;
  /** Run the maintenance scheduler as `serve` does by default (off unless asked). */
  jobs?: boolean;
  /** Node/V8 flags before the script; by default the image's (the Dockerfile's ENTRYPOINT), so the bench runs serve as the image does. */
  nodeFlags?: readonly string[];
  /** More top-level YAML for the config file (e.g. `embeddings:` settings). */
  extraYaml?: string;
  /** How long to wait for /readyz (the first poll of every collector); 30 s by default. */
  readyTimeoutMs?: number;
  /** Another build's dist/cli.js (e.g. the previous design's, to measure it side by side); this tree's by default. */
  cli?: string;
}

export const DEFAULT_COLLECTORS = COLLECTOR_NAMES.filter((name) => name !== 'recall');

/**
 * The collectors whose ground the peer's default collectors also cover: pg_up and versions,
 * pg_stat_database and database size, replication, pg_stat_activity and the connection settings.
 */
export const OVERLAP_COLLECTORS: readonly CollectorName[] = ['connectivity', 'database', 'replication', 'connections'];

/** `pgvector-exporter serve` as a child process, logged in as OUR_ROLE, scheduler off. */
export async function startOurExporter(db: BenchDatabase, options: OurExporterOptions): Promise<ExporterProcess> {
  const enabled = new Set(options.collectors ?? DEFAULT_COLLECTORS);
  const interval = options.intervalMs === undefined ? '' : `\n    interval: ${options.intervalMs}ms`;
  const collectors = COLLECTOR_NAMES.map((name) => `  ${name}:\n    enabled: ${enabled.has(name)}${interval}`).join('\n');
  const yaml = [
    'log_level: warn',
    `jobs:\n  enabled: ${options.jobs === true}`,
    ...(options.poolMax !== undefined ? [`database:\n  pool_max: ${options.poolMax}`] : []),
    `collectors:\n${collectors}`,
    ...(options.lookbackMs !== undefined ? [`query_log:\n  lookback: ${options.lookbackMs}ms`] : []),
    ...(options.extraYaml !== undefined ? [options.extraYaml] : []),
    ...(options.customCollectors !== undefined ? [`custom_collectors:\n  files: [${JSON.stringify(writeConfig(`${options.name}-custom`, options.customCollectors))}]`] : []),
    '',
  ].join('\n');
  const port = await freePort();
  return startExporterProcess({
    name: options.name,
    command: process.execPath,
    args: [...(options.nodeFlags ?? imageNodeFlags()), options.cli ?? CLI, 'serve', '--web.listen-address', `127.0.0.1:${port}`, '--config', writeConfig(options.name, yaml)],
    env: { ...process.env, DATABASE_URL: options.database ? db.cluster.url(options.database, options.role ?? OUR_ROLE) : db.url(options.role ?? OUR_ROLE) },
    url: `http://127.0.0.1:${port}`,
    readyPath: '/readyz',
  }, options.readyTimeoutMs);
}

/** Debian's prometheus-postgres-exporter with its default collectors, logged in as PEER_ROLE. */
export async function startPeerExporter(db: BenchDatabase): Promise<ExporterProcess> {
  const port = await freePort();
  return startExporterProcess({
    name: 'postgres_exporter',
    command: PEER_BINARY,
    args: [`--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'],
    env: { ...process.env, DATA_SOURCE_NAME: `${db.url(PEER_ROLE)}?sslmode=disable` },
    url: `http://127.0.0.1:${port}`,
    readyPath: '/metrics',
  });
}
