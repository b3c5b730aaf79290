import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { EMBEDDINGS_SQL, embeddingsCollector } from '../src/collectors/embeddings.js';
import { collectorContext, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';
import { seedDocuments, seedEmbeddings } from './helpers/seed.js';

const OPTIONS = { dimensions: 3072, models: ['text-embedding-3-large', 'text-embedding-3-small'] };

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
    const { rows } = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${EMBEDDINGS_SQL}`, [3072, OPTIONS.models]);
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
