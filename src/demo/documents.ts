import type pg from 'pg';
import { EmbeddingSpace, gaussian, vectorLiteral } from './embedding-space.js';
import { CHUNK_TYPES, COMMON_WORDS, TOPICS, type Topic } from './topics.js';

/**
 * One synthetic chunk with everything the data model hangs off it: the document, its metadata,
 * its embedding, its key concepts and its source line range. Every value satisfies the schema's
 * constraints by construction (see topics.ts for the word and name rules).
 */
export interface SyntheticDocument {
  chunkId: string;
  sourceFile: string;
  section: string;
  title: string;
  description: string;
  content: string;
  characterCount: number;
  wordCount: number;
  chunkType: string;
  frameworkName: string;
  containsList: boolean;
  containsExample: boolean;
  concepts: string[];
  startLine: number;
  endLine: number;
  /** pgvector text literal of a unit-length 3,072-dimension vector. */
  embedding: string;
}

export function topicOf(index: number): Topic {
  return TOPICS[index % TOPICS.length]!;
}

export function createEmbeddingSpace(seed = 1): EmbeddingSpace {
  return new EmbeddingSpace({ seed, topics: TOPICS.length });
}

function pick<T>(items: readonly T[], random: () => number): T {
  return items[Math.floor(random() * items.length)]!;
}

/**
 * Each chunk dwells on a few of its topic's words, as real sections do. Besides realism this keeps
 * a two-word full-text query down to a few percent of a topic's chunks: ts_rank_cd re-parses every
 * match, so a query matching a whole topic would make hybrid search slow for the wrong reason.
 */
function focusWords(topic: Topic, random: () => number): string[] {
  const pool = [...topic.words];
  return Array.from({ length: 3 }, () => pool.splice(Math.floor(random() * pool.length), 1)[0]!);
}

/** Prose-like text: mostly common words, every third word or so one of the chunk's focus words. */
function words(focus: string[], count: number, random: () => number): string[] {
  return Array.from({ length: count }, () => (random() < 0.35 ? pick(focus, random) : pick(COMMON_WORDS, random)));
}

export function generateDocument(space: EmbeddingSpace, random: () => number, chunkId: string, topicIndex: number): SyntheticDocument {
  const topic = topicOf(topicIndex);
  const wordCount = 40 + Math.floor(random() * 260);
  const focus = focusWords(topic, random);
  const content = words(focus, wordCount, random).join(' ');
  const part = 1 + Math.floor(random() * 8);
  const startLine = 1 + Math.floor(random() * 4000);
  const conceptCount = 1 + Math.floor(random() * topic.concepts.length);
  return {
    chunkId,
    sourceFile: `${topic.slug}.md`,
    section: `${topic.name} / part ${part}`,
    title: `${topic.name}: ${focus.join(' ')}`,
    description: `Synthetic demo chunk about ${topic.name.toLowerCase()}`,
    content,
    characterCount: content.length,
    wordCount,
    chunkType: pick(CHUNK_TYPES, random),
    frameworkName: topic.name,
    containsList: random() < 0.3,
    containsExample: random() < 0.4,
    concepts: topic.concepts.slice(0, conceptCount),
    startLine,
    endLine: startLine + Math.max(0, Math.round(wordCount / 12 + gaussian(random))),
    embedding: vectorLiteral(space.embedding(topicIndex, random)),
  };
}

/** Every topic's key concepts; idempotent. */
export async function ensureConcepts(db: pg.Pool | pg.ClientBase): Promise<void> {
  const names = TOPICS.flatMap((t) => t.concepts);
  await db.query('INSERT INTO key_concepts (concept_name) SELECT unnest($1::text[]) ON CONFLICT (concept_name) DO NOTHING', [names]);
}

/**
 * One statement inserts a batch into all five tables: the data-modifying CTEs share the new
 * document ids, and foreign keys are checked at the end of the statement. Concepts must exist
 * (ensureConcepts). Returns the number of documents inserted.
 */
const INSERT_DOCUMENTS = `
WITH input AS (
  SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::int[],
                       $9::text[], $10::text[], $11::bool[], $12::bool[], $13::text[], $14::int[], $15::int[], $16::text[])
    AS t(chunk_id, source_file, section, title, description, content, character_count, word_count,
         chunk_type, framework_name, contains_list, contains_example, concepts, start_line, end_line, embedding)
), docs AS (
  INSERT INTO framework_documents (chunk_id, source_file, section, title, description, content)
  SELECT chunk_id, source_file, section, title, description, content FROM input
  RETURNING id, chunk_id
), metadata AS (
  INSERT INTO framework_metadata (document_id, character_count, word_count, chunk_type, framework_name,
                                  contains_list, contains_example, validation_passed, processing_date, guidelines_compliance)
  SELECT d.id, i.character_count, i.word_count, i.chunk_type, i.framework_name,
         i.contains_list, i.contains_example, true, current_date, 'synthetic demo corpus'
  FROM docs d JOIN input i USING (chunk_id)
), embeddings AS (
  INSERT INTO chunk_embeddings (document_id, embedding, model_name)
  SELECT d.id, i.embedding::vector(3072), 'text-embedding-3-large'
  FROM docs d JOIN input i USING (chunk_id)
), lines AS (
  INSERT INTO source_lines (document_id, start_line, end_line)
  SELECT d.id, i.start_line, i.end_line FROM docs d JOIN input i USING (chunk_id)
), concepts AS (
  INSERT INTO document_concepts (document_id, concept_id)
  SELECT d.id, k.id
  FROM docs d JOIN input i USING (chunk_id)
  CROSS JOIN LATERAL unnest(string_to_array(i.concepts, '|')) AS c(name)
  JOIN key_concepts k ON k.concept_name = c.name
)
SELECT count(*)::int AS inserted FROM docs`;

export async function insertDocuments(db: pg.Pool | pg.ClientBase, documents: SyntheticDocument[]): Promise<number> {
  const column = <K extends keyof SyntheticDocument>(key: K) => documents.map((d) => d[key]);
  const { rows } = await db.query<{ inserted: number }>(INSERT_DOCUMENTS, [
    column('chunkId'),
    column('sourceFile'),
    column('section'),
    column('title'),
    column('description'),
    column('content'),
    column('characterCount'),
    column('wordCount'),
    column('chunkType'),
    column('frameworkName'),
    column('containsList'),
    column('containsExample'),
    documents.map((d) => d.concepts.join('|')),
    column('startLine'),
    column('endLine'),
    column('embedding'),
  ]);
  return rows[0]?.inserted ?? 0;
}
