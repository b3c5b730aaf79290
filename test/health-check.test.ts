import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminQuery, useTestDatabase } from './helpers/database.js';
import { seedDocuments } from './helpers/seed.js';

/** system_health_check() of 005_views_functions.sql, on a real database (issue 2, "Done when"). */

const STATUSES = ['HEALTHY', 'WARNING', 'CRITICAL'];
const COMPONENTS = [
  'database_connections', 'cache_hit_ratio', 'vector_index', 'invalid_indexes', 'embedding_completeness',
  'embedding_quality', 'statistics_freshness', 'dead_tuples', 'query_performance',
];

interface HealthRow {
  component: string;
  status: string;
  details: string;
}

async function healthCheck(db: pg.Pool | pg.PoolClient): Promise<Map<string, HealthRow>> {
  const { rows } = await db.query<HealthRow>('SELECT component, status, details FROM system_health_check()');
  return new Map(rows.map((r) => [r.component, r]));
}

/** Runs fn in a transaction that is always rolled back (DROP INDEX and test rows vanish). */
async function rolledBack<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    return await fn(client);
  } finally {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
  }
}

describe('system_health_check()', () => {
  const db = useTestDatabase();

  it('keeps the signature of the original design', async () => {
    const { rows } = await db.pool.query<{ result: string }>(
      "SELECT pg_get_function_result(p.oid) AS result FROM pg_proc p WHERE p.proname = 'system_health_check' AND p.pronargs = 0",
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.result).toBe('TABLE(component text, status text, details text)');
  });

  it('reports every component with a known status on the freshly migrated database', async () => {
    const health = await healthCheck(db.pool);
    expect([...health.keys()].sort()).toEqual([...COMPONENTS].sort());
    for (const row of health.values()) {
      expect(STATUSES, `${row.component}: ${row.status}`).toContain(row.status);
      expect(row.details, row.component).not.toMatch(/^check failed/);
    }
    // Nothing is wrong with an empty, freshly migrated schema.
    for (const component of ['vector_index', 'invalid_indexes', 'embedding_completeness', 'embedding_quality', 'statistics_freshness']) {
      expect(health.get(component)!.status, component).toBe('HEALTHY');
    }
  });

  it('reports the vector index CRITICAL once idx_embeddings_vector is dropped', async () => {
    const status = await rolledBack(db.pool, async (client) => {
      await client.query('DROP INDEX idx_embeddings_vector');
      return (await healthCheck(client)).get('vector_index')!;
    });
    expect(status.status).toBe('CRITICAL');
    expect(status.details).toMatch(/missing/);
    expect((await healthCheck(db.pool)).get('vector_index')!.status).toBe('HEALTHY');
  });

  it('reports embedding completeness WARNING for a document without an embedding, CRITICAL above 10 %', async () => {
    const [warning, critical] = await rolledBack(db.pool, async (client) => {
      await seedDocuments(client, { count: 20, withEmbeddings: true });
      await seedDocuments(client, { count: 1 });
      const warning = (await healthCheck(client)).get('embedding_completeness')!;
      await seedDocuments(client, { count: 5 }); // 6 of 26 missing: 23 %
      return [warning, (await healthCheck(client)).get('embedding_completeness')!];
    });
    expect(warning.status).toBe('WARNING');
    expect(warning.details).toMatch(/^1 of 21 documents have no embedding/);
    expect(critical.status).toBe('CRITICAL');
    expect(critical.details).toMatch(/^6 of 26 documents/);
  });

  it('above rag.health_exact_count_max_rows estimates completeness from the recent documents and a sample (migration 008)', async () => {
    const [exact, estimated, withRecent] = await rolledBack(db.pool, async (client) => {
      await seedDocuments(client, { count: 40, withEmbeddings: true });
      await seedDocuments(client, { count: 3 });
      await client.query("UPDATE framework_documents SET created_at = now() - interval '2 hours'");
      await client.query('ANALYZE framework_documents'); // the catalog's row count the bound is judged by
      const exact = (await healthCheck(client)).get('embedding_completeness')!;
      // a bound below the table's size; a sample of the whole table (100 %), so the estimate is deterministic here
      await client.query("SET LOCAL rag.health_exact_count_max_rows = 10; SET LOCAL rag.health_sample_rows = 1000000");
      const estimated = (await healthCheck(client)).get('embedding_completeness')!;
      await seedDocuments(client, { count: 1 }); // created now: in the recent window, counted exactly
      return [exact, estimated, (await healthCheck(client)).get('embedding_completeness')!];
    });
    const [, missing, documents] = /^(\d+) of (\d+) documents have no embedding/.exec(exact.details)!;
    expect(exact.status, exact.details).toBe("WARNING");
    expect(estimated.status).toBe('WARNING');
    expect(estimated.details).toMatch(new RegExp(`^about ${missing} of about ${documents} documents have no embedding .*estimated: the 0 documents of the last 01:00:00 counted, ${missing} of ${documents} sampled older ones missing`));
    expect(withRecent.status, withRecent.details).toBe('WARNING'); // 4 of 44: below 10 %
    expect(withRecent.details).toMatch(/the 1 documents of the last 01:00:00 counted/);
  });

  it("the estimate's sample (runs of consecutive ids, migration 010) leaves out the recent documents and scales the sampled ones", async () => {
    // A sample of about a quarter of the table: which documents it holds is random (a call may even draw
    // no page of so small a table: 20 calls each), what it finds in them is not.
    const [recentOnly, allOld] = await rolledBack(db.pool, async (client) => {
      await seedDocuments(client, { count: 200, withEmbeddings: true });
      await client.query("UPDATE framework_documents SET created_at = now() - interval '2 hours'");
      await seedDocuments(client, { count: 5 }); // recent and missing: counted exactly, never in the sample
      await client.query('ANALYZE framework_documents');
      await client.query('SET LOCAL rag.health_exact_count_max_rows = 10; SET LOCAL rag.health_sample_rows = 50');
      const recentOnly: string[] = [];
      for (let i = 0; i < 20; i++) recentOnly.push((await healthCheck(client)).get('embedding_completeness')!.details);
      await client.query("DELETE FROM chunk_embeddings; UPDATE framework_documents SET created_at = now() - interval '2 hours'");
      await client.query('ANALYZE framework_documents');
      const allOld: string[] = [];
      for (let i = 0; i < 20; i++) allOld.push((await healthCheck(client)).get('embedding_completeness')!.details);
      return [recentOnly, allOld];
    });
    for (const details of recentOnly) {
      expect(details).toMatch(/^about 5 of about 205 documents have no embedding .*the 5 documents of the last 01:00:00 counted, 0 of \d+ sampled older ones missing/);
    }
    expect(recentOnly.some((details) => /, 0 of [1-9]\d* sampled/.test(details)), recentOnly.join('\n')).toBe(true);
    for (const details of allOld.filter((d) => !/, 0 of 0 sampled/.test(d))) {
      const [, missing, sampled] = /the 0 documents of the last 01:00:00 counted, (\d+) of (\d+) sampled older ones missing/.exec(details)!;
      expect(missing, details).toBe(sampled);
      expect(details).toMatch(/^about 205 of about 205 documents have no embedding/);
    }
    expect(allOld.some((details) => !/, 0 of 0 sampled/.test(details)), allOld.join('\n')).toBe(true);
  });

  it('reports invalid_indexes CRITICAL for the leftover of a failed CREATE UNIQUE INDEX CONCURRENTLY', async () => {
    // Every seeded document of one call shares its source_file, so a unique index on it fails,
    // and CONCURRENTLY leaves the half-built index behind, marked invalid.
    const prefix = `dup-${randomBytes(3).toString('hex')}`;
    const ids = await seedDocuments(db.pool, { count: 2, withEmbeddings: true, prefix });
    try {
      await expect(db.pool.query('CREATE UNIQUE INDEX CONCURRENTLY idx_test_leftover ON framework_documents (source_file)')).rejects.toThrow(
        /could not create unique index/,
      );
      const row = (await healthCheck(db.pool)).get('invalid_indexes')!;
      expect(row.status).toBe('CRITICAL');
      expect(row.details).toContain('idx_test_leftover (on framework_documents)');
    } finally {
      await db.pool.query('DROP INDEX IF EXISTS idx_test_leftover');
      await db.pool.query('DELETE FROM framework_documents WHERE id = ANY ($1)', [ids]);
    }
    expect((await healthCheck(db.pool)).get('invalid_indexes')!.status).toBe('HEALTHY');
  });

  describe('as a login role that is only a member of pgvector_exporter', () => {
    // Roles are cluster-wide and test files run in parallel: a unique name, dropped afterwards.
    const login = `health_login_${randomBytes(4).toString('hex')}`;
    beforeAll(async () => {
      await adminQuery(`CREATE ROLE ${login} LOGIN IN ROLE pgvector_exporter`);
    });
    afterAll(async () => {
      await adminQuery(`DROP ROLE IF EXISTS ${login}`);
    });

    it('runs every check without a privilege error', async () => {
      const { rows } = await db.pool.query<{ roles: string[] }>(
        "SELECT array_agg(b.rolname::text ORDER BY b.rolname) AS roles FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = $1",
        [login],
      );
      expect(rows[0]!.roles).toEqual(['pgvector_exporter']);

      const health = await rolledBack(db.pool, async (client) => {
        await seedDocuments(client, { count: 3, withEmbeddings: true });
        await client.query('ANALYZE framework_documents'); // a row count in the catalog: the estimate's path below needs one
        await client.query(`SET LOCAL ROLE ${login}`);
        const { rows: who } = await client.query<{ user: string; superuser: string }>(
          "SELECT current_user AS user, current_setting('is_superuser') AS superuser",
        );
        expect(who[0]).toEqual({ user: login, superuser: 'off' });
        const exact = await healthCheck(client);
        // the estimate's path too (migration 010's sample: TABLESAMPLE, pg_relation_size, the runs)
        await client.query('SET LOCAL rag.health_exact_count_max_rows = 0');
        return [exact, await healthCheck(client)] as const;
      });
      const [exact, estimated] = health;
      for (const checked of health) {
        expect([...checked.keys()].sort()).toEqual([...COMPONENTS].sort());
        for (const row of checked.values()) {
          expect(STATUSES).toContain(row.status);
          expect(row.details, row.component).not.toMatch(/^check failed/);
        }
      }
      expect(exact.get('vector_index')!.status).toBe('HEALTHY');
      expect(exact.get('embedding_completeness')!.details).toMatch(/^all \d+ documents have an embedding/);
      expect(estimated.get('embedding_completeness')!.details).toMatch(/^about 0 of about \d+ documents have no embedding .*estimated/);
    });
  });
});
