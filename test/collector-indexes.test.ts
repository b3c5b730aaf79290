import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  INDEXES_SQL,
  VECTOR_INDEX_STATS_SQL,
  indexSamples,
  indexesCollector,
  vectorIndexSamples,
  type IndexRow,
  type IndexesOptions,
  type VectorIndexStatsRow,
} from '../src/collectors/indexes.js';
import { recommendedLists } from '../src/pgvector/vector-index.js';
import { DEFAULT_MANAGED_TABLES } from '../src/config/schema.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { connect, exporterLogin, flushStats, recordingContext, samplesOf, valueOf } from './helpers/collector-context.js';

describe('indexes collector', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const options: IndexesOptions = {
    schema: 'public',
    tables: [...DEFAULT_MANAGED_TABLES, 'items'],
    expectedIndexes: ['idx_embeddings_vector', 'idx_documents_section'],
  };
  /** The statements of the last collect(). */
  let statements: string[] = [];
  const collect = async (c: pg.Client = client) => {
    statements = [];
    return indexesCollector(options).collect(recordingContext(c, statements));
  };
  const idx = (indexrelname: string) => ({ indexrelname });

  /** n documents, each with one random 3072-dimension embedding. */
  async function insertEmbeddings(n: number, prefix: string): Promise<void> {
    await client.query(
      `WITH docs AS (
         INSERT INTO framework_documents (chunk_id, source_file, section, title, content)
         SELECT $1 || g, 'doc.md', 'intro', 'title ' || g, 'content ' || g FROM generate_series(1, $2::int) g
         RETURNING id)
       INSERT INTO chunk_embeddings (document_id, embedding)
       SELECT docs.id, e.embedding
         FROM docs, LATERAL (SELECT array_agg(random())::vector AS embedding FROM generate_series(1, 3072) WHERE docs.id IS NOT NULL) e`,
      [prefix, n],
    );
  }

  beforeAll(async () => {
    db = await createTestDatabase();
    client = await connect(db.url);
    // A small IVFFlat case beside the HNSW expression index of the schema.
    await client.query('CREATE TABLE items (id int PRIMARY KEY, v vector(3))');
    await client.query('INSERT INTO items SELECT g, ARRAY[random(), random(), random()]::vector FROM generate_series(1, 2000) g');
    await client.query('CREATE INDEX items_v_ivfflat ON items USING ivfflat (v vector_l2_ops) WITH (lists = 4)');
    await client.query('CREATE INDEX items_v_default ON items USING ivfflat ((v::halfvec(3)) halfvec_cosine_ops)');
    await flushStats(client);
  });
  afterAll(async () => {
    await client.end();
    await db.drop();
  });

  it('reports every index of the managed tables, valid and ready, with size and scans', async () => {
    const samples = await collect();
    // pg_stat_user_indexes leaves out partitioned indexes (the query log's, partitioned by day): pg_index has them.
    const { rows } = await client.query<{ indexrelname: string }>(
      `SELECT i.relname AS indexrelname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
        WHERE t.relname = ANY($1) AND t.relnamespace = 'public'::regnamespace`,
      [options.tables],
    );
    const names = samplesOf(samples, 'pg_index_valid').map((s) => s.labels!.indexrelname!);
    expect(names.sort()).toEqual(rows.map((r) => r.indexrelname).sort());
    for (const name of names) {
      expect(valueOf(samples, 'pg_index_valid', idx(name))).toBe(1);
      expect(valueOf(samples, 'pg_index_ready', idx(name))).toBe(1);
      expect(valueOf(samples, 'pg_index_size_bytes', idx(name))).toBeGreaterThan(0);
    }
    expect(valueOf(samples, 'pg_index_expected_present', idx('idx_embeddings_vector'))).toBe(1);
    expect(valueOf(samples, 'pg_index_expected_present', idx('idx_documents_section'))).toBe(1);
  });

  it('describes the HNSW expression index: method, opclass, dimensions from halfvec(3072), build parameters', async () => {
    const samples = await collect();
    const [info] = samplesOf(samples, 'pgvector_index_info', idx('idx_embeddings_vector'));
    expect(info?.labels).toEqual({
      schemaname: 'public',
      indexrelname: 'idx_embeddings_vector',
      relname: 'chunk_embeddings',
      column: '(embedding::halfvec(3072))',
      type: 'halfvec',
      method: 'hnsw',
      opclass: 'halfvec_cosine_ops',
      dimensions: '3072',
      m: '16',
      ef_construction: '64',
      lists: '',
    });
    const { rows } = await client.query<{ ratio: number }>(
      "SELECT pg_relation_size('idx_embeddings_vector')::float8 / pg_size_bytes(current_setting('shared_buffers')) AS ratio",
    );
    expect(valueOf(samples, 'pgvector_index_shared_buffers_ratio', idx('idx_embeddings_vector'))).toBeCloseTo(rows[0]!.ratio, 10);
    expect(samplesOf(samples, 'pgvector_ivfflat_rows_per_list', idx('idx_embeddings_vector'))).toHaveLength(0);
  });

  it('follows rows and scans on the vector index', async () => {
    const before = await collect();
    await insertEmbeddings(5, 'scan-');
    await client.query('SET enable_seqscan = off');
    await client.query(
      'SELECT id FROM chunk_embeddings ORDER BY embedding::halfvec(3072) <=> (SELECT embedding FROM chunk_embeddings LIMIT 1)::halfvec(3072) LIMIT 3',
    );
    await client.query('RESET enable_seqscan');
    await client.query('DELETE FROM chunk_embeddings WHERE document_id IN (SELECT id FROM framework_documents WHERE chunk_id = $1)', ['scan-1']);
    await flushStats(client);
    const after = await collect();
    const vector = idx('idx_embeddings_vector');
    expect(valueOf(after, 'pg_stat_user_indexes_idx_scan', vector) - valueOf(before, 'pg_stat_user_indexes_idx_scan', vector)).toBe(1);
    expect(valueOf(after, 'pg_stat_user_indexes_idx_tup_read_total', vector)).toBeGreaterThan(valueOf(before, 'pg_stat_user_indexes_idx_tup_read_total', vector));
    expect(valueOf(after, 'pg_index_size_bytes', vector)).toBeGreaterThan(valueOf(before, 'pg_index_size_bytes', vector));
    expect(valueOf(after, 'pgvector_index_table_dead_tuples', vector)).toBe(1);
  });

  it('checks IVFFlat lists against the rows/1000 (sqrt above 1M) guidance, with pgvector defaults when unset', async () => {
    const samples = await collect();
    expect(samplesOf(samples, 'pgvector_index_info', idx('items_v_ivfflat'))[0]?.labels).toMatchObject({
      method: 'ivfflat',
      opclass: 'vector_l2_ops',
      dimensions: '3',
      lists: '4',
      m: '',
    });
    expect(samplesOf(samples, 'pgvector_index_info', idx('items_v_default'))[0]?.labels).toMatchObject({ lists: '100', dimensions: '3' });
    expect(valueOf(samples, 'pgvector_ivfflat_rows_per_list', idx('items_v_ivfflat'))).toBe(2000 / 4);
    expect(valueOf(samples, 'pgvector_ivfflat_recommended_lists', idx('items_v_ivfflat'))).toBe(2);

    await client.query('INSERT INTO items SELECT g, ARRAY[1, 2, 3]::vector FROM generate_series(2001, 4000) g');
    await flushStats(client);
    const grown = await collect();
    expect(valueOf(grown, 'pgvector_ivfflat_rows_per_list', idx('items_v_ivfflat'))).toBe(4000 / 4);
    expect(valueOf(grown, 'pgvector_ivfflat_recommended_lists', idx('items_v_ivfflat'))).toBe(4);

    expect([10, 999_000, 1_000_000, 4_000_000].map(recommendedLists)).toEqual([1, 999, 1000, 2000]);
  });

  it('reads an index left INVALID by a failed CREATE UNIQUE INDEX CONCURRENTLY, and a *_ccnew leftover, as pg_index_valid 0', async () => {
    // Two names of the same length: a unique index on length() cannot be built.
    await client.query("INSERT INTO key_concepts (concept_name) VALUES ('alpha'), ('omega')");
    await expect(client.query('CREATE UNIQUE INDEX CONCURRENTLY idx_concepts_len ON key_concepts (length(concept_name))')).rejects.toThrow(
      /could not create unique index/,
    );
    // REINDEX CONCURRENTLY first commits its new *_ccnew index, then waits for writers: cancelled there, it leaves it invalid.
    const writer = await connect(db.url, 'writer');
    try {
      await writer.query('BEGIN');
      await writer.query("INSERT INTO key_concepts (concept_name) VALUES ('epsilon')");
      await client.query("SET statement_timeout = '500ms'");
      await expect(client.query('REINDEX INDEX CONCURRENTLY uq_concepts_name')).rejects.toThrow(/statement timeout/);
    } finally {
      await client.query('RESET statement_timeout');
      await writer.query('ROLLBACK');
      await writer.end();
    }

    const samples = await collect();
    expect(valueOf(samples, 'pg_index_valid', idx('idx_concepts_len'))).toBe(0);
    expect(valueOf(samples, 'pg_index_valid', idx('uq_concepts_name_ccnew'))).toBe(0);
    expect(valueOf(samples, 'pg_index_valid', idx('uq_concepts_name'))).toBe(1);
    await client.query('DROP INDEX idx_concepts_len, uq_concepts_name_ccnew');
  });

  it('reports an index build in progress with its phase', async () => {
    const writer = await connect(db.url, 'writer');
    const builder = await connect(db.url, 'builder');
    try {
      // CREATE INDEX CONCURRENTLY waits for transactions that hold a write lock on the table.
      await writer.query('BEGIN');
      await writer.query("INSERT INTO key_concepts (concept_name) VALUES ('delta')");
      const build = builder.query('CREATE INDEX CONCURRENTLY idx_concepts_building ON key_concepts (concept_name)');
      // The build passes through 'initializing' first (a loaded machine shows it for a while): wait for
      // the phase it stays in while the writer's transaction is open, not for any build at all.
      const building = await vi.waitFor(
        async () => {
          const [sample] = samplesOf(await collect(), 'pg_index_build_in_progress', { relname: 'key_concepts' });
          expect(sample?.labels?.phase).toMatch(/^waiting for writers before build/);
          return sample!;
        },
        { timeout: 30_000, interval: 100 },
      );
      expect('value' in building && building.value).toBe(1);
      // The vector indexes' own build progress and the builds per table: one read of the view per poll.
      expect(statements.filter((sql) => sql.includes('pg_stat_progress_create_index'))).toHaveLength(1);
      await writer.query('COMMIT');
      await build;
    } finally {
      await writer.end();
      await builder.end();
    }
    const done = await collect();
    expect(samplesOf(done, 'pg_index_build_in_progress')).toHaveLength(0);
    expect(valueOf(done, 'pg_index_valid', idx('idx_concepts_building'))).toBe(1);
  });

  it('reports a build in a database without any pgvector index', async () => {
    const plain = await createTestDatabase();
    const writer = await connect(plain.url, 'writer');
    const builder = await connect(plain.url, 'builder');
    try {
      await writer.query('DROP INDEX idx_embeddings_vector');
      expect((await writer.query("SELECT 1 FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam WHERE am.amname IN ('hnsw', 'ivfflat')")).rowCount).toBe(0);
      await writer.query('BEGIN');
      await writer.query("INSERT INTO key_concepts (concept_name) VALUES ('delta')");
      const build = builder.query('CREATE INDEX CONCURRENTLY idx_concepts_building ON key_concepts (concept_name)');
      const samples = await vi.waitFor(
        async () => {
          const polled = await collect(writer);
          expect(samplesOf(polled, 'pg_index_build_in_progress', { relname: 'key_concepts' })[0]?.labels?.phase).toMatch(/^waiting for writers before build/);
          return polled;
        },
        { timeout: 30_000, interval: 100 },
      );
      expect(samplesOf(samples, 'pgvector_index_info')).toEqual([]);
      expect(samplesOf(samples, 'pgvector_index_build_progress_ratio')).toEqual([]);
      await writer.query('COMMIT');
      await build;
    } finally {
      await writer.end();
      await builder.end();
      await plain.drop();
    }
  });

  it('keeps pg_index_expected_present at 0 when the expected index is dropped, while its other series vanish', async () => {
    await client.query('DROP INDEX idx_embeddings_vector');
    const samples = await collect();
    expect(valueOf(samples, 'pg_index_expected_present', idx('idx_embeddings_vector'))).toBe(0);
    expect(valueOf(samples, 'pg_index_expected_present', idx('idx_documents_section'))).toBe(1);
    expect(samplesOf(samples, 'pg_index_valid', idx('idx_embeddings_vector'))).toHaveLength(0);
    expect(samplesOf(samples, 'pgvector_index_info', idx('idx_embeddings_vector'))).toHaveLength(0);
  });

  it('applies pgvector defaults when reloptions is NULL and reads no-stats columns as 0', async () => {
    const [row] = (await client.query<IndexRow>(INDEXES_SQL, ['public', ['items']])).rows.filter((r) => r.indexrelname === 'items_v_default');
    expect(row!.lists).toBeNull();
    expect(valueOf(indexSamples({ ...row!, idx_scan: null }), 'pg_stat_user_indexes_idx_scan')).toBe(0);
    const [vector] = (await client.query<VectorIndexStatsRow>(VECTOR_INDEX_STATS_SQL)).rows.filter((r) => r.indexrelname === 'items_v_default');
    const samples = vectorIndexSamples({ ...vector!, method: 'hnsw', m: null, ef_construction: null, table_dead_tuples: null });
    expect(samplesOf(samples, 'pgvector_index_info')[0]?.labels).toMatchObject({ m: '16', ef_construction: '64', lists: '' });
    expect(valueOf(samples, 'pgvector_index_table_dead_tuples')).toBe(0);
  });

  it('works with the least-privilege pgvector_exporter role alone', async () => {
    const login = await exporterLogin(db.pool, db.url);
    try {
      const samples = await collect(login.client);
      expect(valueOf(samples, 'pg_index_valid', idx('items_v_ivfflat'))).toBe(1);
      expect(valueOf(samples, 'pg_index_size_bytes', idx('items_v_ivfflat'))).toBeGreaterThan(0);
      expect(valueOf(samples, 'pgvector_ivfflat_rows_per_list', idx('items_v_ivfflat'))).toBeGreaterThan(0);
    } finally {
      await login.drop();
    }
  });
});
