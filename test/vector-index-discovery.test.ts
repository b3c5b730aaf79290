import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { indexesCollector } from '../src/collectors/indexes.js';
import { recallCollector } from '../src/collectors/recall.js';
import { collectorContext, connect, flushStats, samplesOf, undeclaredSamples, valueOf } from './helpers/collector-context.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually } from './helpers/exporter.js';

/**
 * Every pgvector index of a database with schemas of its own is discovered, whatever the configured
 * schema and managed tables say: vector, halfvec, sparsevec and bit columns, an expression index, a
 * mixed-case schema, HNSW and IVFFlat, and an index while CREATE INDEX CONCURRENTLY builds it.
 */
describe('vector index discovery', () => {
  let db: TestDatabase;
  let client: pg.Client;
  // The configuration names the RAG schema only: discovery must not depend on it.
  const collector = indexesCollector({ schema: 'public', tables: ['chunk_embeddings'], expectedIndexes: [] });
  const collect = () => collector.collect(collectorContext(client));
  const at = (schemaname: string, indexrelname: string) => ({ schemaname, indexrelname });

  beforeAll(async () => {
    db = await createTestDatabase({ migrated: false });
    client = await connect(db.url);
    await client.query(`
      CREATE EXTENSION vector;
      CREATE SCHEMA catalog;
      CREATE SCHEMA "Media Library";
      CREATE TABLE catalog.products (id bigserial PRIMARY KEY, embedding vector(3), sparse sparsevec(5), code bit(8));
      INSERT INTO catalog.products (embedding, sparse, code)
        SELECT ARRAY[random(), random(), random()]::vector(3), '{1:0.5,4:1}/5'::sparsevec, B'10101010'
          FROM generate_series(1, 3000);
      CREATE INDEX products_embedding_hnsw ON catalog.products USING hnsw (embedding vector_cosine_ops) WITH (m = 8, ef_construction = 32);
      CREATE INDEX products_sparse_hnsw ON catalog.products USING hnsw (sparse sparsevec_l2_ops);
      CREATE INDEX products_code_hnsw ON catalog.products USING hnsw (code bit_hamming_ops);
      CREATE TABLE "Media Library"."Images" (id int PRIMARY KEY, features vector(4));
      INSERT INTO "Media Library"."Images" SELECT g, ARRAY[random(), random(), random(), random()]::vector(4) FROM generate_series(1, 5000) g;
      CREATE INDEX "Images_half_ivf" ON "Media Library"."Images" USING ivfflat ((features::halfvec(4)) halfvec_l2_ops) WITH (lists = 2);
      CREATE INDEX images_id ON "Media Library"."Images" (id);`);
    await flushStats(client);
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('reports each pgvector index in every schema with its labels, and nothing for other indexes', async () => {
    const samples = await collect();
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    const info = samplesOf(samples, 'pgvector_index_info').map((s) => s.labels);
    expect(info).toHaveLength(4);
    expect(info).toContainEqual({
      schemaname: 'catalog', relname: 'products', indexrelname: 'products_embedding_hnsw', column: 'embedding', type: 'vector',
      method: 'hnsw', opclass: 'vector_cosine_ops', dimensions: '3', m: '8', ef_construction: '32', lists: '',
    });
    expect(info).toContainEqual(expect.objectContaining({ indexrelname: 'products_sparse_hnsw', column: 'sparse', type: 'sparsevec', opclass: 'sparsevec_l2_ops', m: '16', ef_construction: '64' }));
    expect(info).toContainEqual(expect.objectContaining({ indexrelname: 'products_code_hnsw', column: 'code', type: 'bit', opclass: 'bit_hamming_ops', dimensions: '8' }));
    expect(info).toContainEqual({
      schemaname: 'Media Library', relname: 'Images', indexrelname: 'Images_half_ivf', column: '(features::halfvec(4))', type: 'halfvec',
      method: 'ivfflat', opclass: 'halfvec_l2_ops', dimensions: '4', m: '', ef_construction: '', lists: '2',
    });
    expect(samplesOf(samples, 'pgvector_index_info', { indexrelname: 'images_id' })).toHaveLength(0);

    const { rows } = await client.query<{ size: number; sb: number }>(
      `SELECT pg_relation_size('"Media Library"."Images_half_ivf"')::float8 AS size, pg_size_bytes(current_setting('shared_buffers'))::float8 AS sb`,
    );
    const ivf = at('Media Library', 'Images_half_ivf');
    expect(valueOf(samples, 'pgvector_index_size_bytes', ivf)).toBe(rows[0]!.size);
    expect(valueOf(samples, 'pgvector_index_shared_buffers_ratio', ivf)).toBeCloseTo(rows[0]!.size / rows[0]!.sb, 12);
    expect(valueOf(samples, 'pgvector_index_valid', ivf)).toBe(1);
    expect(valueOf(samples, 'pgvector_ivfflat_rows_per_list', ivf)).toBe(5000 / 2);
    expect(valueOf(samples, 'pgvector_ivfflat_recommended_lists', ivf)).toBe(5);
    expect(samplesOf(samples, 'pgvector_ivfflat_rows_per_list', at('catalog', 'products_embedding_hnsw'))).toHaveLength(0);
  });

  it("follows the table's dead tuples (HNSW needs VACUUM)", async () => {
    await client.query('DELETE FROM catalog.products WHERE id <= 100');
    await flushStats(client);
    const samples = await collect();
    expect(valueOf(samples, 'pgvector_index_table_dead_tuples', at('catalog', 'products_embedding_hnsw'))).toBe(100);
  });

  it('measures recall of the discovered indexes a pattern names, each on its own column or expression, with its own k, sample and probes', async () => {
    const recall = (probes: number) =>
      recallCollector({
        sampleSize: 20,
        topK: 10,
        efSearch: 0,
        dimensions: 3072,
        indexes: [
          { pattern: 'catalog.products_embedding_*', topK: 5, sampleSize: 5, efSearch: 0, probes: 0 },
          { pattern: 'Media Library.*', topK: 3, sampleSize: 4, efSearch: 0, probes },
        ],
      });
    const samples = await recall(2).collect(collectorContext(client));
    expect(undeclaredSamples(recall(2).families, samples)).toEqual([]);
    expect(samplesOf(samples, 'pgvector_index_recall_ratio').map((s) => s.labels!.indexrelname).sort()).toEqual(['Images_half_ivf', 'products_embedding_hnsw']);
    const hnsw = valueOf(samples, 'pgvector_index_recall_ratio', { indexrelname: 'products_embedding_hnsw' });
    expect(hnsw).toBeGreaterThan(0);
    expect(hnsw).toBeLessThanOrEqual(1);
    expect(valueOf(samples, 'pgvector_index_recall_queries', { indexrelname: 'products_embedding_hnsw' })).toBe(5);
    expect(valueOf(samples, 'pgvector_index_recall_k', { indexrelname: 'products_embedding_hnsw' })).toBe(5);
    // The second entry's own k and sample size, not the first's nor the defaults.
    expect(valueOf(samples, 'pgvector_index_recall_k', { indexrelname: 'Images_half_ivf' })).toBe(3);
    expect(valueOf(samples, 'pgvector_index_recall_queries', { indexrelname: 'Images_half_ivf' })).toBe(4);
    // With as many probes as lists IVFFlat searches every list: its top k is the exact one.
    expect(valueOf(samples, 'pgvector_index_recall_ratio', { indexrelname: 'Images_half_ivf' })).toBe(1);
    const nowhere = { pattern: 'nowhere.*', topK: 5, sampleSize: 5, efSearch: 0, probes: 0 };
    await expect(recallCollector({ sampleSize: 5, topK: 5, efSearch: 0, dimensions: 3072, indexes: [nowhere] }).collect(collectorContext(client))).rejects.toThrow(
      /no valid pgvector index matches nowhere\.\*/,
    );
  });

  it('reports an index while CREATE INDEX CONCURRENTLY builds it (invalid, with its phase), then valid', async () => {
    // A writer's open transaction makes the build wait in its first phase, with the index already in the catalog.
    const writer = await connect(db.url, 'writer');
    const builder = await connect(db.url, 'builder');
    try {
      await writer.query('BEGIN');
      await writer.query("INSERT INTO catalog.products (embedding) VALUES ('[1,2,3]')");
      const build = builder.query('CREATE INDEX CONCURRENTLY products_embedding_l2 ON catalog.products USING hnsw (embedding vector_l2_ops)');
      const building = await eventually(async () => {
        const samples = await collect();
        return samplesOf(samples, 'pgvector_index_build_progress_ratio', at('catalog', 'products_embedding_l2')).length > 0 ? samples : undefined;
      }, 'the concurrent build to be reported');
      expect(valueOf(building, 'pgvector_index_valid', at('catalog', 'products_embedding_l2'))).toBe(0);
      const [progress] = samplesOf(building, 'pgvector_index_build_progress_ratio', at('catalog', 'products_embedding_l2'));
      expect(progress!.labels!.phase).toMatch(/waiting for writers/);
      expect(valueOf(building, 'pg_index_build_in_progress', { relname: 'products', phase: progress!.labels!.phase! })).toBe(1);
      await writer.query('COMMIT');
      await build;
      const done = await collect();
      expect(valueOf(done, 'pgvector_index_valid', at('catalog', 'products_embedding_l2'))).toBe(1);
      expect(samplesOf(done, 'pgvector_index_build_progress_ratio')).toHaveLength(0);
    } finally {
      await writer.end();
      await builder.end();
    }
  });
});
