import { randomBytes } from 'node:crypto';
import type pg from 'pg';

/**
 * Test data for the RAG tables: valid rows generated server-side in one statement per table, so
 * thousands of documents with 3,072-dim embeddings cost no client round-trips or JSON of floats.
 *
 *   const ids = await seedDocuments(db.pool, { count: 100, withEmbeddings: true });
 *   await db.pool.query(vectorSearchSql, [randomVectorLiteral(), 10]);
 */

/** A pool or a single client: seeding inside the caller's transaction works too. */
export type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export const EMBEDDING_DIMS = 3072;

export interface SeedOptions {
  count: number;
  /**
   * Makes chunk_id, source_file and concept names unique per call; letters, digits and '-' only
   * (the intersection of the source_file and concept name patterns). Default: random.
   */
  prefix?: string;
  /** One random embedding per document (model text-embedding-3-large). */
  withEmbeddings?: boolean;
  /** One framework_metadata row per document, counts derived from the content. */
  withMetadata?: boolean;
  /** One source_lines range per document. */
  withSourceLines?: boolean;
  /** Creates this many key concepts and links each document to one of them (round-robin). */
  concepts?: number;
}

/**
 * Inserts `count` valid framework_documents (and optionally their embeddings, metadata, source
 * lines and concepts). Returns the document ids in insertion order (chunk_id `<prefix>-000001`, ...).
 */
export async function seedDocuments(db: Queryable, options: SeedOptions): Promise<string[]> {
  const prefix = options.prefix ?? `seed-${randomBytes(4).toString('hex')}`;
  if (!/^[A-Za-z0-9-]+$/.test(prefix)) throw new Error(`seed prefix must match [A-Za-z0-9-]+: ${prefix}`);
  const { rows } = await db.query<{ id: string }>(
    `WITH ins AS (
       INSERT INTO framework_documents (chunk_id, source_file, section, title, content)
       SELECT $1 || '-' || lpad(g::text, 6, '0'),
              $1 || '.md',
              'section ' || (g % 10),
              'Seed document ' || g,
              'Seed content number ' || g || ' about topic ' || (g % 50) || ' with several ordinary words.'
       FROM generate_series(1, $2::integer) g
       RETURNING id, chunk_id)
     SELECT id FROM ins ORDER BY chunk_id`,
    [prefix, options.count],
  );
  const ids = rows.map((r) => r.id);
  if (options.withEmbeddings) await seedEmbeddings(db, ids);
  if (options.withMetadata) await seedMetadata(db, ids);
  if (options.withSourceLines) await seedSourceLines(db, ids);
  if (options.concepts) await seedConcepts(db, ids, prefix, options.concepts);
  return ids;
}

/**
 * One embedding per document with uniform random components in [0, 1).
 * The subquery refers to the outer row (`d.id IS NOT NULL`), which makes it correlated: without
 * that PostgreSQL evaluates it once and every row would get the same vector.
 */
export async function seedEmbeddings(db: Queryable, documentIds: string[], model = 'text-embedding-3-large'): Promise<void> {
  await db.query(
    `INSERT INTO chunk_embeddings (document_id, embedding, model_name)
     SELECT d.id,
            (SELECT array_agg(random()::real) FROM generate_series(1, ${EMBEDDING_DIMS}) WHERE d.id IS NOT NULL)::vector,
            $2
     FROM framework_documents d
     WHERE d.id = ANY ($1::uuid[])`,
    [documentIds, model],
  );
}

/** framework_metadata rows that satisfy every check (counts from the actual content). */
export async function seedMetadata(db: Queryable, documentIds: string[]): Promise<void> {
  await db.query(
    `INSERT INTO framework_metadata (document_id, character_count, word_count, chunk_type, framework_name, processing_date)
     SELECT d.id,
            length(d.content),
            cardinality(regexp_split_to_array(trim(d.content), '\\s+')),
            (ARRAY['atomic_framework', 'framework_section', 'supporting'])[1 + abs(hashtext(d.chunk_id)) % 3],
            'Seed framework',
            current_date
     FROM framework_documents d
     WHERE d.id = ANY ($1::uuid[])`,
    [documentIds],
  );
}

/** One 10-line range per document. */
export async function seedSourceLines(db: Queryable, documentIds: string[]): Promise<void> {
  await db.query(
    `INSERT INTO source_lines (document_id, start_line, end_line)
     SELECT id, 10 * (n - 1) + 1, 10 * n FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
    [documentIds],
  );
}

/** Creates `count` concepts named `<prefix> concept <k>` and links document i to concept i mod count. */
export async function seedConcepts(db: Queryable, documentIds: string[], prefix: string, count: number): Promise<void> {
  await db.query(
    `WITH c AS (
       INSERT INTO key_concepts (concept_name)
       SELECT $2 || ' concept ' || k FROM generate_series(0, $3::integer - 1) k
       RETURNING id, concept_name)
     INSERT INTO document_concepts (document_id, concept_id)
     SELECT u.id, c.id
     FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)
     JOIN c ON c.concept_name = $2 || ' concept ' || ((u.n - 1) % $3::integer)`,
    [documentIds, prefix, count],
  );
}

/** A vector in pgvector's text form ('[0.1,0.2,...]'), same distribution as seeded embeddings. */
export function randomVectorLiteral(dims = EMBEDDING_DIMS): string {
  return `[${Array.from({ length: dims }, () => Math.random().toFixed(6)).join(',')}]`;
}
