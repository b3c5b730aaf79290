import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionBudget, limitPool, sessionTerminator } from '../src/db/connection-budget.js';
import { eventually } from './helpers/exporter.js';
import { useTestDatabase } from './helpers/database.js';

/**
 * The cap auto-discovery's per-database pools share, counted where it matters: in pg_stat_activity. A
 * connection its user destroys in the middle of a statement (a poll abandoned at its deadline or at
 * stop) closes its socket at once, but its backend runs on until it next talks to the client: its share
 * must not go to another pool before the server has ended that session.
 */

const db = useTestDatabase();
const APP = `budget test ${process.pid}`;
let admin: pg.Pool;
const pools: pg.Pool[] = [];

beforeAll(() => {
  admin = new pg.Pool({ connectionString: db.url, max: 2 });
  admin.on('error', () => undefined);
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((pool) => pool.end().catch(() => undefined)));
  await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [APP]);
});
afterAll(async () => {
  await admin?.end();
});

function limited(budget: ConnectionBudget): pg.Pool {
  const pool = new pg.Pool({ connectionString: db.url, max: 1, application_name: APP, connectionTimeoutMillis: 10_000 });
  pool.on('error', () => undefined);
  pools.push(pool);
  return limitPool(pool, budget, 10_000, sessionTerminator(admin, APP, 10_000));
}

async function sessions(): Promise<number> {
  const { rows } = await admin.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [APP]);
  return rows[0]!.n;
}

describe('ConnectionBudget with limitPool', () => {
  it('keeps a destroyed connection\'s share until the server has ended its session', async () => {
    const budget = new ConnectionBudget(1);
    const a = limited(budget);
    const b = limited(budget);
    const client = await a.connect();
    // A statement the server runs on after the client's socket is gone: pg_sleep never writes to it.
    const sleeping = client.query('SELECT pg_sleep(60)').catch(() => undefined);
    await eventually(async () => {
      const { rows } = await admin.query("SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE '%pg_sleep%'", [APP]);
      return rows.length === 1;
    }, 'the pg_sleep statement running');
    // What the poller does with a poll abandoned mid-statement.
    client.release(true);
    const other = await b.connect();
    try {
      expect(await sessions()).toBe(1);
      expect(budget.inUse).toBe(1);
    } finally {
      other.release();
    }
    await sleeping;
  });

  it('passes a share from an idle pool to a waiting one, one session at a time', async () => {
    const budget = new ConnectionBudget(1);
    const a = limited(budget);
    const b = limited(budget);
    await a.query('SELECT 1');
    expect(await sessions()).toBe(1);
    // b waits for the share: a's idle connection is closed for it, and only then b's opens.
    await b.query('SELECT 1');
    expect(await sessions()).toBe(1);
    expect(budget.inUse).toBe(1);
  });
});
