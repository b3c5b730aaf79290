import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { EMBEDDINGS_SINCE_SQL, EMBEDDINGS_SQL, EXACT_COUNT_SETTINGS, embeddingsCollector } from '../src/collectors/embeddings.js';
import { collectorContext, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';
import { seedDocuments, seedEmbeddings } from './helpers/seed.js';

const OPTIONS = { dimensions: 3072, models: ['text-embedding-3-large', 'text-embedding-3-small'], exactIntervalMs: 3_600_000 };

describe('embeddings collector', () => {
  let client: pg.Client;
  useDatabaseClient((opened) => ({ client } = opened));

  it('reports zeros on an empty corpus, with every configured model present', async () => {
    const collector = embeddingsCollector(OPTIONS);
    const samples = await collector.collect(collectorContext(client));
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    expect(valueOf(samples, 'rag_documents')).toBe(0);
    expect(valueOf(samples, 'rag_documents_missing_embedding')).toBe(0);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-large' })).toBe(0);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-small' })).toBe(0);
  });

  it('follows documents, embeddings per model and missing embeddings', async () => {
    await seedDocuments(client, { count: 12, prefix: 'large', withEmbeddings: true });
    await seedEmbeddings(client, await seedDocuments(client, { count: 3, prefix: 'small' }), 'text-embedding-3-small');
    await seedDocuments(client, { count: 2, prefix: 'none' });

    const samples = await embeddingsCollector(OPTIONS).collect(collectorContext(client));
    expect(valueOf(samples, 'rag_documents')).toBe(17);
    expect(valueOf(samples, 'rag_documents_missing_embedding')).toBe(2);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-large' })).toBe(12);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-small' })).toBe(3);
    expect(valueOf(samples, 'rag_embeddings_wrong_dimension')).toBe(0);
    expect(valueOf(samples, 'rag_embeddings_unknown_model')).toBe(0);
    // The cheap pre-filter of the dimension scan: a stored 3,072-dim vector has exactly this size.
    const sized = await client.query('SELECT count(*)::int AS n FROM chunk_embeddings WHERE pg_column_size(embedding) = 4 + 4 * 3072');
    expect(sized.rows[0].n).toBe(15);
    expect(sized.rows[0].n).toBe(15);
  });

  it('skips the dimension scan while vector(3072) enforces it', async () => {
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${EMBEDDINGS_SQL}`, [3072, OPTIONS.models, 10]);
    const plan = JSON.stringify(rows[0]);
    // The dimension sub-select is in the plan but never executed ("never executed" = 0 loops).
    expect(plan).toMatch(/vector_dims/);
    const dimsNode = findNode(rows[0]['QUERY PLAN'][0].Plan, (n) => JSON.stringify(n.Filter ?? '').includes('vector_dims'));
    expect(dimsNode?.['Actual Loops']).toBe(0);
  });

  it('finds embeddings of the wrong dimension and of unknown models once the schema no longer prevents them', async () => {
    await client.query(`
      DROP INDEX idx_embeddings_vector;
      ALTER TABLE chunk_embeddings DROP CONSTRAINT chk_embeddings_dimensions, DROP CONSTRAINT chk_embeddings_model_name;
      ALTER TABLE chunk_embeddings ALTER COLUMN embedding TYPE vector;`);
    const { rows } = await client.query<{ id: string }>("SELECT id FROM framework_documents WHERE chunk_id = 'none-000001'");
    await client.query("INSERT INTO chunk_embeddings (document_id, embedding, model_name) VALUES ($1, '[1,2,3]', 'ada-002')", [rows[0]!.id]);
    await client.query("INSERT INTO chunk_embeddings (document_id, embedding, model_name) VALUES ($1, '[1,2,3,4]', 'text-embedding-3-small')", [rows[0]!.id]);

    const samples = await embeddingsCollector(OPTIONS).collect(collectorContext(client));
    expect(valueOf(samples, 'rag_embeddings_wrong_dimension')).toBe(2);
    expect(valueOf(samples, 'rag_embeddings_unknown_model')).toBe(1);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'other' })).toBe(1);
    expect(valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-small' })).toBe(4);
    expect(valueOf(samples, 'rag_documents_missing_embedding')).toBe(1);
  });

  it('between exact counts follows what changed: new documents and embeddings, backfilled and new missing ones', async () => {
    const collector = embeddingsCollector(OPTIONS);
    const ctx = collectorContext(client);
    const at = async () => {
      const samples = await collector.collect(ctx);
      return {
        documents: valueOf(samples, 'rag_documents')!,
        missing: valueOf(samples, 'rag_documents_missing_embedding')!,
        large: valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-large' })!,
        small: valueOf(samples, 'rag_embeddings', { model_name: 'text-embedding-3-small' })!,
        exact: collector.lastPollExact,
      };
    };
    const base = await at(); // the first poll counts exactly (this database holds the previous test's rows)
    expect(base.exact).toBe(true);
    const { rows: missingRows } = await client.query<{ id: string }>(
      'SELECT id FROM framework_documents d WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id) ORDER BY id',
    );
    expect(missingRows.length).toBe(base.missing);
    expect(base.missing).toBeGreaterThan(0);

    await seedDocuments(client, { count: 4, prefix: 'later', withEmbeddings: true });
    await seedEmbeddings(client, await seedDocuments(client, { count: 2, prefix: 'later-small' }), 'text-embedding-3-small');
    await seedDocuments(client, { count: 3, prefix: 'later-none' });
    // one of the documents missing at the exact count gets its embedding
    await seedEmbeddings(client, [missingRows[0]!.id], 'text-embedding-3-large');

    const after = await at();
    expect(after.exact).toBe(false);
    expect(after).toEqual({
      documents: base.documents + 9,
      missing: base.missing - 1 + 3,
      large: base.large + 4 + 1,
      small: base.small + 2,
      exact: false,
    });
    // and the next exact count agrees
    const exact = await embeddingsCollector(OPTIONS).collect(ctx);
    expect(valueOf(exact, 'rag_documents')).toBe(after.documents);
    expect(valueOf(exact, 'rag_documents_missing_embedding')).toBe(after.missing);
    expect(valueOf(exact, 'rag_embeddings', { model_name: 'text-embedding-3-large' })).toBe(after.large);
  });

  it('counts between exact counts with index range scans on created_at and index probes only', async () => {
    await client.query('SET enable_seqscan = off'); // as on a large corpus, where a range of new rows is a small share
    try {
      const { rows } = await client.query(`EXPLAIN (FORMAT JSON) ${EMBEDDINGS_SINCE_SQL}`, [3072, OPTIONS.models, new Date(), ['00000000-0000-0000-0000-000000000000']]);
      const plan = JSON.stringify(rows[0]);
      expect(plan).not.toMatch(/"Seq Scan"/);
      expect(plan).toMatch(/idx_documents_created_at/);
      expect(plan).toMatch(/idx_embeddings_created_at/);
    } finally {
      await client.query('RESET enable_seqscan');
    }
  });

  it('counts exactly without parallel workers, and leaves the session as it found it', async () => {
    // Parallel plans made as cheap as they get: without the collector's settings the planner takes one.
    await client.query('SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0; SET min_parallel_index_scan_size = 0');
    try {
      await seedDocuments(client, { count: 30, withEmbeddings: true });
      const params = [3072, OPTIONS.models, 1000];
      const plan = async () => JSON.stringify((await client.query(`EXPLAIN (FORMAT JSON) ${EMBEDDINGS_SQL}`, params)).rows[0]);
      expect(await plan()).toMatch(/"Gather/);
      await client.query('BEGIN');
      for (const [name, value] of Object.entries(EXACT_COUNT_SETTINGS)) await client.query('SELECT set_config($1, $2, true)', [name, value]);
      expect(await plan()).not.toMatch(/"Gather/);
      await client.query('ROLLBACK');

      const collector = embeddingsCollector(OPTIONS);
      const samples = await collector.collect(collectorContext(client));
      expect(collector.lastPollExact).toBe(true);
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM framework_documents');
      expect(valueOf(samples, 'rag_documents')).toBe(rows[0]!.n);
      expect((await client.query('SHOW max_parallel_workers_per_gather')).rows[0].max_parallel_workers_per_gather).toBe('2');
      await expect(client.query('SAVEPOINT inside')).rejects.toThrow(/only be used in transaction blocks/); // no transaction left open
    } finally {
      await client.query('RESET parallel_setup_cost; RESET parallel_tuple_cost; RESET min_parallel_table_scan_size; RESET min_parallel_index_scan_size');
    }
  });
});

interface PlanNode {
  Filter?: string;
  'Actual Loops'?: number;
  Plans?: PlanNode[];
}

function findNode(node: PlanNode, match: (n: PlanNode) => boolean): PlanNode | undefined {
  if (match(node)) return node;
  for (const child of node.Plans ?? []) {
    const found = findNode(child, match);
    if (found) return found;
  }
  return undefined;
}
