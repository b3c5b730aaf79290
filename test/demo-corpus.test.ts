import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCorpus, VECTOR_INDEX, type SeedProgress } from '../src/demo/corpus.js';
import { TOPICS } from '../src/demo/topics.js';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';

const DOCUMENTS = 120;

async function count(db: TestDatabase, table: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
  return rows[0]!.n;
}

async function indexDefinition(db: TestDatabase): Promise<string | null> {
  const { rows } = await db.pool.query<{ def: string | null }>(
    "SELECT (SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = to_regclass($1) AND indisvalid) AS def",
    [VECTOR_INDEX],
  );
  return rows[0]!.def;
}

describe('seedCorpus on an empty database', () => {
  let db: TestDatabase;
  let originalIndex: string | null;
  const progress: SeedProgress[] = [];
  let result: Awaited<ReturnType<typeof seedCorpus>>;

  beforeAll(async () => {
    db = await createTestDatabase();
    originalIndex = await indexDefinition(db);
    result = await seedCorpus(db.pool, { documents: DOCUMENTS, batchSize: 25, onProgress: (p) => progress.push(p) });
  });
  afterAll(async () => db.drop());

  it('fills every table of the data model', async () => {
    expect(result.documents).toBe(DOCUMENTS);
    for (const table of ['framework_documents', 'chunk_embeddings', 'framework_metadata', 'source_lines']) {
      expect(await count(db, table), table).toBe(DOCUMENTS);
    }
    expect(await count(db, 'key_concepts')).toBe(TOPICS.flatMap((t) => t.concepts).length);
    expect(await count(db, 'document_concepts')).toBeGreaterThanOrEqual(DOCUMENTS);
  });

  it('writes metadata consistent with the content and unit-length 3,072-dimension embeddings', async () => {
    const { rows } = await db.pool.query(`
      SELECT count(*) FILTER (WHERE m.character_count <> length(d.content))::int AS wrong_chars,
             count(*) FILTER (WHERE m.word_count <> cardinality(regexp_split_to_array(d.content, ' ')))::int AS wrong_words,
             count(*) FILTER (WHERE vector_dims(e.embedding) <> 3072)::int AS wrong_dims,
             count(*) FILTER (WHERE abs(vector_norm(e.embedding) - 1) > 0.001)::int AS not_unit,
             count(*) FILTER (WHERE m.framework_name IS NULL OR NOT m.validation_passed)::int AS bad_metadata
      FROM framework_documents d
      JOIN framework_metadata m ON m.document_id = d.id
      JOIN chunk_embeddings e ON e.document_id = d.id`);
    expect(rows[0]).toEqual({ wrong_chars: 0, wrong_words: 0, wrong_dims: 0, not_unit: 0, bad_metadata: 0 });
  });

  it('rebuilds the vector index from its own definition, valid, and reports the build', async () => {
    expect(result.indexRebuilt).toBe(true);
    expect(await indexDefinition(db)).toBe(originalIndex);
    const documents = progress.filter((p) => p.phase === 'documents');
    expect(documents.at(-1)).toEqual({ phase: 'documents', done: DOCUMENTS, total: DOCUMENTS });
    expect(documents.map((p) => p.done)).toEqual([...documents.map((p) => p.done)].sort((a, b) => a - b));
    expect(progress.some((p) => p.phase === 'index')).toBe(true);
    expect(progress.at(-1)).toEqual({ phase: 'analyze' });
  });

  it('analyses every table the seed fills and the log tables the workload fills next', async () => {
    const { rows } = await db.pool.query<{ relname: string }>(
      `SELECT relname FROM pg_stat_user_tables
        WHERE relname = ANY ($1) AND last_analyze IS NULL AND last_autoanalyze IS NULL`,
      [['framework_documents', 'chunk_embeddings', 'framework_metadata', 'key_concepts', 'document_concepts', 'source_lines', 'query_performance_log', 'maintenance_log']],
    );
    expect(rows).toEqual([]);
  });

  it('leaves a database the health check calls healthy', async () => {
    const { rows } = await db.pool.query<{ component: string; status: string; details: string }>('SELECT * FROM system_health_check()');
    const unhealthy = rows.filter((r) => r.status !== 'HEALTHY');
    expect(unhealthy).toEqual([]);
    expect(rows.find((r) => r.component === 'embedding_completeness')?.details).toContain(`all ${DOCUMENTS} documents`);
  });

  it('clusters embeddings by topic, so nearest neighbours share a framework', async () => {
    const { rows } = await db.pool.query<{ same: number; total: number }>(`
      SELECT count(*) FILTER (WHERE nm.framework_name = qm.framework_name)::int AS same, count(*)::int AS total
      FROM (SELECT document_id, embedding FROM chunk_embeddings ORDER BY document_id LIMIT 10) q
      JOIN framework_metadata qm ON qm.document_id = q.document_id
      CROSS JOIN LATERAL (
        SELECT e.document_id FROM chunk_embeddings e WHERE e.document_id <> q.document_id
        ORDER BY e.embedding <=> q.embedding LIMIT 5) n
      JOIN framework_metadata nm ON nm.document_id = n.document_id`);
    expect(rows[0]!.total).toBe(50);
    expect(rows[0]!.same / rows[0]!.total).toBeGreaterThan(0.9);
  });

  it('adds to a non-empty table without touching the index', async () => {
    const { rows } = await db.pool.query<{ oid: number }>('SELECT to_regclass($1)::oid AS oid', [VECTOR_INDEX]);
    const again = await seedCorpus(db.pool, { documents: 10, chunkPrefix: 'more' });
    expect(again.indexRebuilt).toBe(false);
    expect(await count(db, 'chunk_embeddings')).toBe(DOCUMENTS + 10);
    const after = await db.pool.query<{ oid: number }>('SELECT to_regclass($1)::oid AS oid', [VECTOR_INDEX]);
    expect(after.rows[0]!.oid).toBe(rows[0]!.oid);
  });
});

describe('seedCorpus failing half-way', () => {
  const db = useTestDatabase();

  it('rolls everything back, the dropped vector index included', async () => {
    const before = await indexDefinition(db);
    // A document without embedding whose chunk_id the third batch will collide with.
    await db.pool.query("INSERT INTO framework_documents (chunk_id, source_file, section, title, content) VALUES ('demo-000060', 'x.md', 's', 't', 'taken')");
    await expect(seedCorpus(db.pool, { documents: 100, batchSize: 25 })).rejects.toThrow(/uq_documents_chunk_id/);
    expect(await indexDefinition(db)).toBe(before);
    expect(await count(db, 'framework_documents')).toBe(1);
    expect(await count(db, 'chunk_embeddings')).toBe(0);
  });
});
