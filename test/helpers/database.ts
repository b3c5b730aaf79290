import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, inject } from 'vitest';

/** A database of the test file's own, cloned from the migrated template (or empty). */
export interface TestDatabase {
  name: string;
  /** Superuser URL to this database. */
  url: string;
  /** A superuser pool on this database, closed by drop(). */
  pool: pg.Pool;
  drop(): Promise<void>;
}

export function adminUrl(database = 'postgres'): string {
  const url = new URL(inject('pgAdminUrl'));
  url.pathname = `/${database}`;
  return url.toString();
}

export async function adminQuery<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end();
  }
}

/**
 * Creates a fresh database: `migrated` (default) clones the template with the whole schema applied,
 * otherwise an empty database (for migrate's own tests).
 */
export async function createTestDatabase(options: { migrated?: boolean } = {}): Promise<TestDatabase> {
  const name = `test_${randomBytes(6).toString('hex')}`;
  const template = options.migrated === false ? 'template0' : inject('pgTemplate');
  await adminQuery(`CREATE DATABASE ${name} TEMPLATE ${template}`);
  const url = adminUrl(name);
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  return {
    name,
    url,
    pool,
    drop: async () => {
      await pool.end();
      await adminQuery(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

/**
 * A database of the enclosing file's or describe block's own: created by a beforeAll hook, dropped by an
 * afterAll hook (registered first, so it runs after the block's own afterAll hooks). The returned object
 * is filled in when the hook has run: read its fields inside tests and hooks only.
 */
export function useTestDatabase(options: { migrated?: boolean } = {}): TestDatabase {
  const db = {} as TestDatabase;
  beforeAll(async () => {
    Object.assign(db, await createTestDatabase(options));
  });
  afterAll(async () => {
    if ('drop' in db) await db.drop();
  });
  return db;
}
