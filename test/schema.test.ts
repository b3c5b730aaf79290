import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from './helpers/database.js';
import { randomVectorLiteral, seedDocuments } from './helpers/seed.js';

/**
 * The data model's constraints, cascades, roles and audit trail (issue 2, "Done when":
 * every constraint rejects a bad row). Each case runs in a transaction that is rolled back.
 */

type Row = Record<string, unknown>;

/** Ids of a document and a concept that exist inside each case's transaction. */
interface Fixtures {
  documentId: string;
  conceptId: number;
}

const MISSING_UUID = '00000000-0000-4000-8000-000000000000';

/** Valid rows, one per table: each case breaks exactly one rule of one of them. */
const VALID: Record<string, (f: Fixtures) => Row> = {
  framework_documents: () => ({
    chunk_id: 'value-equation-001', source_file: 'offers_chapter-2.md', section: 'Value', title: 'The value equation',
    content: 'Value equals dream outcome times likelihood, divided by time delay times effort.',
  }),
  chunk_embeddings: (f) => ({ document_id: f.documentId, embedding: randomVectorLiteral(), model_name: 'text-embedding-3-large' }),
  framework_metadata: (f) => ({ document_id: f.documentId, character_count: 300, word_count: 50, chunk_type: 'supporting' }),
  key_concepts: () => ({ concept_name: 'Grand Slam Offer & Value-Stack 2' }),
  document_concepts: (f) => ({ document_id: f.documentId, concept_id: f.conceptId }),
  source_lines: (f) => ({ document_id: f.documentId, start_line: 1, end_line: 10 }),
};

interface ConstraintCase {
  table: keyof typeof VALID;
  /** What is wrong with the row. */
  why: string;
  bad: (f: Fixtures) => Row;
  /** The constraint the error must name... */
  constraint?: string;
  /** ...or, where the column type rejects the value first, the error message. */
  message?: RegExp;
  /** Inserts the valid row first (uniqueness cases). */
  duplicate?: boolean;
}

const CASES: ConstraintCase[] = [
  { table: 'framework_documents', why: 'a source_file with a slash and a space', bad: () => ({ source_file: 'notes/part 1.md' }), constraint: 'chk_documents_source_file_format' },
  { table: 'framework_documents', why: 'content of spaces only', bad: () => ({ content: '    ' }), constraint: 'chk_documents_content_not_empty' },
  { table: 'framework_documents', why: 'content of newlines and tabs only', bad: () => ({ content: ' \n\t\r\n ' }), constraint: 'chk_documents_content_not_empty' },
  { table: 'framework_documents', why: 'a duplicate chunk_id', bad: () => ({ source_file: 'other.md' }), constraint: 'uq_documents_chunk_id', duplicate: true },
  { table: 'chunk_embeddings', why: 'a 1536-dim embedding (the vector(3072) type rejects it first)', bad: () => ({ embedding: randomVectorLiteral(1536) }), message: /expected 3072 dimensions, not 1536/ },
  { table: 'chunk_embeddings', why: 'an unknown model_name', bad: () => ({ model_name: 'text-embedding-ada-002' }), constraint: 'chk_embeddings_model_name' },
  { table: 'chunk_embeddings', why: 'a document_id that does not exist', bad: () => ({ document_id: MISSING_UUID }), constraint: 'fk_embeddings_document' },
  { table: 'framework_metadata', why: 'character_count 50001', bad: () => ({ character_count: 50_001 }), constraint: 'chk_metadata_character_count' },
  { table: 'framework_metadata', why: 'word_count 0', bad: () => ({ word_count: 0 }), constraint: 'chk_metadata_word_count' },
  { table: 'framework_metadata', why: 'word_count 15001', bad: () => ({ character_count: 50_000, word_count: 15_001 }), constraint: 'chk_metadata_word_count' },
  { table: 'framework_metadata', why: 'fewer than 3 characters per word', bad: () => ({ character_count: 149, word_count: 50 }), constraint: 'chk_metadata_chars_per_word' },
  { table: 'framework_metadata', why: 'an unknown chunk_type', bad: () => ({ chunk_type: 'paragraph' }), constraint: 'chk_metadata_chunk_type' },
  { table: 'framework_metadata', why: 'a document_id that does not exist', bad: () => ({ document_id: MISSING_UUID }), constraint: 'fk_metadata_document' },
  { table: 'key_concepts', why: 'a name of spaces only', bad: () => ({ concept_name: '   ' }), constraint: 'chk_concepts_name_not_empty' },
  { table: 'key_concepts', why: 'a name with a slash and an exclamation mark', bad: () => ({ concept_name: 'Offers/Pricing!' }), constraint: 'chk_concepts_name_pattern' },
  { table: 'key_concepts', why: 'a duplicate name', bad: () => ({}), constraint: 'uq_concepts_name', duplicate: true },
  { table: 'document_concepts', why: 'the same (document, concept) pair twice', bad: () => ({}), constraint: 'document_concepts_pkey', duplicate: true },
  { table: 'document_concepts', why: 'a document_id that does not exist', bad: () => ({ document_id: MISSING_UUID }), constraint: 'fk_document_concepts_document' },
  { table: 'document_concepts', why: 'a concept_id that does not exist', bad: () => ({ concept_id: -1 }), constraint: 'fk_document_concepts_concept' },
  { table: 'source_lines', why: 'start_line 0', bad: () => ({ start_line: 0, end_line: 5 }), constraint: 'chk_source_lines_start_positive' },
  { table: 'source_lines', why: 'end_line before start_line', bad: () => ({ start_line: 5, end_line: 4 }), constraint: 'chk_source_lines_end_after_start' },
  { table: 'source_lines', why: 'a span of 10001 lines', bad: () => ({ start_line: 1, end_line: 10_002 }), constraint: 'chk_source_lines_max_span' },
  { table: 'source_lines', why: 'a document_id that does not exist', bad: () => ({ document_id: MISSING_UUID }), constraint: 'fk_source_lines_document' },
];

