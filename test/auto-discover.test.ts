import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DATABASES_APPLICATION_NAME } from '../src/commands/assembly.js';
import { parseMetricsText, select } from '../src/metrics/exposition-text.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { databaseSelector } from '../src/db/database-selector.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * --auto-discover-databases on a server of its own (discovery sees every database of the server, so not
 * the shared test server): 50 pgvector databases watched by one exporter, databases created and dropped
 * while it runs, the connection cap counted in pg_stat_activity, include/exclude patterns.
 */

const DATABASES = Array.from({ length: 50 }, (_, i) => `app_${String(i).padStart(2, '0')}`);
const TEMPLATE = 'vec_template';
const CAP = 4;

/** Only the collectors these tests look at, on short intervals: 51 databases polled by a 2-core machine. */
const CONFIG = `
managed_tables: [items]
auto_discover:
  interval: 1s
  max_connections: ${CAP}
collectors:
  database: { enabled: false }
  tables: { interval: 2s, timeout: 10s }
  indexes: { interval: 2s, timeout: 10s }
  health: { enabled: false }
  query_log: { enabled: false }
  embeddings: { enabled: false }
  embedding_failures: { enabled: false }
  statements: { enabled: false }
jobs:
  enabled: false
`;

let cluster: LocalCluster;
let admin: pg.Client;

beforeAll(async () => {
  cluster = await LocalCluster.start();
  admin = new pg.Client({ connectionString: cluster.url() });
  admin.on('error', () => undefined);
  await admin.connect();
  await admin.query(`CREATE DATABASE ${TEMPLATE}`);
  const template = new pg.Client({ connectionString: cluster.url(TEMPLATE) });
  await template.connect();
  try {
    await template.query(`CREATE EXTENSION vector;
      CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(3));
      INSERT INTO items (embedding) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 20);
      CREATE INDEX items_embedding_hnsw ON items USING hnsw (embedding vector_l2_ops);`);
  } finally {
    await template.end();
  }
  // A template is not discovered (as in postgres_exporter): only these 50 and the primary database are.
  await admin.query(`ALTER DATABASE ${TEMPLATE} IS_TEMPLATE true`);
  // A copy of the template's files per database: fast, and the test's own setup, not the exporter's work.
  for (const name of DATABASES) await admin.query(`CREATE DATABASE ${name} TEMPLATE ${TEMPLATE}`);
}, 180_000);

afterAll(async () => {
  await admin?.end().catch(() => undefined);
  cluster?.remove();
});

/** The datname values of the vector-index series: the databases whose indexes collector has reported. */
function indexedDatabases(text: string): string[] {
  return [...new Set(select(parseMetricsText(text), 'pgvector_index_valid').map((s) => s.labels.datname!))].sort();
}

