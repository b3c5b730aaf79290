import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import {
  describeDatabaseError,
  isConnectionBroken,
  isLockTimeout,
  isStatementTimeout,
  isTransientDatabaseError,
} from '../src/db/errors.js';
import { connect, useDatabaseClient } from './helpers/collector-context.js';
import type { TestDatabase } from './helpers/database.js';

/** The error a statement fails with on the real server. */
async function failureOf(client: pg.Client, sql: string): Promise<unknown> {
  return client.query(sql).then(
    () => {
      throw new Error(`${sql} succeeded`);
    },
    (err: unknown) => err,
  );
}

describe('db/errors: the named predicates read real server errors', () => {
  let db: TestDatabase;
  let client: pg.Client;
  useDatabaseClient((opened) => ({ db, client } = opened));

  it('statement_timeout: isStatementTimeout, not transient, the connection stays usable', async () => {
    await client.query("SET statement_timeout = '50ms'");
    const err = await failureOf(client, 'SELECT pg_sleep(5)');
    await client.query('RESET statement_timeout');
    expect(isStatementTimeout(err)).toBe(true);
    expect(isLockTimeout(err)).toBe(false);
    expect(isTransientDatabaseError(err)).toBe(false);
    expect(isConnectionBroken(err)).toBe(false);
    expect(describeDatabaseError(err)).toMatch(/^statement cancelled by statement_timeout: /);
  });

  it('lock_timeout: isLockTimeout', async () => {
    const holder = await connect(db.url, 'lock-holder');
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE key_concepts IN ACCESS EXCLUSIVE MODE');
      await client.query("SET lock_timeout = '50ms'");
      const err = await failureOf(client, 'SELECT count(*) FROM key_concepts');
      expect(isLockTimeout(err)).toBe(true);
      expect(isStatementTimeout(err)).toBe(false);
      expect(describeDatabaseError(err)).toMatch(/^lock not available within lock_timeout: /);
    } finally {
      await client.query('RESET lock_timeout');
      await holder.end();
    }
  });

  it('a cancelled statement (pg_cancel_backend) reads as a cancellation on request', async () => {
    const victim = await connect(db.url, 'cancel-me');
    try {
      const sleeping = failureOf(victim, 'SELECT pg_sleep(30)');
      await expect
        .poll(async () => (await client.query("SELECT pg_cancel_backend(pid) AS c FROM pg_stat_activity WHERE application_name = 'cancel-me' AND state = 'active'")).rowCount, { timeout: 10_000 })
        .toBe(1);
      const err = await sleeping;
      expect(isStatementTimeout(err)).toBe(true);
      expect(describeDatabaseError(err)).toMatch(/^statement cancelled on request: /);
    } finally {
      await victim.end();
    }
  });

  it('permission denied: named, not broken; a refused connection: transient and broken', async () => {
    const role = `errors_nobody_${randomBytes(4).toString('hex')}`;
    await client.query(`CREATE ROLE ${role}`);
    try {
      await client.query(`SET ROLE ${role}`);
      const denied = await failureOf(client, 'SELECT * FROM framework_documents');
      await client.query('RESET ROLE');
      expect(describeDatabaseError(denied)).toMatch(/^permission denied: /);
      expect(isConnectionBroken(denied)).toBe(false);
    } finally {
      await client.query('RESET ROLE');
      await client.query(`DROP ROLE ${role}`);
    }
    const refused = await new pg.Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 5000 }).connect().catch((err: unknown) => err);
    expect(isTransientDatabaseError(refused)).toBe(true);
    expect(isConnectionBroken(refused)).toBe(true);
    expect(describeDatabaseError(refused, '127.0.0.1:1')).toBe('cannot reach PostgreSQL (127.0.0.1:1): connection refused');
  });
});
