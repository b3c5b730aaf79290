import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { loadMigrations, migrate } from '../src/db/migrate.js';
import { splitSqlScript } from '../src/db/sql-script.js';
import { adminQuery, createTestDatabase, useTestDatabase } from './helpers/database.js';
import { runCli } from './helpers/cli.js';
import { PASSWORD_CHECKED_ROLE } from './helpers/server.js';

describe('pgvector-exporter migrate', () => {
  const db = useTestDatabase({ migrated: false });

  it('creates everything on an empty database, then applies nothing on a second run', async () => {
    const first = await runCli(['migrate', '--database-url', db.url]);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    for (const m of loadMigrations()) expect(first.stdout).toContain(`applied ${m.file}`);

    const { rows } = await db.pool.query<{ relname: string }>(
      "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r','v','i','p','I')",
    );
    const names = rows.map((r) => r.relname);
    for (const expected of [
      'framework_documents', 'chunk_embeddings', 'framework_metadata', 'key_concepts', 'document_concepts', 'source_lines',
      'query_performance_log', 'query_performance_archive', 'maintenance_log', 'security_audit_log', 'schema_migrations',
      'performance_dashboard', 'idx_embeddings_vector',
    ]) {
      expect(names).toContain(expected);
    }

    const second = await runCli(['migrate', '--database-url', db.url]);
    expect(second.code).toBe(0);
    expect(second.stdout).not.toMatch(/^applied \d/m);
    expect(second.stdout).toContain('database is up to date');
  });

  it('takes the connection from POSTGRES_* variables when no URL is given', async () => {
    const url = new URL(db.url);
    const result = await runCli(['migrate'], {
      POSTGRES_HOST: url.hostname,
      POSTGRES_PORT: url.port,
      POSTGRES_DB: db.name,
      POSTGRES_USER: 'postgres',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('(from POSTGRES_*)');
  });
});

describe('migrate failures: one clear line, non-zero exit, no stack trace', () => {
  it('names an unreachable host', async () => {
    const result = await runCli(['migrate', '--database-url', 'postgresql://postgres:s3cret@127.0.0.1:1/nowhere']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('cannot reach PostgreSQL');
    expect(result.stderr).not.toContain('s3cret');
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('names a wrong password', async () => {
    const role = `pw_${Date.now()}`;
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PASSWORD_CHECKED_ROLE}') THEN CREATE ROLE ${PASSWORD_CHECKED_ROLE} NOLOGIN; END IF; END $$`);
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'right' IN ROLE ${PASSWORD_CHECKED_ROLE}`);
    const url = new URL(inject('pgAdminUrl'));
    url.username = role;
    url.password = 'wrong-secret';
    const result = await runCli(['migrate', '--database-url', url.toString()]);
    await adminQuery(`DROP ROLE ${role}`);
    // The local cluster's pg_hba asks members of password_checked for a password; another server may trust them.
    if (inject('pgClusterDir')) {
      expect(result.stderr).toContain('password authentication failed');
    }
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toContain('wrong-secret');
  });

  it('names a database without pgvector', async () => {
    // A server without the extension cannot be made here, so the check is exercised through its query:
    // migrate refuses before touching anything when pg_available_extensions lacks "vector".
    const db = await createTestDatabase({ migrated: false });
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await client.query("CREATE TEMP VIEW pg_available_extensions AS SELECT * FROM pg_catalog.pg_available_extensions WHERE name <> 'vector'");
      await expect(migrate(client)).rejects.toThrow(/pgvector extension \("vector"\) is not installed/);
      const tables = await client.query("SELECT 1 FROM pg_tables WHERE tablename = 'schema_migrations'");
      expect(tables.rowCount).toBe(0);
    } finally {
      await client.end();
      await db.drop();
    }
  });

  it('names a malformed DATABASE_URL with exit code 2', async () => {
    const result = await runCli(['migrate'], { DATABASE_URL: 'mysql://root:pw@db/x' });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DATABASE_URL');
    expect(result.stderr).not.toContain(':pw@');
  });

  it('rolls a failing migration back whole and names the file and the statement', async () => {
    const db = await createTestDatabase({ migrated: false });
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    writeFileSync(join(dir, '001_ok.sql'), 'CREATE TABLE kept (id int);');
    writeFileSync(join(dir, '002_broken.sql'), "CREATE TABLE half_done (id int);\n\nINSERT INTO no_such_table VALUES (1);\n");
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      await expect(migrate(client, loadMigrations(`${dir}/`))).rejects.toThrow(/002_broken\.sql failed at line 3: .*no_such_table.*\n\s+statement: INSERT INTO no_such_table/s);
      const tables = await client.query<{ relname: string }>("SELECT relname FROM pg_class WHERE relname IN ('kept','half_done')");
      expect(tables.rows.map((r) => r.relname)).toEqual(['kept']);
      const versions = await client.query<{ version: string }>('SELECT version FROM schema_migrations');
      expect(versions.rows.map((r) => r.version)).toEqual(['001']);
    } finally {
      await client.end();
      await db.drop();
    }
  });
});

describe('splitSqlScript', () => {
  it('splits at top-level semicolons only, with line numbers', () => {
    const script = "-- header; not a statement\nSELECT 'a;b';\nDO $$ BEGIN PERFORM 1; END $$;\n/* c; */ SELECT $tag$x;y$tag$;";
    const statements = splitSqlScript(script);
    expect(statements.map((s) => s.line)).toEqual([1, 3, 4]);
    expect(statements[1]!.text).toBe('DO $$ BEGIN PERFORM 1; END $$');
    expect(statements).toHaveLength(3);
  });
});

