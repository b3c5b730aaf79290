import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Collector } from '../src/collectors/collector.js';
import { createLogger } from '../src/log.js';
import { registerSelfMetrics } from '../src/metrics/self-metrics.js';
import { Poller } from '../src/poller/poller.js';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';
import { sampleValue } from './helpers/exporter.js';

/** Collectors that misbehave on purpose, against the real database. */
const gauge = (name: string, sql: string): Collector => ({
  name,
  families: [{ name: `test_${name}`, help: `${name} test gauge`, type: 'gauge', labelNames: [] }],
  async collect({ query }) {
    const [row] = await query<{ v: number }>(sql);
    return [{ family: `test_${name}`, value: Number(row!.v) }];
  },
});

describe('poller', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 3, application_name: 'pgvector-exporter' });
  });
  afterAll(async () => {
    await pool.end();
    await db.drop();
  });

  async function pollOnce(collectors: Collector[], timeoutMs = 500) {
    const registry = new Registry();
    const poller = new Poller({
      collectors,
      schedule: () => ({ intervalMs: 60_000, timeoutMs }),
      pool,
      log: createLogger('silent'),
      observer: registerSelfMetrics(registry),
      maxBackoffMs: 1000,
    });
    await poller.pollAll();
    return { text: poller.render(), self: await registry.metrics(), ready: poller.ready() };
  }

  it('cuts a hanging statement with the collector timeout; the others still publish', async () => {
    const { text, self, ready } = await pollOnce([gauge('slow', 'SELECT pg_sleep(30) AS v'), gauge('fine', 'SELECT 42 AS v')], 300);
    expect(ready).toBe(true);
    expect(sampleValue(text, 'test_fine')).toBe(42);
    expect(sampleValue(text, 'test_slow')).toBeUndefined();
    expect(sampleValue(self, 'pgvector_exporter_collector_success', { collector: 'slow' })).toBe(0);
    expect(sampleValue(self, 'pgvector_exporter_collector_success', { collector: 'fine' })).toBe(1);
    const lingering = await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'");
    expect(lingering.rows[0].n).toBe(0);
  });

  it('isolates a collector that fails (missing table) from the others', async () => {
    const { text, self } = await pollOnce([gauge('broken', 'SELECT count(*) AS v FROM no_such_table'), gauge('fine', 'SELECT 7 AS v')]);
    expect(sampleValue(text, 'test_fine')).toBe(7);
    expect(sampleValue(self, 'pgvector_exporter_collector_success', { collector: 'broken' })).toBe(0);
    expect(sampleValue(self, 'pgvector_exporter_collector_last_success_timestamp_seconds', { collector: 'broken' })).toBe(0);
  });

  it('each poll runs under its own collector\'s timeouts, also on a connection another collector set up', async () => {
    // One connection for two collectors with different timeouts: the settings follow the collector,
    // whether or not the connection was already set up (by the same collector or the other).
    const single = new pg.Pool({ connectionString: db.url, max: 1, application_name: 'pgvector-exporter' });
    const setting = (name: string): Collector => ({
      name,
      families: [{ name: `test_${name}`, help: `${name} test gauge`, type: 'gauge', labelNames: [] }],
      async collect({ query }) {
        const [row] = await query<{ st: string; lt: string }>("SELECT current_setting('statement_timeout') AS st, current_setting('lock_timeout') AS lt");
        return [{ family: `test_${name}`, labels: { st: row!.st, lt: row!.lt }, value: 1 }];
      },
    });
    const seen: string[] = [];
    try {
      const poller = new Poller({
        collectors: [setting('short'), setting('long')],
        schedule: (name) => ({ intervalMs: 60_000, timeoutMs: name === 'short' ? 700 : 2500 }),
        pool: single,
        log: createLogger('silent'),
        observer: registerSelfMetrics(new Registry()),
        maxBackoffMs: 1000,
      });
      for (let i = 0; i < 3; i++) {
        await poller.pollAll();
        seen.push(poller.render());
      }
    } finally {
      await single.end();
    }
    for (const text of seen) {
      expect(text).toContain('test_short{st="700ms",lt="700ms"} 1');
      expect(text).toContain('test_long{st="2500ms",lt="1s"} 1');
    }
  });

  it('returns connections to the pool after failures', async () => {
    await pollOnce([gauge('broken', 'SELECT 1/0 AS v')]);
    await pollOnce([gauge('broken', 'SELECT 1/0 AS v')]);
    expect(pool.totalCount).toBeLessThanOrEqual(3);
    expect(pool.waitingCount).toBe(0);
  });

  it('survives the server closing a connection the collector still holds (restart, terminated backend)', async () => {
    // The collector swallows the error and keeps its connection checked out for a while, so the
    // socket's end arrives while no pool listener is attached: an unhandled 'error' event would
    // crash the process (found by the benchmark's soak, across a database restart).
    const lingering: Collector = {
      name: 'lingering',
      families: [{ name: 'test_lingering', help: 'lingering test gauge', type: 'gauge', labelNames: [] }],
      async collect({ query }) {
        await query("SELECT set_config('application_name', 'poller-terminate-me', false)");
        await query('SELECT pg_sleep(10)').catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 300));
        return [{ family: 'test_lingering', value: 1 }];
      },
    };
    const polled = pollOnce([lingering], 5000);
    await vi.waitFor(
      async () => {
        const { rows } = await db.pool.query("SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE application_name = 'poller-terminate-me' AND state = 'active'");
        expect(rows).toHaveLength(1);
      },
      { timeout: 5000, interval: 50 },
    );
    const { text } = await polled;
    expect(sampleValue(text, 'test_lingering')).toBe(1);
    const { rows } = await pool.query<{ ok: number }>('SELECT 1 AS ok');
    expect(rows[0]!.ok).toBe(1);
  });
});

describe('poller shutdown', () => {
  const db = useTestDatabase();

  it('interrupts a long poll at once on stop() and hands its connection back', async () => {
    const pool = new pg.Pool({ connectionString: db.url, max: 2, application_name: 'pgvector-exporter-stop-test' });
    pool.on('error', () => undefined);
    const poller = new Poller({
      collectors: [gauge('long', 'SELECT pg_sleep(60) AS v')],
      schedule: () => ({ intervalMs: 60_000, timeoutMs: 120_000 }),
      pool,
      log: createLogger('silent'),
      observer: registerSelfMetrics(new Registry()),
      maxBackoffMs: 1000,
    });
    poller.start();
    const sleeping = async () =>
      Number((await db.pool.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pgvector-exporter-stop-test' AND query LIKE 'SELECT pg_sleep(60)%' AND state = 'active'")).rows[0].n);
    const deadline = Date.now() + 10_000;
    while ((await sleeping()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await sleeping()).toBe(1);
    await poller.stop();
    await pool.end();
    // The poll was abandoned, not waited for: it published nothing, and its statement is cancelled on the server.
    expect(poller.render()).not.toContain('test_long');
    const gone = Date.now() + 10_000;
    while ((await sleeping()) > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 100));
    expect(await sleeping()).toBe(0);
  });
});
