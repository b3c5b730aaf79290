import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { customCollector } from '../src/custom/collector.js';
import { parseCollectorFile } from '../src/custom/collector-file.js';
import type { CustomCollectorDefinition } from '../src/custom/definition.js';
import { loadCustomCollectors } from '../src/custom/load.js';
import { YamlFile } from '../src/custom/yaml-file.js';
import { createLogger } from '../src/log.js';
import { registerSelfMetrics } from '../src/metrics/self-metrics.js';
import { Poller } from '../src/poller/poller.js';
import { runCli } from './helpers/cli.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';
import { promQuery, startPrometheus, tempDir, type ManagedProcess } from './helpers/monitoring-stack.js';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';
import { seedDocuments, seedEmbeddings, seedMetadata } from './helpers/seed.js';

/** The RAG example of docs/custom-collectors.md, so the documented file is the tested one. */
function documentedExample(): string {
  const doc = readFileSync(new URL('../docs/custom-collectors.md', import.meta.url), 'utf8');
  return /```yaml\n(# rag-collectors\.yaml[\s\S]*?)```/.exec(doc)![1]!;
}

function parse(yaml: string, path = 'collectors.yaml'): CustomCollectorDefinition[] {
  return parseCollectorFile(new YamlFile(path, yaml));
}

const none = { families: new Map<string, string>(), collectors: new Set<string>() };

