import { readFileSync } from 'node:fs';
import type pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { embeddingsCollector } from '../src/collectors/embeddings.js';
import { healthCollector } from '../src/collectors/health.js';
import { indexesCollector } from '../src/collectors/indexes.js';
import { queryLogCollector } from '../src/collectors/query-log.js';
import { ADOPT_THROUGH } from '../src/db/adopt.js';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { runCli } from './helpers/cli.js';
import { collectorContext, connect, valueOf } from './helpers/collector-context.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

/** `migrate --adopt` on a database built with the specification's own DDL (test/fixtures/specification-schema.sql). */
const SPECIFICATION = readFileSync(new URL('./fixtures/specification-schema.sql', import.meta.url), 'utf8');

const TABLES = ['framework_documents', 'chunk_embeddings', 'framework_metadata', 'key_concepts', 'document_concepts', 'source_lines', 'security_audit_log'];

/** 60 documents, 50 of them embedded (3,072 random floats each), metadata, concepts and line ranges. */
const SEED = `
INSERT INTO framework_documents (chunk_id, source_file, section, title, content)
  SELECT 'chunk-' || g, 'book_' || (g % 3) || '.md', 'section ' || (g % 5), 'Title ' || g, 'Framework content number ' || g
    FROM generate_series(1, 60) g;
INSERT INTO chunk_embeddings (document_id, embedding)
  SELECT d.id, ARRAY(SELECT random() - 0.5 + 0 * length(d.chunk_id) FROM generate_series(1, 3072))::vector(3072)
    FROM framework_documents d WHERE d.chunk_id::text <> ALL (ARRAY(SELECT 'chunk-' || g FROM generate_series(51, 60) g));
INSERT INTO framework_metadata (document_id, character_count, word_count, chunk_type, framework_name, validation_passed)
  SELECT id, 300, 50, 'atomic_framework', 'Offer', true FROM framework_documents;
INSERT INTO key_concepts (concept_name) VALUES ('Value Equation'), ('Grand Slam Offer');
INSERT INTO document_concepts (document_id, concept_id) SELECT d.id, k.id FROM framework_documents d CROSS JOIN key_concepts k WHERE d.chunk_id LIKE 'chunk-1%';
INSERT INTO source_lines (document_id, start_line, end_line) SELECT id, 1, 40 FROM framework_documents;`;

async function dataFingerprint(client: pg.Client): Promise<Record<string, string>> {
  const fingerprint: Record<string, string> = {};
  for (const table of TABLES) {
    const { rows } = await client.query<{ n: string; sum: string | null }>(
      `SELECT count(*) AS n, md5(string_agg(t::text, '|' ORDER BY t::text)) AS sum FROM ${table} t`,
    );
    fingerprint[table] = `${rows[0]!.n} rows, md5 ${rows[0]!.sum}`;
  }
  return fingerprint;
}

/** The schema as the catalog sees it: every relation, function and trigger of public, with definitions. */
async function schemaFingerprint(client: pg.Client): Promise<string[]> {
  const { rows } = await client.query<{ line: string }>(`
    SELECT 'rel ' || c.relname || ' ' || c.relkind::text || ' ' || coalesce(pg_get_indexdef(c.oid), '') AS line
      FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL SELECT 'fn ' || p.proname || ' ' || md5(p.prosrc) FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL SELECT 'trg ' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
               WHERE c.relnamespace = 'public'::regnamespace AND NOT t.tgisinternal
    UNION ALL SELECT 'con ' || conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
    UNION ALL SELECT 'acl ' || c.relname || ' ' || coalesce(c.relacl::text, '') FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
    ORDER BY 1`);
  return rows.map((r) => r.line);
}

