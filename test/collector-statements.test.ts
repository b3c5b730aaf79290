import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../src/collectors/collector.js';
import { isNormalizedStatement, QUERY_TEXT_MAX, statementsCollector } from '../src/collectors/statements.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { collectorContext, connect, samplesOf, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';

const VECTOR_SEARCH = readFileSync(new URL('../sql/queries/vector_search.sql', import.meta.url), 'utf8');
const queryVector = () => `[${Array.from({ length: 3072 }, () => Math.random().toFixed(4)).join(',')}]`;

/** The queryid whose info series' text mentions `needle`. */
function queryidOf(samples: Sample[], needle: string): string | undefined {
  return samplesOf(samples, 'pgvector_statements_query_info').find((s) => s.labels!.query!.includes(needle))?.labels!.queryid;
}

describe('statements collector', () => {
  let client: pg.Client;
  useDatabaseClient((opened) => ({ client } = opened));

  it('follows the calls of the shipped vector search, bounded to the top N', async () => {
    const collector = statementsCollector({ topN: 5, queryText: true });
    for (let i = 0; i < 3; i++) await client.query(VECTOR_SEARCH, [queryVector(), 5]);
    // A second vector statement, and one the exporter itself marks: only the first counts.
    await client.query("SELECT '[1,2,3]'::vector <-> '[3,2,1]'::vector AS d");
    await client.query("/* pgvector-exporter: recall */ SELECT '[1,2,3]'::vector <=> '[3,2,1]'::vector AS d");

    let samples = await collector.collect(collectorContext(client));
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    const queryid = queryidOf(samples, 'd.chunk_id');
    expect(queryid).toBeDefined();
    expect(valueOf(samples, 'pgvector_statements_calls_total', { queryid: queryid! })).toBe(3);
    expect(valueOf(samples, 'pgvector_statements_seconds_total', { queryid: queryid! })).toBeGreaterThan(0);
    expect(valueOf(samples, 'pgvector_statements_tracked')).toBe(2);
    expect(valueOf(samples, 'pgvector_statements_all_calls_total')).toBe(4);
    expect(samplesOf(samples, 'pgvector_statements_query_info').every((s) => s.labels!.query!.length <= QUERY_TEXT_MAX)).toBe(true);
    expect(samplesOf(samples, 'pgvector_statements_query_info').some((s) => s.labels!.query!.includes('pgvector-exporter'))).toBe(false);

    for (let i = 0; i < 2; i++) await client.query(VECTOR_SEARCH, [queryVector(), 5]);
    samples = await collector.collect(collectorContext(client));
    expect(valueOf(samples, 'pgvector_statements_calls_total', { queryid: queryid! })).toBe(5);
    const mean = valueOf(samples, 'pgvector_statements_mean_seconds', { queryid: queryid! });
    expect(mean).toBeCloseTo(valueOf(samples, 'pgvector_statements_seconds_total', { queryid: queryid! }) / 5, 9);

    // Top 1: one statement by label, the totals still cover both.
    samples = await statementsCollector({ topN: 1 }).collect(collectorContext(client));
    expect(samplesOf(samples, 'pgvector_statements_calls_total')).toHaveLength(1);
    expect(valueOf(samples, 'pgvector_statements_all_calls_total')).toBe(6);
  });

  it('publishes no statement text by default, and with query_text only what pg_stat_statements normalized', async () => {
    // PostgreSQL 15 keeps utility statements verbatim: their literals would reach the unauthenticated /metrics.
    const secrets = ['123-45-6789', '4111111111111111', 'sk-live-Secr3tKey'];
    await client.query(`EXPLAIN SELECT '${secrets[2]}' AS api_key, '[1,2,3]'::vector <=> '[3,2,1]'::vector AS d`);
    await client.query(`CREATE TEMP TABLE leak AS SELECT '${secrets[0]}' AS ssn, '[1,2,3]'::vector <-> '[3,2,1]'::vector AS d`);
    await client.query(`DO $$ BEGIN PERFORM '[1,2,3]'::vector <#> '[3,2,1]'::vector; RAISE NOTICE '${secrets[1]}'; END $$`);
    await client.query(VECTOR_SEARCH, [queryVector(), 5]);
    const leaked = (samples: Sample[]) => secrets.filter((s) => JSON.stringify(samples).includes(s));

    const byDefault = await statementsCollector({ topN: 50 }).collect(collectorContext(client));
    expect(samplesOf(byDefault, 'pgvector_statements_calls_total').length).toBeGreaterThanOrEqual(2);
    expect(samplesOf(byDefault, 'pgvector_statements_query_info')).toEqual([]);
    expect(leaked(byDefault)).toEqual([]);

    const optedIn = await statementsCollector({ topN: 50, queryText: true }).collect(collectorContext(client));
    expect(leaked(optedIn)).toEqual([]);
    const texts = samplesOf(optedIn, 'pgvector_statements_query_info').map((s) => s.labels!.query!);
    expect(texts.some((t) => t.includes('d.chunk_id'))).toBe(true);
    expect(texts.some((t) => /^(EXPLAIN|CREATE|DO)\b/i.test(t))).toBe(false);
  });

  it('tells normalized statements from verbatim ones', () => {
    expect(isNormalizedStatement('SELECT id FROM t ORDER BY e <-> $1 LIMIT $2')).toBe(true);
    expect(isNormalizedStatement('/* c */ WITH q AS (SELECT $1::vector v) SELECT t1.id FROM t1, q ORDER BY t1.e <=> q.v')).toBe(true);
    expect(isNormalizedStatement("SELECT 'secret', e <-> $1 FROM t")).toBe(false);
    expect(isNormalizedStatement('SELECT e <-> $1 FROM t LIMIT 10')).toBe(false);
    expect(isNormalizedStatement("EXPLAIN SELECT e <-> $1 FROM t")).toBe(false);
    expect(isNormalizedStatement('DO $body$ BEGIN PERFORM 1; END $body$')).toBe(false);
    expect(isNormalizedStatement('SELECT $x$4111111111111111$x$, e <-> $1 FROM t')).toBe(false);
  });

  it('reports the feature absent, not a failure, where the extension exists but the server does not preload it', async () => {
    const cluster = await LocalCluster.start({ preload: [] });
    const bare = await connect(cluster.url());
    try {
      await bare.query('CREATE EXTENSION pg_stat_statements');
      const reported: unknown[][] = [];
      const samples = await statementsCollector({ topN: 5 }).collect({ ...collectorContext(bare), reportFeature: (...args) => reported.push(args) });
      expect(samples).toEqual([]);
      expect(reported).toEqual([['pg_stat_statements', false, expect.stringMatching(/shared_preload_libraries/)]]);
    } finally {
      await bare.end();
      await cluster.remove();
    }
  });

  it('reports the feature absent, not a failure, where pg_stat_statements is not installed', async () => {
    const reported: unknown[][] = [];
    const before = await statementsCollector({ topN: 5 }).collect({ ...collectorContext(client), reportFeature: (...args) => reported.push(args) });
    expect(before.length).toBeGreaterThan(0);
    await client.query('DROP EXTENSION pg_stat_statements');
    expect(await statementsCollector({ topN: 5 }).collect({ ...collectorContext(client), reportFeature: (...args) => reported.push(args) })).toEqual([]);
    expect(reported).toEqual([
      ['pg_stat_statements', true],
      ['pg_stat_statements', false, expect.stringMatching(/not installed in this database/)],
    ]);
  });
});
