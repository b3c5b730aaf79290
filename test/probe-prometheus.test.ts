import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { freePort } from '../src/free-port.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';
import { promQuery, startPrometheus, tempDir, type ManagedProcess } from './helpers/monitoring-stack.js';
import { ROOT } from './helpers/monitoring-files.js';
import { PASSWORD_CHECKED_ROLE } from './helpers/server.js';

/**
 * The documented scrape configurations (deploy/prometheus/probe.yml and probe-sharded.yml), run by a real
 * Prometheus against real exporters and two real PostgreSQL servers: the test server and a second
 * cluster of its own. Only the targets and the exporters' addresses are replaced.
 */

interface RelabelRule {
  source_labels?: string[];
  target_label?: string;
  regex?: string;
  replacement?: string;
  action?: string;
  modulus?: number;
}

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[] }[];
  relabel_configs: RelabelRule[];
  [key: string]: unknown;
}

function shippedJob(file: string): ScrapeConfig {
  const doc = parse(readFileSync(`${ROOT}deploy/prometheus/${file}`, 'utf8')) as { scrape_configs: ScrapeConfig[] };
  return doc.scrape_configs[0]!;
}

/** Prometheus' hashmod (relabel.go): the last 8 bytes of the md5 of the value, big-endian, modulo n. */
function hashmod(value: string, modulus: number): number {
  return Number(createHash('md5').update(value).digest().readBigUInt64BE(8) % BigInt(modulus));
}

const PASSWORD = 'pr0m@:/%#s3cret';
const ROLE = `probe_${randomBytes(4).toString('hex')}`;
const serverA = new URL(adminUrl());
const A = `${serverA.hostname}:${serverA.port || 5432}`;

function exporterConfig(): string {
  return `
auth_modules:
  monitor:
    type: userpass
    userpass: { username: ${ROLE}, password: ${JSON.stringify(PASSWORD)} }
    options: { sslmode: disable }
collectors:
  connectivity: { interval: 1s }
jobs:
  enabled: false
`;
}

async function createMonitorRole(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PASSWORD_CHECKED_ROLE}') THEN CREATE ROLE ${PASSWORD_CHECKED_ROLE} NOLOGIN; END IF; END $$`);
    await client.query(`CREATE ROLE ${ROLE} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${PASSWORD_CHECKED_ROLE}, pg_monitor`);
  } finally {
    await client.end();
  }
}

async function valuesBy(prometheus: ManagedProcess, expr: string, label: string): Promise<Map<string, number[]>> {
  const byLabel = new Map<string, number[]>();
  for (const sample of await promQuery(prometheus.url, expr)) {
    const key = sample.metric[label] ?? '';
    byLabel.set(key, [...(byLabel.get(key) ?? []), Number(sample.value[1])]);
  }
  return byLabel;
}

describe('Prometheus scrapes two servers and a dead one through /probe', () => {
  let db: TestDatabase;
  let serverB: LocalCluster;
  let B: string;
  let serve: ServeProcess;
  let prometheus: ManagedProcess | undefined;
  const dir = tempDir('pgve-probe-prom-');

  beforeAll(async () => {
    db = await createTestDatabase();
    serverB = await LocalCluster.start({ hba: [`host all +${PASSWORD_CHECKED_ROLE} 127.0.0.1/32 scram-sha-256`] });
    B = `127.0.0.1:${serverB.port}`;
    await createMonitorRole(adminUrl());
    await createMonitorRole(serverB.url());
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(exporterConfig())]);
  }, 120_000);
  afterAll(async () => {
    await prometheus?.stop();
    await serve?.stop();
    await db?.drop();
    serverB?.remove();
    await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
    dir.remove();
  });

  it('pg_up per target with the documented relabel config: 1, 1 and 0; up 1 for all three', async () => {
    const dead = `127.0.0.1:${await freePort()}/postgres`;
    const targets = [`${A}/${db.name}`, `${B}/postgres`, dead];
    const job = shippedJob('probe.yml');
    job.static_configs = [{ targets }];
    const toExporter = job.relabel_configs.find((r) => r.target_label === '__address__' && !r.source_labels)!;
    toExporter.replacement = new URL(serve.url).host;
    prometheus = await startPrometheus(dir.path, { scrapeConfigs: [{ ...job, scrape_interval: '2s', scrape_timeout: '2s' }] });

    const selector = `{job="${job.job_name}"}`;
    const pgUp = await eventually(async () => {
      const byInstance = await valuesBy(prometheus!, `pg_up${selector}`, 'instance');
      return byInstance.size === 3 && byInstance.get(targets[0]!)?.[0] === 1 && byInstance.get(targets[1]!)?.[0] === 1 ? byInstance : undefined;
    }, 'pg_up of the three targets', 60_000);
    expect(pgUp.get(dead)).toEqual([0]);
    // up is 1 for each target, the dead one included (its probe answered: pg_up 0). Polled, not read once:
    // one scrape late on a busy machine reads up 0 until the next.
    const allUp = new Map(targets.map((t) => [t, [1]]));
    const up = await eventually(async () => {
      const byInstance = await valuesBy(prometheus!, `up${selector}`, 'instance');
      return targets.every((t) => byInstance.get(t)?.[0] === 1) ? byInstance : undefined;
    }, 'up 1 for the three targets', 30_000);
    expect(new Map([...up].map(([k, v]) => [k, v]))).toEqual(allUp);
    // Two servers, each its own: the test database exists on A only.
    const sizes = await valuesBy(prometheus, `pg_database_size_bytes{job="${job.job_name}",datname="${db.name}"}`, 'instance');
    expect([...sizes.keys()]).toEqual([targets[0]]);
    expect((await promQuery(prometheus.url, `pg_version_info{job="${job.job_name}",instance="${targets[1]}"}`)).length).toBe(1);
    // The exporter's own process metrics are not in the targets' series.
    expect(await promQuery(prometheus.url, `process_resident_memory_bytes${selector}`)).toEqual([]);
  });
});