describe('migrate --adopt on a database built from the specification', () => {
  let db: TestDatabase;
  let client: pg.Client;
  beforeEach(async () => {
    db = await createTestDatabase({ migrated: false });
    client = await connect(db.url, 'specification-builder');
    await client.query(SPECIFICATION);
    await client.query(SEED);
  });
  afterEach(async () => {
    await client.end();
    await db.drop();
  });

  it("the specification's own vector index cannot be built at 3,072 dimensions (why adopt must add one)", async () => {
    await expect(
      client.query('CREATE INDEX idx_embeddings_vector ON chunk_embeddings USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)'),
    ).rejects.toThrow(/cannot have more than 2000 dimensions/);
  });

  it('plain migrate fails on the existing objects; --dry-run prints the plan and changes nothing', async () => {
    const plain = await runCli(['migrate', '--database-url', db.url]);
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/002_core_tables\.sql failed .*already exists/);
    // 001 (CREATE EXTENSION IF NOT EXISTS, idempotent) went through and is recorded: adopt takes the rest.

    const before = await schemaFingerprint(client);
    const data = await dataFingerprint(client);
    const dry = await runCli(['migrate', '--adopt', '--dry-run', '--database-url', db.url]);
    expect(dry.stderr).toBe('');
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/^ {2}keep +table framework_documents: kept as built: .*constraints of the migrations not present \(not added\): chk_documents_content_not_empty/m);
    expect(dry.stdout).toMatch(/^ {2}keep +table key_concepts: the specification's shape, kept as built \(column id is uuid, expected integer/m);
    expect(dry.stdout).toMatch(/^ {2}keep +index idx_embeddings_model_name: present as idx_embeddings_model$/m);
    expect(dry.stdout).toMatch(/^ {2}create +index idx_embeddings_vector: USING hnsw \(\(\(embedding\)::halfvec\(3072\)\) halfvec_cosine_ops\)/m);
    expect(dry.stdout).toMatch(/^ {2}create +table query_performance_log$/m);
    expect(dry.stdout).toMatch(/^ {2}replace +function system_health_check\(\)/m);
    expect(dry.stdout).toMatch(/^ {2}skip +trigger trg_audit_chunk_embeddings: the specification's audit trail is kept/m);
    expect(dry.stdout).toMatch(/^ {2}run +GRANT USAGE, SELECT \(line \d+\): not granted on key_concepts_id_seq, source_lines_id_seq/m);
    // Adoption plans the migrations a hand-built database can match; later ones (007) run as plain migrations.
    expect(dry.stdout).toContain(`would record as applied: ${loadMigrations().slice(1).filter((m) => m.version <= ADOPT_THROUGH).map((m) => m.file).join(', ')}`);
    expect(await schemaFingerprint(client)).toEqual(before);
    expect(await dataFingerprint(client)).toEqual(data);
  });

  it('adopts: data untouched, vector index built, the RAG collectors all work afterwards, then migrate is up to date', async () => {
    const data = await dataFingerprint(client);
    const result = await runCli(['migrate', '--adopt', '--database-url', db.url]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('adopted: recorded as applied: 001_extensions.sql');
    expect(await dataFingerprint(client)).toEqual(data);

    const index = await client.query<{ am: string; valid: boolean; def: string }>(`
      SELECT am.amname AS am, x.indisvalid AS valid, pg_get_indexdef(x.indexrelid) AS def
        FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am am ON am.oid = i.relam
       WHERE i.relname = 'idx_embeddings_vector'`);
    expect(index.rows).toEqual([expect.objectContaining({ am: 'hnsw', valid: true })]);
    expect(index.rows[0]!.def).toContain('halfvec(3072)');
    const versions = await client.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.rows.map((r) => r.version)).toEqual(loadMigrations().map((m) => m.version));
    const again = await runCli(['migrate', '--database-url', db.url]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('database is up to date');

    // The search service keeps working on the specification's tables: inserts pass its audit trigger.
    await client.query("INSERT INTO framework_documents (chunk_id, source_file, section, title, content) VALUES ('after-adopt', 'book_0.md', 's', 't', 'new content')");
    const audit = await client.query("SELECT 1 FROM security_audit_log WHERE new_values->>'chunk_id' = 'after-adopt'");
    expect(audit.rowCount).toBe(1);
    await client.query("INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) VALUES ('vector_search', 12.5, 10)");

    const ctx = collectorContext(client);
    const health = await healthCollector().collect(ctx);
    expect(valueOf(health, 'rag_health_check_status', { component: 'vector_index', status: 'HEALTHY' })).toBe(1);
    expect(valueOf(health, 'rag_health_check_status', { component: 'embedding_completeness', status: 'CRITICAL' })).toBe(1);
    const embeddings = await embeddingsCollector({ dimensions: 3072, models: ['text-embedding-3-large'], exactIntervalMs: 3_600_000 }).collect(ctx);
    expect(valueOf(embeddings, 'rag_documents_missing_embedding')).toBe(11);
    const indexes = await indexesCollector({ schema: 'public', tables: ['chunk_embeddings'], expectedIndexes: ['idx_embeddings_vector'] }).collect(ctx);
    expect(valueOf(indexes, 'pg_index_expected_present', { indexrelname: 'idx_embeddings_vector' })).toBe(1);
    const queryLog = await queryLogCollector({ buckets: [0.1, 1], queryTypes: ['vector_search'], lookback: 3_600_000, batchRows: 1000 }).collect(ctx);
    expect(queryLog.length).toBeGreaterThan(0);
    const roles = await client.query("SELECT has_function_privilege('pgvector_exporter', 'system_health_check()', 'EXECUTE') AS ok");
    expect(roles.rows[0]!.ok).toBe(true);
  });

  it('refuses with a list when an object conflicts, and changes nothing', async () => {
    // The log table the specification's view reads, shaped as that view reads it.
    await client.query('CREATE TABLE query_performance_log (id serial PRIMARY KEY, query_type text, duration float8, "timestamp" timestamptz)');
    await client.query("CREATE FUNCTION set_updated_at() RETURNS integer LANGUAGE sql AS 'SELECT 1'");
    const before = await schemaFingerprint(client);
    const data = await dataFingerprint(client);
    const result = await runCli(['migrate', '--adopt', '--database-url', db.url]);
    expect(result.code).toBe(1);
    const conflicts = result.stderr.trim().split('\n');
    expect(conflicts).toEqual([
      'conflict: 002_core_tables.sql: function set_updated_at() returns integer, the migrations\' returns trigger',
      expect.stringMatching(/^conflict: 003_log_tables\.sql: table query_performance_log: column id is integer, expected bigint; column query_type is text, expected character varying\(50\); column duration_ms \(double precision\) is missing; .*column ts \(timestamp with time zone\) is missing/),
      'migrate --adopt: 2 conflicting object(s); nothing was changed (rename or drop them, or fix them by hand, then run again)',
    ]);
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(await schemaFingerprint(client)).toEqual(before);
    expect(await dataFingerprint(client)).toEqual(data);
    expect((await client.query("SELECT to_regclass('schema_migrations') AS t")).rows[0]!.t).toBeNull();
  });
});

describe('migrate --adopt on a database the migrations built (schema_migrations lost)', () => {
  it('recognises every object as the migrations\' own: nothing to create, replace or rebuild', async () => {
    const db = await createTestDatabase();
    try {
      await db.pool.query('DROP TABLE schema_migrations');
      const result = await runCli(['migrate', '--adopt', '--database-url', db.url]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(result.stdout).not.toMatch(/^ {2}(create|replace|rebuild|skip) /m);
      expect(result.stdout).toMatch(/^ {2}keep +index idx_embeddings_vector$/m);
      const versions = await db.pool.query('SELECT version FROM schema_migrations');
      expect(versions.rowCount).toBe(loadMigrations().length);
      const again = await runCli(['migrate', '--adopt', '--database-url', db.url]);
      expect(again.stdout).toContain('nothing to adopt');
    } finally {
      await db.drop();
    }
  });

  it('a database migrated through 008 only: adopt records 001-008 as applied and then applies 009 and later', async () => {
    const db = await createTestDatabase({ migrated: false });
    const client = await connect(db.url, 'adopt-through-008');
    try {
      const all = loadMigrations();
      const through008 = all.filter((m) => m.version <= '008');
      expect(through008.at(-1)!.version).toBe('008');
      await migrate(client, through008);
      await client.query('DROP TABLE schema_migrations');
      const result = await runCli(['migrate', '--adopt', '--database-url', db.url]);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      // 008's health check is in effect, 009's is not: recorded through 008, the rest applied, not recorded unapplied.
      expect(result.stdout).toContain(`recorded as applied: ${through008.map((m) => m.file).join(', ')}\n`);
      for (const later of all.filter((m) => m.version > '008')) expect(result.stdout).toContain(`applied ${later.file}`);
      const after = (await client.query<{ version: string }>('SELECT version FROM schema_migrations ORDER BY version')).rows.map((r) => r.version);
      expect(after).toEqual(all.map((m) => m.version));
      const health = await client.query<{ component: string }>('SELECT component FROM system_health_check()');
      expect(health.rowCount).toBeGreaterThan(0);
    } finally {
      await client.end();
      await db.drop();
    }
  });
});