async function insertRow(client: pg.PoolClient, table: string, row: Row): Promise<void> {
  const columns = Object.keys(row);
  const placeholders = columns.map((_, i) => `$${i + 1}`);
  await client.query(`INSERT INTO ${table} (${columns.join(', ')}) VALUES (${placeholders.join(', ')})`, Object.values(row));
}

/** The PostgreSQL error of `fn`, or a failure if it succeeded. */
async function pgError(fn: () => Promise<unknown>): Promise<pg.DatabaseError> {
  try {
    await fn();
  } catch (err) {
    if (err instanceof pg.DatabaseError) return err;
    throw err;
  }
  throw new Error('expected the statement to be rejected, but it succeeded');
}

describe('schema constraints', () => {
  const db = useTestDatabase();

  /** Runs fn in a transaction with fresh fixtures, always rolled back. */
  async function inRolledBackTransaction(fn: (client: pg.PoolClient, f: Fixtures) => Promise<void>): Promise<void> {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      const [documentId] = await seedDocuments(client, { count: 1, prefix: 'fixture' });
      const { rows } = await client.query<{ id: number }>("INSERT INTO key_concepts (concept_name) VALUES ('Fixture concept') RETURNING id");
      await fn(client, { documentId: documentId!, conceptId: rows[0]!.id });
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  it('accepts the valid template row of every table', async () => {
    await inRolledBackTransaction(async (client, f) => {
      for (const [table, valid] of Object.entries(VALID)) {
        await insertRow(client, table, valid(f));
      }
      const { rows } = await client.query<{ n: number }>('SELECT count(*)::int AS n FROM chunk_embeddings');
      expect(rows[0]!.n).toBe(1);
    });
  });

  for (const c of CASES) {
    it(`${c.table}: ${c.constraint ?? 'the column type'} rejects ${c.why}`, async () => {
      await inRolledBackTransaction(async (client, f) => {
        const valid = VALID[c.table]!(f);
        if (c.duplicate) await insertRow(client, c.table, valid);
        const err = await pgError(() => insertRow(client, c.table, { ...valid, ...c.bad(f) }));
        if (c.constraint) expect(err.constraint).toBe(c.constraint);
        if (c.message) expect(err.message).toMatch(c.message);
      });
    });
  }

  it('chk_embeddings_dimensions rejects a wrong dimension where the column has no type modifier', async () => {
    // The vector(3072) typmod rejects first on the real table; a copy without the typmod shows the
    // CHECK would still hold if someone ever widened the column to plain `vector`.
    await inRolledBackTransaction(async (client) => {
      await client.query('CREATE TEMP TABLE embeddings_untyped (LIKE chunk_embeddings INCLUDING DEFAULTS INCLUDING CONSTRAINTS) ON COMMIT DROP');
      await client.query('ALTER TABLE embeddings_untyped ALTER COLUMN embedding TYPE vector');
      const err = await pgError(() =>
        client.query('INSERT INTO embeddings_untyped (id, document_id, embedding) VALUES (gen_random_uuid(), $1, $2)', [MISSING_UUID, randomVectorLiteral(1536)]),
      );
      expect(err.constraint).toBe('chk_embeddings_dimensions');
    });
  });

  it('every constraint named by the tests exists in the migrated schema', async () => {
    const expected = [...new Set(CASES.flatMap((c) => (c.constraint ? [c.constraint] : [])).concat('chk_embeddings_dimensions'))];
    const { rows } = await db.pool.query<{ conname: string }>('SELECT conname FROM pg_constraint WHERE conname = ANY ($1)', [expected]);
    expect(rows.map((r) => r.conname).sort()).toEqual(expected.sort());
  });

  it('deleting a document cascades to its embeddings, metadata, concept links and source lines', async () => {
    const [doomed, kept] = await seedDocuments(db.pool, { count: 2, withEmbeddings: true, withMetadata: true, withSourceLines: true, concepts: 1 });
    const countsFor = async (id: string) => {
      const { rows } = await db.pool.query<Record<string, number>>(
        `SELECT (SELECT count(*)::int FROM chunk_embeddings WHERE document_id = $1) AS embeddings,
                (SELECT count(*)::int FROM framework_metadata WHERE document_id = $1) AS metadata,
                (SELECT count(*)::int FROM document_concepts WHERE document_id = $1) AS concepts,
                (SELECT count(*)::int FROM source_lines WHERE document_id = $1) AS source_lines`,
        [id],
      );
      return rows[0];
    };
    const seeded = { embeddings: 1, metadata: 1, concepts: 1, source_lines: 1 };
    expect(await countsFor(doomed!)).toEqual(seeded);

    await db.pool.query('DELETE FROM framework_documents WHERE id = $1', [doomed]);

    expect(await countsFor(doomed!)).toEqual({ embeddings: 0, metadata: 0, concepts: 0, source_lines: 0 });
    expect(await countsFor(kept!)).toEqual(seeded);
    // The concept itself is shared vocabulary: it stays, only the link goes.
    const { rows } = await db.pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM key_concepts k JOIN document_concepts dc ON dc.concept_id = k.id WHERE dc.document_id = $1',
      [kept],
    );
    expect(rows[0]!.n).toBe(1);
  });

  it('deleting a concept removes its document links but not the documents', async () => {
    const ids = await seedDocuments(db.pool, { count: 2, concepts: 1, prefix: 'concept-delete' });
    await db.pool.query("DELETE FROM key_concepts WHERE concept_name = 'concept-delete concept 0'");
    const { rows } = await db.pool.query<{ links: number; docs: number }>(
      `SELECT (SELECT count(*)::int FROM document_concepts WHERE document_id = ANY ($1)) AS links,
              (SELECT count(*)::int FROM framework_documents WHERE id = ANY ($1)) AS docs`,
      [ids],
    );
    expect(rows[0]).toEqual({ links: 0, docs: 2 });
  });
});