describe('hashmod sharding: two exporters, each target probed by exactly one', () => {
  let db: TestDatabase;
  let serverB: LocalCluster;
  const exporters: ServeProcess[] = [];
  let prometheus: ManagedProcess | undefined;
  const dir = tempDir('pgve-probe-shard-');

  beforeAll(async () => {
    db = await createTestDatabase();
    serverB = await LocalCluster.start({ hba: [`host all +${PASSWORD_CHECKED_ROLE} 127.0.0.1/32 scram-sha-256`] });
    await createMonitorRole(adminUrl());
    await createMonitorRole(serverB.url());
    const client = new pg.Client({ connectionString: serverB.url() });
    await client.connect();
    for (let i = 0; i < 8; i++) await client.query(`CREATE DATABASE shard_${i}`);
    await client.end();
    for (let i = 0; i < 2; i++) exporters.push(await startServe(['--database-url', db.url, '--config', writeConfig(exporterConfig())]));
  }, 120_000);
  afterAll(async () => {
    await prometheus?.stop();
    for (const e of exporters) await e.stop();
    await db?.drop();
    serverB?.remove();
    await adminQuery(`DROP ROLE IF EXISTS ${ROLE}`);
    dir.remove();
  });

  it('every target is scraped once, through the exporter its hashmod shard names; none is lost', async () => {
    const B = `127.0.0.1:${serverB.port}`;
    const job = shippedJob('probe-sharded.yml');
    const modulus = job.relabel_configs.find((r) => r.action === 'hashmod')!.modulus!;
    expect(modulus).toBe(2);
    // Five targets on the two servers, more until both exporters get work (the ports are random, and a
    // test where one exporter had every target would prove nothing).
    const candidates = [`${A}/${db.name}`, `${A}/postgres`, `${B}/postgres`, ...[0, 1, 2, 3, 4, 5, 6, 7].map((i) => `${B}/shard_${i}`)];
    const targets = candidates.slice(0, 5);
    for (const extra of candidates.slice(5)) {
      if (new Set(targets.map((t) => hashmod(t, modulus))).size === modulus) break;
      targets.push(extra);
    }
    const shards = targets.map((t) => hashmod(t, modulus));
    expect(new Set(shards).size).toBe(2);
    job.static_configs = [{ targets }];
    const addresses = exporters.map((e) => new URL(e.url).host);
    for (const rule of job.relabel_configs) {
      if (rule.target_label === '__address__' && rule.source_labels?.[0] === '__tmp_shard') rule.replacement = addresses[Number(rule.regex)];
    }
    // Test only: which exporter answered, as a label (the shipped file does not need one).
    job.relabel_configs.push({ source_labels: ['__address__'], target_label: 'exporter' });
    prometheus = await startPrometheus(dir.path, { scrapeConfigs: [{ ...job, scrape_interval: '2s', scrape_timeout: '2s' }] });

    const series = await eventually(async () => {
      const samples = await promQuery(prometheus!.url, `pg_up{job="${job.job_name}"}`);
      return samples.length === targets.length && samples.every((s) => s.value[1] === '1') ? samples : undefined;
    }, 'pg_up 1 for every target', 90_000);
    const byInstance = new Map<string, string[]>();
    for (const s of series) byInstance.set(s.metric.instance!, [...(byInstance.get(s.metric.instance!) ?? []), s.metric.exporter!]);
    // None lost, none twice, each through the exporter of its shard.
    expect([...byInstance.keys()].sort()).toEqual([...targets].sort());
    for (const [i, target] of targets.entries()) expect(byInstance.get(target)).toEqual([addresses[shards[i]!]]);
    // The exporters agree: each holds pools and pollers for its own shard's targets only.
    for (const [shard, exporter] of exporters.entries()) {
      const expected = shards.filter((s) => s === shard).length;
      await eventually(async () => sampleValue(await exporter.metrics(), 'pgvector_exporter_probe_targets_opened_total') === expected, `exporter ${shard} opened ${expected} targets`);
      expect(sampleValue(await exporter.metrics(), 'pgvector_exporter_probe_targets')).toBe(expected);
    }
  });
});
