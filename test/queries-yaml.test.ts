import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readQueriesYaml } from '../src/custom/queries-yaml.js';
import { freePort } from '../src/free-port.js';
import { parseMetricsText } from '../src/metrics/exposition-text.js';
import { stopChild } from './helpers/child.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * postgres_exporter's queries.yaml, read as it is. Fixtures in test/fixtures/postgres-exporter/:
 * - queries-upstream-2023.yaml: the repository's queries.yaml before it was emptied (prometheus-community/
 *   postgres_exporter d0f4c26c^, Apache-2.0), the file most deployments started from;
 * - user_queries_ok.yaml, user_queries_test.yaml: upstream's own test files (exporter/tests/);
 * - every-usage.yaml: ours, every `usage` kind with deterministic values.
 * The real postgres_exporter (Debian's 0.11) runs on the same files and database, and the families must match.
 */
const PEER = '/usr/bin/prometheus-postgres-exporter';
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/postgres-exporter/${name}`, import.meta.url));

interface Family {
  type: string;
  labels: string[];
  /** series (labels without `server`, sorted) -> value */
  series: Map<string, number>;
}

/** The families of the given namespaces in an exposition, `server` label left out (see docs/custom-collectors.md). */
function familiesOf(text: string, namespaces: string[]): Map<string, Family> {
  const families = new Map<string, Family>();
  const ours = (name: string) => namespaces.some((ns) => name.startsWith(`${ns}_`));
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    if (ours(name!)) families.set(name!, { type: type!, labels: [], series: new Map() });
  }
  const familyOf = (sample: string) =>
    families.has(sample) ? sample : [...families.keys()].find((f) => families.get(f)!.type === 'histogram' && /^(.*)_(bucket|sum|count)$/.exec(sample)?.[1] === f);
  for (const sample of parseMetricsText(text)) {
    const name = familyOf(sample.name);
    if (!name) continue;
    const family = families.get(name)!;
    const { server: _server, ...labels } = sample.labels;
    const labelNames = Object.keys(labels).filter((l) => l !== 'le').sort();
    if (labelNames.join() !== family.labels.join()) family.labels = [...new Set([...family.labels, ...labelNames])].sort();
    const key = `${sample.name}{${Object.entries(labels).sort().map(([k, v]) => `${k}=${v}`).join(',')}}`;
    family.series.set(key, sample.value);
  }
  return families;
}

describe('queries.yaml files from postgres_exporter', () => {
  it('reads the queries.yaml postgres_exporter shipped until 2023 with its names, types and labels', () => {
    const definitions = readQueriesYaml(fixture('queries-upstream-2023.yaml'));
    expect(definitions.map((d) => d.name)).toEqual(['pg_replication', 'pg_postmaster', 'pg_stat_user_tables', 'pg_statio_user_tables', 'pg_process_idle']);
    const tables = definitions.find((d) => d.name === 'pg_stat_user_tables')!;
    expect(tables.labels).toEqual(['datname', 'schemaname', 'relname']);
    expect(tables.metrics.find((m) => m.name === 'pg_stat_user_tables_seq_scan')).toMatchObject({ kind: 'counter', help: 'Number of sequential scans initiated on this table' });
    expect(tables.metrics.find((m) => m.name === 'pg_stat_user_tables_n_live_tup')).toMatchObject({ kind: 'gauge' });
    expect(definitions.find((d) => d.name === 'pg_replication')).toMatchObject({ databases: 'primary' });
    expect(definitions.find((d) => d.name === 'pg_process_idle')!.metrics).toEqual([expect.objectContaining({ name: 'pg_process_idle_seconds', kind: 'histogram', column: 'seconds' })]);
  });

  it("reads upstream's user_queries_ok.yaml; its user_queries_test.yaml declares a histogram's _sum column twice: file:line", () => {
    expect(readQueriesYaml(fixture('user_queries_ok.yaml')).map((d) => [d.name, d.labels, d.metrics.map((m) => `${m.name}:${m.kind}`)])).toEqual([
      ['pg_locks_mode', ['datname', 'tag_lockmode'], ['pg_locks_mode_count:gauge']],
      ['pg_wal', ['datname'], ['pg_wal_xlog_location_b:counter']],
    ]);
    expect(() => readQueriesYaml(fixture('user_queries_test.yaml'))).toThrowError(
      new RegExp(`^${fixture('user_queries_test.yaml')}:\\d+: random\\.metrics: column "missing_sum" is declared twice \\(it is also the sum column of the HISTOGRAM missing\\)`),
    );
  });

  it('rejects what postgres_exporter would silently drop: an unknown usage or key, with file:line', () => {
    const usage = writeConfig('pg_x:\n  query: SELECT 1 AS v\n  metrics:\n    - v:\n        usage: "GAUGES"\n        description: x\n', 'q1.yaml');
    expect(() => readQueriesYaml(usage)).toThrowError(new RegExp(`^${usage}:5: pg_x\\.metrics\\[0\\]\\.v\\.usage: "GAUGES" is not one of LABEL`));
    const key = writeConfig('pg_x:\n  query: SELECT 1 AS v\n  cache_second: 30\n  metrics:\n    - v: { usage: GAUGE, description: x }\n', 'q2.yaml');
    expect(() => readQueriesYaml(key)).toThrowError(new RegExp(`^${key}:3: pg_x\\.cache_second: unknown key`));
  });
});

describe.skipIf(!existsSync(PEER))('queries.yaml: the same families as the real postgres_exporter on the same file', () => {
  let db: TestDatabase;
  const peers: ChildProcess[] = [];
  const exporters: ServeProcess[] = [];
  /** An idle session, so pg_process_idle (idle backends by application) has rows for both exporters. */
  let idle: pg.Client;

  beforeAll(async () => {
    db = await createTestDatabase();
    await db.pool.query('ANALYZE');
    idle = new pg.Client({ connectionString: db.url, application_name: 'idle-holder' });
    await idle.connect();
  });
  afterAll(async () => {
    await idle.end();
    await Promise.all(peers.map((peer) => stopChild(peer)));
    await Promise.all(exporters.map((e) => e.stop()));
    await db.drop();
  });

  async function scrapePeer(file: string): Promise<string> {
    const port = await freePort();
    const url = new URL(db.url);
    url.searchParams.set('sslmode', 'disable');
    const peer = spawn(PEER, [`--web.listen-address=127.0.0.1:${port}`, `--extend.query-path=${file}`], {
      env: { PATH: process.env.PATH, DATA_SOURCE_NAME: url.toString() },
      stdio: 'ignore',
    });
    peers.push(peer);
    return eventually(async () => {
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      return /^pg_up(\{[^}]*\})? 1$/m.test(text) ? text : undefined;
    }, 'postgres_exporter to answer');
  }

  async function scrapeOurs(file: string, namespaces: string[], extraConfig = ''): Promise<string> {
    const config = writeConfig(`jobs: { enabled: false }\ncustom_collectors: { interval: 1s }\n${extraConfig}`);
    const exporter = await startServe(['--config', config, '--extend.query-path', file, '--database-url', db.url]);
    exporters.push(exporter);
    return eventually(async () => {
      const text = await exporter.metrics();
      const polled = namespaces.every((ns) => new RegExp(`pgvector_exporter_collector_polls_total\\{collector="${ns}",result="success"\\}`).test(text));
      return polled ? text : undefined;
    }, 'every namespace polled once');
  }

  it('every usage kind: same names, types, labels and values; text MAPPEDMETRIC/DURATION values only here', async () => {
    const file = fixture('every-usage.yaml');
    const namespaces = ['pg_fixture_tables', 'pg_fixture_latency'];
    const [theirs, ours] = await Promise.all([scrapePeer(file), scrapeOurs(file, namespaces)]);
    const peer = familiesOf(theirs, namespaces);
    const mine = familiesOf(ours, namespaces);
    expect([...peer.keys()].sort()).toEqual(['pg_fixture_latency_seconds', 'pg_fixture_tables_extra_value', 'pg_fixture_tables_live_rows', 'pg_fixture_tables_scans']);
    for (const [name, family] of peer) {
      expect(mine.get(name), name).toEqual(family);
    }
    // postgres_exporter reads MAPPEDMETRIC and DURATION values as plain numbers (text publishes nothing there).
    expect([...mine.keys()].filter((n) => !peer.has(n)).sort()).toEqual(['pg_fixture_tables_age_milliseconds', 'pg_fixture_tables_health']);
    expect(mine.get('pg_fixture_tables_health')).toMatchObject({ type: 'gauge', labels: ['relname'] });
    expect(mine.get('pg_fixture_tables_health')!.series.get('pg_fixture_tables_health{relname=chunks}')).toBe(0.5);
    expect(mine.get('pg_fixture_tables_age_milliseconds')!.series.get('pg_fixture_tables_age_milliseconds{relname=chunks}')).toBe(123_500);
  });

  it("the queries.yaml postgres_exporter shipped until 2023: same names, types and labels (the built-in collectors publishing its families off)", async () => {
    const file = fixture('queries-upstream-2023.yaml');
    const namespaces = ['pg_replication', 'pg_postmaster', 'pg_stat_user_tables', 'pg_statio_user_tables', 'pg_process_idle'];
    const [theirs, ours] = await Promise.all([scrapePeer(file), scrapeOurs(file, namespaces, 'collectors: { tables: { enabled: false }, replication: { enabled: false } }\n')]);
    const shape = (families: Map<string, Family>) => new Map([...families].map(([name, f]) => [name, { type: f.type, labels: f.labels }]));
    const peer = shape(familiesOf(theirs, namespaces));
    // The built-in collectors publish pg_replication_* families of their own; compare what the file declares.
    const declared = new Set(readQueriesYaml(file).flatMap((d) => d.metrics.map((m) => m.name)));
    const mine = new Map([...shape(familiesOf(ours, namespaces))].filter(([name]) => declared.has(name)));
    expect(peer.size).toBeGreaterThan(25);
    expect(mine).toEqual(peer);
  });
});