describe('custom collector files: validated at start', () => {
  const bad: [string, string, RegExp][] = [
    ['an unknown key', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    intervall: 5m\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:4: collectors\[a\]\.intervall: unknown key/],
    ['an unknown metric key', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    metrics:\n      - name: a_v\n        type: gauge\n        column: v\n        help: h\n        unit: seconds\n', /^x\.yaml:9: collectors\[a\]\.metrics\[0\]\.unit: unknown key/],
    ['a metric column declared twice', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n      - { name: a_w, type: gauge, column: v, help: h }\n', /^x\.yaml:6: collectors\[a\]\.metrics\[1\]\.column: column "v" is already declared \(by a_v\)/],
    ['a label that is also a metric column', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    labels: [v]\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:6: .*column "v" is already declared \(as a label\)/],
    ['an invalid metric name', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    metrics:\n      - { name: a-v, type: gauge, column: v, help: h }\n', /^x\.yaml:5: collectors\[a\]\.metrics\[0\]\.name: "a-v" is not a valid Prometheus metric name/],
    ['an invalid label name', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    labels: [__x]\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:4: collectors\[a\]\.labels\[0\]: "__x" is not a valid Prometheus label name/],
    ['a counter without _total', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    metrics:\n      - { name: a_v, type: counter, column: v, help: h }\n', /_total/],
    ['an interval without a unit (30d where seconds were meant is fine, 30 is not)', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    interval: 30\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:4: collectors\[a\]\.interval: "30" has no unit/],
    ['a bad server version', 'collectors:\n  - name: a\n    query: SELECT 1 AS v\n    min_server_version: fifteen\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:4: .*min_server_version: "fifteen" is not a PostgreSQL version/],
    ['a missing query', 'collectors:\n  - name: a\n    metrics:\n      - { name: a_v, type: gauge, column: v, help: h }\n', /^x\.yaml:2: collectors\[a\]\.query: missing/],
  ];
  it.each(bad)('rejects %s with file:line:key', (_what, yaml, message) => {
    expect(() => parse(yaml, 'x.yaml')).toThrowError(message);
  });

  it('rejects a family a built-in collector already publishes, and a family declared in two files', () => {
    const owned = { families: new Map([['rag_documents', 'the built-in collector "embeddings"']]), collectors: new Set(['embeddings']) };
    const a = writeConfig('collectors:\n  - name: mine\n    query: SELECT 1 AS v\n    metrics:\n      - { name: rag_documents, type: gauge, column: v, help: h }\n', 'a.yaml');
    expect(() => loadCustomCollectors({ files: [a] }, owned)).toThrowError(new RegExp(`^${a}:5: rag_documents: "rag_documents" is already published by the built-in collector "embeddings"`));
    const b = writeConfig('collectors:\n  - name: one\n    query: SELECT 1 AS v\n    metrics:\n      - { name: mine_v, type: gauge, column: v, help: h }\n', 'b.yaml');
    const c = writeConfig('collectors:\n  - name: two\n    query: SELECT 1 AS v\n    metrics:\n      - { name: mine_v, type: gauge, column: v, help: h }\n', 'c.yaml');
    expect(() => loadCustomCollectors({ files: [b, c] }, none)).toThrowError(new RegExp(`^${c}:5: mine_v: .*declared at ${b}:5`));
    expect(() => loadCustomCollectors({ files: [b] }, { families: new Map(), collectors: new Set(['one']) })).toThrowError(/built-in collector/);
  });

  it('serve exits 2 with one line naming file:line:key, no stack trace, before anything starts', async () => {
    const file = writeConfig('collectors:\n  - name: a\n    query: SELECT 1 AS v\n    metrics:\n      - { name: pg_up, type: gauge, column: v, help: h }\n', 'custom.yaml');
    const result = await runCli(['serve', '--no-jobs', '--database-url', 'postgresql://nobody:s3cret@127.0.0.1:1/none', '--web.listen-address', '127.0.0.1:0', '--custom-collectors.files', file]);
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`${file}:5: pg_up: "pg_up" is already published by the built-in collector "connectivity"`));
    expect(result.stderr).not.toMatch(/s3cret|\n\s+at /);
  });

  it('reads the documented RAG example', () => {
    const definitions = parse(documentedExample());
    expect(definitions.map((d) => d.name)).toEqual(['rag_sources', 'rag_frameworks', 'rag_documents_inserted', 'rag_search_rows', 'rag_embedding_models']);
    expect(definitions[1]!.seriesLimit).toBe(2000);
    expect(definitions[4]).toMatchObject({ minServerVersionNum: 130000, onError: 'skip' });
  });
});

describe('custom collectors on the RAG schema (real PostgreSQL)', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 3, application_name: 'pgvector-exporter' });
    const ids = [...(await seedDocuments(db.pool, { count: 7, prefix: 'alpha' })), ...(await seedDocuments(db.pool, { count: 5, prefix: 'beta' }))];
    await seedEmbeddings(db.pool, ids.slice(0, 5));
    await seedMetadata(db.pool, ids);
    await db.pool.query(`INSERT INTO query_performance_log (query_type, duration_ms, rows_returned)
      SELECT 'vector_search', 10, n FROM generate_series(0, 19) AS n`);
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  function poller(definitions: CustomCollectorDefinition[], log = createLogger('silent'), seriesLimit = 10_000) {
    const registry = new Registry();
    const p = new Poller({
      collectors: definitions.map(customCollector),
      schedule: () => ({ intervalMs: 60_000, timeoutMs: 5000, seriesLimit }),
      pool,
      log,
      observer: registerSelfMetrics(registry),
      maxBackoffMs: 1000,
    });
    return { poller: p, self: () => registry.metrics() };
  }

  it('publishes the documented example: gauges, counter, histogram from bucket arrays, info', async () => {
    const { poller: p, self } = poller(parse(documentedExample()));
    await p.pollAll();
    const text = p.render();
    const perSource = await db.pool.query<{ source_file: string; n: number }>('SELECT source_file, count(*)::int AS n FROM framework_documents GROUP BY 1');
    for (const row of perSource.rows) expect(sampleValue(text, 'rag_source_documents', { source_file: row.source_file })).toBe(row.n);
    expect(text).toMatch(/# TYPE rag_framework_chunks gauge/);
    expect(text).toMatch(/# TYPE rag_documents_inserted_total counter/);
    expect(text).toMatch(/# TYPE rag_search_rows_returned_last_hour histogram/);
    expect(sampleValue(text, 'rag_search_rows_returned_last_hour_bucket', { query_type: 'vector_search', le: '5' })).toBe(6);
    expect(sampleValue(text, 'rag_search_rows_returned_last_hour_bucket', { query_type: 'vector_search', le: '+Inf' })).toBe(20);
    expect(sampleValue(text, 'rag_search_rows_returned_last_hour_sum', { query_type: 'vector_search' })).toBe(190);
    expect(sampleValue(text, 'rag_embedding_model_info', { model_name: 'text-embedding-3-large' })).toBe(1);
    for (const name of ['rag_sources', 'rag_frameworks', 'rag_documents_inserted', 'rag_search_rows', 'rag_embedding_models']) {
      expect(sampleValue(await self(), 'pgvector_exporter_collector_success', { collector: name })).toBe(1);
    }
  });

  it('a result that does not match its declared columns fails only that poll, naming the column', async () => {
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (chunk, _e, done) => void (lines.push(String(chunk)), done()) }));
    const [missing, extra, text] = [
      parse('collectors:\n  - name: missing\n    query: SELECT 1 AS v\n    labels: [kind]\n    metrics:\n      - { name: missing_v, type: gauge, column: v, help: h }\n')[0]!,
      parse('collectors:\n  - name: extra\n    query: SELECT 1 AS v, 2 AS w\n    metrics:\n      - { name: extra_v, type: gauge, column: v, help: h }\n')[0]!,
      parse("collectors:\n  - name: wordy\n    query: SELECT 'many' AS v\n    metrics:\n      - { name: wordy_v, type: gauge, column: v, help: h }\n")[0]!,
    ];
    const fine = parse('collectors:\n  - name: fine\n    query: SELECT 7 AS v, NULL::int AS n\n    metrics:\n      - { name: fine_v, type: gauge, column: v, help: h }\n      - { name: fine_n, type: gauge, column: n, help: h }\n')[0]!;
    const { poller: p, self } = poller([missing, extra, text, fine], log);
    await p.pollAll();
    expect(sampleValue(p.render(), 'fine_v')).toBe(7);
    expect(p.render()).not.toMatch(/fine_n|missing_v|extra_v|wordy_v/);
    const metrics = await self();
    for (const name of ['missing', 'extra', 'wordy']) expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: name })).toBe(0);
    const failures = lines.map((l) => JSON.parse(l) as { collector?: string; error?: string }).filter((l) => l.error);
    expect(failures.find((l) => l.collector === 'missing')!.error).toMatch(/column "kind" \(label of missing\) is not in the result/);
    expect(failures.find((l) => l.collector === 'extra')!.error).toMatch(/column "w" of the result is not declared/);
    expect(failures.find((l) => l.collector === 'wordy')!.error).toMatch(/column "v" holds a value that is not a number \(row 1\)/);
    expect(lines.join('')).not.toMatch(/many/);
  });

  it('min/max server version: outside the range publishes nothing and is not a failure', async () => {
    const old = parse('collectors:\n  - name: old\n    query: SELECT 1 AS v\n    max_server_version: "9.6"\n    metrics:\n      - { name: old_v, type: gauge, column: v, help: h }\n')[0]!;
    const current = parse('collectors:\n  - name: current\n    query: SELECT 1 AS v\n    min_server_version: "10"\n    metrics:\n      - { name: current_v, type: gauge, column: v, help: h }\n')[0]!;
    const { poller: p, self } = poller([old, current]);
    await p.pollAll();
    expect(p.render()).not.toMatch(/old_v/);
    expect(sampleValue(p.render(), 'current_v')).toBe(1);
    expect(sampleValue(await self(), 'pgvector_exporter_collector_success', { collector: 'old' })).toBe(1);
  });

  it('on_error: skip logs the failure and is not a collector failure; fail is', async () => {
    const yaml = (name: string, onError: string) => `collectors:\n  - name: ${name}\n    query: SELECT count(*) AS v FROM no_such_table\n    on_error: ${onError}\n    metrics:\n      - { name: ${name}_v, type: gauge, column: v, help: h }\n`;
    const { poller: p, self } = poller([parse(yaml('skipped', 'skip'))[0]!, parse(yaml('failing', 'fail'))[0]!]);
    await p.pollAll();
    const metrics = await self();
    expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: 'skipped' })).toBe(1);
    expect(sampleValue(metrics, 'pgvector_exporter_collector_success', { collector: 'failing' })).toBe(0);
  });

  it('a query returning 20,000 distinct label sets trips the series limit: one clear log line, nothing published', async () => {
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (chunk, _e, done) => void (lines.push(String(chunk)), done()) }));
    const wide = parse("collectors:\n  - name: wide\n    query: SELECT 'q' || n AS query_hash, n AS calls FROM generate_series(1, 20000) AS n\n    labels: [query_hash]\n    metrics:\n      - { name: wide_calls, type: gauge, column: calls, help: h }\n")[0]!;
    const narrow = parse('collectors:\n  - name: narrow\n    query: SELECT 3 AS v\n    metrics:\n      - { name: narrow_v, type: gauge, column: v, help: h }\n')[0]!;
    const { poller: p, self } = poller([wide, narrow], log, 10_000);
    await p.pollAll();
    expect(p.render()).not.toMatch(/wide_calls/);
    expect(sampleValue(p.render(), 'narrow_v')).toBe(3);
    expect(sampleValue(await self(), 'pgvector_exporter_collector_success', { collector: 'wide' })).toBe(0);
    const about = lines.filter((l) => l.includes('"collector":"wide"'));
    expect(about).toHaveLength(1);
    expect(JSON.parse(about[0]!)).toMatchObject({
      level: 'warn',
      error: "the poll returned 20000 series, above the collector's series limit of 10000: nothing published (raise series_limit or aggregate in SQL)",
    });
  });
});