/** Each family's TYPE line at most once: the snapshots of 50 pollers merged into one valid text. */
function repeatedFamilies(text: string): string[] {
  const seen = new Map<string, number>();
  for (const match of text.matchAll(/^# TYPE (\S+) /gm)) seen.set(match[1]!, (seen.get(match[1]!) ?? 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([name]) => name);
}

describe('one exporter watching a server of 50 databases', () => {
  let serve: ServeProcess;
  let sampling = true;
  let sampler: Promise<void>;
  const peaks = { databases: 0, exporter: 0 };

  beforeAll(async () => {
    serve = await startServe(['--database-url', cluster.url(), '--auto-discover-databases', '--config', writeConfig(CONFIG)]);
    // The exporter's sessions, counted by application_name all along the tests.
    sampler = (async () => {
      const client = new pg.Client({ connectionString: cluster.url(), application_name: 'test sampler' });
      await client.connect();
      try {
        while (sampling) {
          const { rows } = await client.query<{ databases: number; exporter: number }>(
            `SELECT count(*) FILTER (WHERE application_name = $1)::int AS databases,
                    count(*) FILTER (WHERE application_name LIKE 'pgvector-exporter%')::int AS exporter
               FROM pg_stat_activity`,
            [DATABASES_APPLICATION_NAME],
          );
          peaks.databases = Math.max(peaks.databases, rows[0]!.databases);
          peaks.exporter = Math.max(peaks.exporter, rows[0]!.exporter);
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        await client.end();
      }
    })();
  }, 60_000);

  afterAll(async () => {
    sampling = false;
    // The exporter first: a sampler that failed must not leave it running. Its error is the tests' to report.
    await serve?.stop();
    await sampler?.catch(() => undefined);
  });

  it('reports every database\'s vector index, labelled datname, in one valid exposition', async () => {
    const text = await eventually(
      async () => {
        const body = await serve.metrics();
        return indexedDatabases(body).length === DATABASES.length ? body : undefined;
      },
      'the vector index of all 50 databases',
      120_000,
      500,
    );
    expect(indexedDatabases(text)).toEqual(DATABASES);
    const samples = parseMetricsText(text);
    // Database-scoped families carry datname; the table statistics come from each database.
    expect(select(samples, 'pg_stat_user_tables_n_live_tup', { datname: 'app_07', relname: 'items' })).toHaveLength(1);
    expect(select(samples, 'pgvector_index_info', { datname: 'app_31', indexrelname: 'items_embedding_hnsw', method: 'hnsw' })).toHaveLength(1);
    // Server-scoped families once, from the primary connection, without datname.
    expect(select(samples, 'pg_up')).toEqual([{ name: 'pg_up', labels: {}, value: 1 }]);
    // Self-metrics per database, so a collector failing in one database says which.
    expect(select(samples, 'pgvector_exporter_collector_success', { collector: 'indexes', datname: 'app_49' })).toHaveLength(1);
    expect(select(samples, 'pgvector_exporter_collector_success', { collector: 'connections' })[0]!.labels.datname).toBeUndefined();
    expect(repeatedFamilies(text)).toEqual([]);
    const promtool = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(promtool.error).toBeUndefined();
    expect(`${promtool.stdout}${promtool.stderr}`).not.toMatch(/error while linting|text format parsing error/);
  });

  it('watches a database created while it runs, and forgets one dropped (DROP DATABASE is not refused)', async () => {
    await admin.query(`CREATE DATABASE app_new TEMPLATE ${TEMPLATE}`);
    await eventually(async () => indexedDatabases(await serve.metrics()).includes('app_new'), 'app_new watched', 60_000, 250);
    // No FORCE: the exporter's idle connection must not make the user's DROP DATABASE fail.
    await admin.query('DROP DATABASE app_new');
    const text = await eventually(
      async () => {
        const body = await serve.metrics();
        return body.includes('"app_new"') ? undefined : body;
      },
      'every series of app_new gone',
      60_000,
      250,
    );
    expect(indexedDatabases(text)).toEqual(DATABASES);
    // One info line, no warning per collector.
    const lines = serve.logs().split('\n').filter((line) => line.includes('app_new'));
    expect(lines.filter((line) => /no longer watched/.test(line))).toHaveLength(1);
    expect(lines.filter((line) => /"level":(40|50)/.test(line))).toEqual([]);
  });

  it('keeps its connections under auto_discover.max_connections', () => {
    expect(peaks.databases).toBeGreaterThan(0);
    expect(peaks.databases).toBeLessThanOrEqual(CAP);
    // The primary database's pools come on top: database.pool_max (3) and pg_up's one.
    expect(peaks.exporter).toBeLessThanOrEqual(CAP + 3 + 1);
  });
});

/** One collector per database, one for the server: `databases: all` runs in each watched database, `primary` once. */
const CUSTOM = `
collectors:
  - name: items_per_database
    query: SELECT count(*) AS items FROM items
    interval: 1s
    databases: all
    metrics:
      - { name: test_items, type: gauge, column: items, help: Rows of items. }
  - name: databases_on_server
    query: SELECT count(*) AS databases FROM pg_database
    interval: 1s
    metrics:
      - { name: test_databases, type: gauge, column: databases, help: Databases of the server. }
`;

describe('include and exclude patterns, custom collectors', () => {
  let serve: ServeProcess;
  let customFile: string;
  beforeAll(async () => {
    customFile = writeConfig(CUSTOM, 'custom.yaml');
    const args = ['--auto-discover-databases', '--include-databases', 'app_1*,app_20', '--custom-collectors.files', customFile];
    // pg_stat_statements created in the primary database only: it shows every database's statements.
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    for (const name of ['app_12', 'app_05']) {
      const client = new pg.Client({ connectionString: cluster.url(name) });
      await client.connect();
      await client.query("SELECT id FROM items ORDER BY embedding <-> '[1,2,3]' LIMIT 3").finally(() => client.end());
    }
    const config = CONFIG.replace('statements: { enabled: false }', 'statements: { interval: 1s, timeout: 10s }');
    serve = await startServe(['--database-url', cluster.url(), ...args, '--config', writeConfig(config)], {
      PG_EXPORTER_EXCLUDE_DATABASES: 'app_13,app_17',
    });
  }, 60_000);
  afterAll(async () => {
    await serve?.stop();
  });

  it('watches the included databases but the excluded ones, and always the primary connection\'s', async () => {
    const expected = ['app_10', 'app_11', 'app_12', 'app_14', 'app_15', 'app_16', 'app_18', 'app_19', 'app_20'];
    const text = await eventually(
      async () => {
        const body = await serve.metrics();
        const primary = select(parseMetricsText(body), 'pgvector_exporter_collector_success', { collector: 'indexes', datname: 'postgres' }).length;
        return indexedDatabases(body).length === expected.length && primary === 1 ? body : undefined;
      },
      'the included databases and the primary one',
      60_000,
      250,
    );
    expect(indexedDatabases(text)).toEqual(expected);
    const watched = new Set(select(parseMetricsText(text), 'pgvector_exporter_collector_success', { collector: 'indexes' }).map((s) => s.labels.datname));
    expect([...watched].sort()).toEqual([...expected, 'postgres'].sort());
  });

  it('reads pg_stat_statements once, on the primary connection, for every watched database', async () => {
    const samples = await eventually(
      async () => {
        const parsed = parseMetricsText(await serve.metrics());
        return select(parsed, 'pgvector_statements_calls_total', { datname: 'app_12' }).length > 0 ? parsed : undefined;
      },
      'app_12\'s vector statement',
      60_000,
      250,
    );
    // app_05 is not watched: its statements are not published either.
    expect(select(samples, 'pgvector_statements_tracked').map((s) => s.labels.datname)).toEqual(['app_12']);
    expect(select(samples, 'pgvector_exporter_collector_success', { collector: 'statements' })).toEqual([{ name: 'pgvector_exporter_collector_success', labels: { collector: 'statements' }, value: 1 }]);
  });

  it('a custom collector file broken on disk after start: a new database is watched with the collectors read at start; only a reload reads the file again, and is rejected', async () => {
    writeFileSync(customFile, 'collectors:\n  - name: [broken\n');
    try {
      await admin.query(`CREATE DATABASE app_1late TEMPLATE ${TEMPLATE}`);
      // The file is read once per loaded config, not once per database: app_1late runs the custom collector as read at start.
      await eventually(
        async () => select(parseMetricsText(await serve.metrics()), 'test_items', { datname: 'app_1late' }).length === 1,
        'app_1late watched, with its custom collector',
        60_000,
        250,
      );
      expect(serve.logs()).not.toContain('database not watched');
      // A reload reads the file again: rejected, and every database keeps its collectors.
      serve.child.kill('SIGHUP');
      await eventually(async () => serve.logs().includes('config reload rejected'), 'the reload rejected', 30_000, 250);
      expect(serve.logs()).toMatch(/"error":"[^"]*custom\.yaml:\d+: invalid YAML/);
      expect(serve.child.exitCode).toBeNull();
      // /metrics is served from a short-lived cache: the failed reload shows on a later scrape.
      const text = await eventually(
        async () => {
          const body = await serve.metrics();
          return sampleValue(body, 'pgvector_exporter_config_last_reload_successful') === 0 ? body : undefined;
        },
        'the failed reload published',
        30_000,
        250,
      );
      expect(select(parseMetricsText(text), 'test_items', { datname: 'app_1late' })).toEqual([{ name: 'test_items', labels: { datname: 'app_1late' }, value: 20 }]);
    } finally {
      writeFileSync(customFile, CUSTOM);
      await admin.query('DROP DATABASE IF EXISTS app_1late WITH (FORCE)');
    }
  }, 120_000);

  it('runs a `databases: all` custom collector in each watched database, labelled datname, and a `primary` one once', async () => {
    const samples = await eventually(
      async () => {
        const parsed = parseMetricsText(await serve.metrics());
        return select(parsed, 'test_items').length === 9 && select(parsed, 'test_databases').length === 1 ? parsed : undefined;
      },
      'the custom collectors polled',
      60_000,
      250,
    );
    expect(select(samples, 'test_items', { datname: 'app_14' })).toEqual([{ name: 'test_items', labels: { datname: 'app_14' }, value: 20 }]);
    expect(select(samples, 'test_databases')[0]!.labels).toEqual({});
    // The primary database has no table items: that collector fails there, and says where.
    expect(select(samples, 'pgvector_exporter_collector_success', { collector: 'items_per_database', datname: 'postgres' })[0]!.value).toBe(0);
    expect(serve.logs()).toMatch(/"datname":"postgres","collector":"items_per_database"[^\n]*"msg":"collector failed"/);
  });
});

describe('database patterns', () => {
  it('are exact names as in postgres_exporter, or * wildcards; nothing else is special', () => {
    const names = ['app', 'app_1', 'app.1', 'appx1', 'APP_1', 'app_1_old', 'we"ird/db'];
    const pick = (include: string[], exclude: string[]) => names.filter(databaseSelector(include, exclude));
    expect(pick([], [])).toEqual(names);
    expect(pick(['app.1'], [])).toEqual(['app.1']);
    expect(pick(['app_*'], ['*_old'])).toEqual(['app_1']);
    expect(pick([], ['app*'])).toEqual(['APP_1', 'we"ird/db']);
    expect(pick(['we"ird/db', 'app'], ['app'])).toEqual(['we"ird/db']);
  });
});
