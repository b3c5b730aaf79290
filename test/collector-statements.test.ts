import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { NoDataError, type Sample } from '../src/collectors/collector.js';
import { QUERY_TEXT_MAX, statementsCollector } from '../src/collectors/statements.js';
import { LocalCluster } from '../src/db/local-cluster.js';
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
    const collector = statementsCollector({ topN: 5 });
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

  it('reports "no data" where the extension exists but the server does not preload it', async () => {
    const cluster = await LocalCluster.start({ preload: [] });
    const bare = await connect(cluster.url());
    try {
      await bare.query('CREATE EXTENSION pg_stat_statements');
      const error = await statementsCollector({ topN: 5 }).collect(collectorContext(bare)).catch((err: Error) => err);
      expect(error).toBeInstanceOf(NoDataError);
      expect((error as Error).message).toMatch(/shared_preload_libraries/);
    } finally {
      await bare.end();
      await cluster.remove();
    }
  });

  it('reports "no data", not a failure, where pg_stat_statements is not installed', async () => {
    await client.query('DROP EXTENSION pg_stat_statements');
    await expect(statementsCollector({ topN: 5 }).collect(collectorContext(client))).rejects.toBeInstanceOf(NoDataError);
  });
});
