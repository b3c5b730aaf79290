import type pg from 'pg';

type Queryable = Pick<pg.Client, 'query'>;

/** Inserts `count` valid framework_documents rows (unique chunk_id per prefix) and returns how many. */
export async function insertDocuments(db: Queryable, count: number, prefix = 'doc'): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO framework_documents (chunk_id, source_file, section, title, content)
     SELECT $1 || '-' || g, 'corpus_' || (g % 7) || '.md', 'section ' || (g % 5), 'Title ' || g, 'Content of chunk ' || g
     FROM generate_series(1, $2::integer) g`,
    [prefix, count],
  );
  return rowCount ?? 0;
}

/**
 * Gives every document without an embedding a random 3,072-dimension one, generated server-side
 * (the correlated WHERE forces one array per row instead of one shared value).
 */
export async function embedMissing(db: Queryable, model = 'text-embedding-3-large'): Promise<number> {
  const { rowCount } = await db.query(
    `INSERT INTO chunk_embeddings (document_id, embedding, model_name)
     SELECT d.id, (SELECT array_agg(random()::real) FROM generate_series(1, 3072) WHERE d.id IS NOT NULL)::vector, $1
     FROM framework_documents d
     WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id)`,
    [model],
  );
  return rowCount ?? 0;
}