describe('series limit seen from a real Prometheus', () => {
  const db = useTestDatabase();
  let exporter: ServeProcess | undefined;
  let prometheus: ManagedProcess | undefined;
  const dir = tempDir('pgve-guard-');
  afterAll(async () => {
    await prometheus?.stop();
    await exporter?.stop();
    dir.remove();
  });

  it('a query returning 20,000 distinct label sets: nothing of it reaches Prometheus, the rest does, one log line', async () => {
    const file = writeConfig(
      "collectors:\n  - name: wide\n    query: SELECT 'q' || n AS query_hash, n AS calls FROM generate_series(1, 20000) AS n\n    interval: 1h\n    labels: [query_hash]\n    metrics:\n      - { name: wide_calls, type: gauge, column: calls, help: h }\n" +
        '  - name: narrow\n    query: SELECT 3 AS v\n    interval: 1s\n    metrics:\n      - { name: narrow_v, type: gauge, column: v, help: h }\n',
      'guard.yaml',
    );
    const config = writeConfig(`jobs: { enabled: false }\ncustom_collectors: { files: [${file}] }\n`);
    exporter = await startServe(['--config', config, '--database-url', db.url]);
    const target = new URL(exporter.url).host;
    prometheus = await startPrometheus(dir.path, { jobs: [{ job: 'pgvector-exporter', targets: [target] }], alertmanager: '127.0.0.1:9', ruleFiles: [] });
    const url = prometheus.url;
    await eventually(async () => (await promQuery(url, 'narrow_v'))[0]?.value[1] === '3', 'narrow_v in Prometheus', 30_000);
    await eventually(async () => (await promQuery(url, 'pgvector_exporter_collector_success{collector="wide"}'))[0]?.value[1] === '0', 'the wide collector reported failed', 30_000);
    expect(await promQuery(url, 'count({__name__="wide_calls"})')).toEqual([]);
    const scraped = Number((await promQuery(url, 'max_over_time(scrape_samples_scraped[1m])'))[0]!.value[1]);
    expect(scraped).toBeLessThan(5000);
    const lines = exporter.logs().split('\n').filter((l) => l.includes('"collector":"wide"'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("the poll returned 20000 series, above the collector's series limit of 10000: nothing published");
  });
});
