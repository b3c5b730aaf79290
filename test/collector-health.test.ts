import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { HEALTH_SQL, HEALTH_STATUSES, healthCollector } from '../src/collectors/health.js';
import { collectorContext, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';
import { seedDocuments } from './helpers/seed.js';

const FAMILY = 'rag_health_check_status';

describe('health collector', () => {
  let client: pg.Client;
  useDatabaseClient((opened) => ({ client } = opened));

  it('publishes three series per component, exactly one of them 1', async () => {
    const collector = healthCollector();
    const samples = await collector.collect(collectorContext(client));
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    const components = (await client.query<{ component: string }>(HEALTH_SQL)).rows.map((r) => r.component);
    expect(components).toContain('vector_index');
    expect(samples).toHaveLength(components.length * HEALTH_STATUSES.length);
    for (const component of components) {
      const values = HEALTH_STATUSES.map((status) => valueOf(samples, FAMILY, { component, status }));
      expect(values.sort()).toEqual([0, 0, 1]);
    }
    expect(valueOf(samples, FAMILY, { component: 'vector_index', status: 'HEALTHY' })).toBe(1);
  });

  it('follows the database: a document without an embedding is a WARNING, a dropped vector index CRITICAL', async () => {
    await seedDocuments(client, { count: 20, prefix: 'health', withEmbeddings: true });
    await seedDocuments(client, { count: 1, prefix: 'unembedded' });
    await client.query('DROP INDEX idx_embeddings_vector');

    const samples = await healthCollector().collect(collectorContext(client));
    expect(valueOf(samples, FAMILY, { component: 'embedding_completeness', status: 'WARNING' })).toBe(1);
    expect(valueOf(samples, FAMILY, { component: 'embedding_completeness', status: 'HEALTHY' })).toBe(0);
    expect(valueOf(samples, FAMILY, { component: 'vector_index', status: 'CRITICAL' })).toBe(1);
    expect(valueOf(samples, FAMILY, { component: 'vector_index', status: 'HEALTHY' })).toBe(0);
  });

  it('an unknown or NULL status leaves all three series at 0, never HEALTHY', async () => {
    await client.query(`CREATE OR REPLACE FUNCTION system_health_check() RETURNS TABLE(component text, status text, details text)
      LANGUAGE sql AS $$ VALUES ('odd', 'UNKNOWN', NULL::text), ('blank', NULL, NULL) $$`);
    const samples = await healthCollector().collect(collectorContext(client));
    for (const component of ['odd', 'blank']) {
      expect(HEALTH_STATUSES.map((status) => valueOf(samples, FAMILY, { component, status }))).toEqual([0, 0, 0]);
    }
  });

  it('publishes nothing (never zeros) and reports the feature absent when the function is missing', async () => {
    await client.query('DROP FUNCTION system_health_check()');
    const reported: unknown[][] = [];
    const samples = await healthCollector().collect({ ...collectorContext(client), reportFeature: (...args) => reported.push(args) });
    expect(samples).toEqual([]);
    expect(reported).toEqual([['health_check', false, expect.stringMatching(/function system_health_check\(\) not found/)]]);
  });
});