describe('roles and the audit trail', () => {
  const ROLES = ['rag_read_only', 'rag_read_write', 'rag_admin', 'pgvector_exporter'];
  const db = useTestDatabase();

  it('creates the four roles, all NOLOGIN, with pgvector_exporter a member of pg_monitor', async () => {
    const { rows } = await db.pool.query<{ rolname: string; rolcanlogin: boolean; monitor: boolean }>(
      "SELECT rolname, rolcanlogin, pg_has_role(rolname, 'pg_monitor', 'MEMBER') AS monitor FROM pg_roles WHERE rolname = ANY ($1) ORDER BY rolname",
      [ROLES],
    );
    expect(rows.map((r) => r.rolname)).toEqual([...ROLES].sort());
    for (const r of rows) expect(r.rolcanlogin, r.rolname).toBe(false);
    expect(rows.find((r) => r.rolname === 'pgvector_exporter')!.monitor).toBe(true);
    expect(rows.find((r) => r.rolname === 'rag_read_only')!.monitor).toBe(false);
  });

  it('lets rag_read_only read but not insert', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL ROLE rag_read_only');
      await client.query('SELECT count(*) FROM framework_documents');
      await client.query('SAVEPOINT before_insert');
      const err = await pgError(() => insertRow(client, 'framework_documents', VALID.framework_documents!({ documentId: '', conceptId: 0 })));
      expect(err.code).toBe('42501'); // insufficient_privilege
      expect(err.message).toMatch(/permission denied for table framework_documents/);
    } finally {
      await client.query('ROLLBACK');
      client.release();
    }
  });

  it('audits embedding changes without copying the vector, naming the writing role', async () => {
    const client = await db.pool.connect();
    let documentId: string | undefined;
    try {
      // rag_read_write has no privilege on security_audit_log: the SECURITY DEFINER trigger writes it.
      await client.query('SET ROLE rag_read_write');
      [documentId] = await seedDocuments(client, { count: 1, withEmbeddings: true, prefix: 'audited' });
      await client.query("UPDATE chunk_embeddings SET model_name = 'text-embedding-3-small' WHERE document_id = $1", [documentId]);
      await client.query('DELETE FROM framework_documents WHERE id = $1', [documentId]);
    } finally {
      await client.query('RESET ROLE');
      client.release();
    }
    const { rows } = await db.pool.query<{ operation: string; changed_by: string; old_data: Row | null; new_data: Row | null }>(
      `SELECT operation, changed_by, old_data, new_data FROM security_audit_log
       WHERE table_name = 'chunk_embeddings' AND coalesce(new_data, old_data) ->> 'document_id' = $1 ORDER BY id`,
      [documentId],
    );
    expect(rows.map((r) => r.operation)).toEqual(['INSERT', 'UPDATE', 'DELETE']);
    for (const r of rows) {
      expect(r.changed_by).toBe('rag_read_write');
      for (const data of [r.old_data, r.new_data]) {
        if (data === null) continue;
        expect(Object.keys(data)).not.toContain('embedding');
        expect(data.embedding_dims).toBe(3072);
      }
    }
    expect(rows[1]!.new_data!.model_name).toBe('text-embedding-3-small');
  });
});
