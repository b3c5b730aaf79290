import type pg from 'pg';
import { beforeEach, describe, expect, it } from 'vitest';
import { isHistogramSample, type CollectContext, type HistogramSample, type Sample } from '../src/collectors/collector.js';
import { queryLogCollector, queryLogSql, type QueryLogCollector, type QueryLogOptions } from '../src/collectors/query-log.js';
import { DEFAULT_QUERY_BUCKETS } from '../src/config/schema.js';
import { type TestDatabase } from './helpers/database.js';
import { collectorContext, connect, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';

const TYPES = ['vector_search', 'hybrid_search', 'insert'];
const OPTIONS: QueryLogOptions = { buckets: DEFAULT_QUERY_BUCKETS, queryTypes: TYPES, lookback: 0, batchRows: 250_000 };

function histogram(samples: Sample[], type: string): HistogramSample {
  const found = samples.find((s) => s.family === 'rag_query_duration_seconds' && s.labels?.query_type === type);
  if (!found || !isHistogramSample(found)) throw new Error(`no histogram for ${type}`);
  return found;
}

/** Cumulative count of the bucket with upper bound `le`. */
function bucket(samples: Sample[], type: string, le: number): number {
  const index = DEFAULT_QUERY_BUCKETS.indexOf(le);
  if (index < 0) throw new Error(`no bucket ${le}`);
  return histogram(samples, type).bucketCounts[index]!;
}

const rows = (samples: Sample[], result: 'observed' | 'rejected') => valueOf(samples, 'rag_query_log_rows_total', { result });

async function log(client: pg.Client | pg.PoolClient, entries: [string, number | null][]): Promise<void> {
  for (const [type, ms] of entries) {
    await client.query('INSERT INTO query_performance_log (query_type, duration_ms, rows_returned) VALUES ($1, $2, 1)', [type, ms]);
  }
}

describe('query_log collector', () => {
  let db: TestDatabase;
  let client: pg.Client;
  const ctx = () => collectorContext(client, 10_000);

  useDatabaseClient((opened) => ({ db, client } = opened));
  beforeEach(async () => {
    await client.query('TRUNCATE query_performance_log');
  });

  it('starts from now, then puts each duration in the right buckets, folds unknown types and rejects bad durations', async () => {
    await log(client, [['vector_search', 5000]]); // before start: never counted
    const collector = queryLogCollector(OPTIONS);
    let samples = await collector.collect(ctx());
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    expect(histogram(samples, 'vector_search').count).toBe(0);
    expect(histogram(samples, 'other').count).toBe(0);
    expect(rows(samples, 'observed')).toBe(0);

    await log(client, [
      ['vector_search', 150],
      ['vector_search', 100],
      ['vector_search', 200],
      ['vector_search', 20_000],
      ['hybrid_search', 300],
      ['reindex_everything', 40],
      ['vector_search', null],
      ['vector_search', -1],
    ]);
    await client.query("INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('insert', 'NaN'), ('insert', 'Infinity')");
    samples = await collector.collect(ctx());

    const vector = histogram(samples, 'vector_search');
    expect(vector.count).toBe(4);
    expect(vector.sum).toBeCloseTo(0.15 + 0.1 + 0.2 + 20, 9);
    expect(bucket(samples, 'vector_search', 0.05)).toBe(0);
    expect(bucket(samples, 'vector_search', 0.1)).toBe(1); // 100 ms: le is inclusive
    expect(bucket(samples, 'vector_search', 0.2)).toBe(3); // + 150 ms and 200 ms
    expect(bucket(samples, 'vector_search', 10)).toBe(3); // 20 s only in +Inf
    expect(bucket(samples, 'hybrid_search', 0.2)).toBe(0);
    expect(bucket(samples, 'hybrid_search', 0.3)).toBe(1);
    expect(histogram(samples, 'other').count).toBe(1);
    expect(bucket(samples, 'other', 0.05)).toBe(1);
    expect(samples.some((s) => s.labels?.query_type === 'reindex_everything')).toBe(false);
    expect(histogram(samples, 'insert').count).toBe(0);
    expect(rows(samples, 'observed')).toBe(6);
    expect(rows(samples, 'rejected')).toBe(4);

    // Cumulative and exactly once: nothing new, nothing changes; one more row adds one.
    samples = await collector.collect(ctx());
    expect(rows(samples, 'observed')).toBe(6);
    await log(client, [['vector_search', 450]]);
    samples = await collector.collect(ctx());
    expect(bucket(samples, 'vector_search', 0.3)).toBe(3);
    expect(bucket(samples, 'vector_search', 0.5)).toBe(4);
    expect(rows(samples, 'observed')).toBe(7);
  });

  it('publishes the age of the newest row read, from the start on', async () => {
    await client.query("INSERT INTO query_performance_log (query_type, duration_ms, ts) VALUES ('insert', 1, now() - interval '1 hour')");
    const collector = queryLogCollector(OPTIONS);
    let samples = await collector.collect(ctx());
    expect(valueOf(samples, 'rag_query_log_lag_seconds')).toBeGreaterThanOrEqual(3600);
    await log(client, [['insert', 1]]);
    samples = await collector.collect(ctx());
    expect(valueOf(samples, 'rag_query_log_lag_seconds')).toBeLessThan(3600);
  });

  it('a new process starts from now: it never counts what an earlier one read', async () => {
    const first = queryLogCollector(OPTIONS);
    await first.collect(ctx());
    await log(client, [['vector_search', 10], ['vector_search', 10]]);
    expect(rows(await first.collect(ctx()), 'observed')).toBe(2);

    const restarted = queryLogCollector(OPTIONS);
    expect(rows(await restarted.collect(ctx()), 'observed')).toBe(0);
    await log(client, [['vector_search', 10]]);
    expect(rows(await restarted.collect(ctx()), 'observed')).toBe(1);
    expect(rows(await first.collect(ctx()), 'observed')).toBe(3);
  });

  it('with a look-back, the first poll reads the rows younger than it', async () => {
    await client.query(`INSERT INTO query_performance_log (query_type, duration_ms, ts) VALUES
      ('vector_search', 10, now() - interval '2 hours'), ('vector_search', 20, now() - interval '20 minutes'),
      ('hybrid_search', 30, now() - interval '5 minutes')`);
    const samples = await queryLogCollector({ ...OPTIONS, lookback: 3_600_000 }).collect(ctx());
    expect(histogram(samples, 'vector_search').count).toBe(1);
    expect(histogram(samples, 'hybrid_search').count).toBe(1);
    expect(rows(samples, 'observed')).toBe(2);
  });

  it('counts a row exactly once when its transaction commits after a higher id was read', async () => {
    const collector = queryLogCollector(OPTIONS);
    await collector.collect(ctx());
    const slow = await connect(db.url);
    try {
      await slow.query('BEGIN');
      await log(slow, [['hybrid_search', 700]]); // takes the lower id, stays uncommitted
      await log(client, [['vector_search', 10]]); // higher id, committed
      let samples = await collector.collect(ctx());
      expect(rows(samples, 'observed')).toBe(1);
      expect(histogram(samples, 'hybrid_search').count).toBe(0);

      await slow.query('COMMIT');
      samples = await collector.collect(ctx());
      expect(histogram(samples, 'hybrid_search').count).toBe(1);
      expect(bucket(samples, 'hybrid_search', 0.75)).toBe(1);
      expect(rows(samples, 'observed')).toBe(2);
      samples = await collector.collect(ctx());
      expect(rows(samples, 'observed')).toBe(2);
    } finally {
      await slow.end();
    }
  });

  it('keeps a hole open while the writer that took its id waits in partition routing without a transaction id', async () => {
    // The partition a row logged now is routed to (the id this takes is a rolled-back gap before start).
    await client.query('BEGIN');
    const { rows: [routed] } = await client.query<{ partition: string }>(
      "INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('insert', 1) RETURNING tableoid::regclass::text AS partition",
    );
    await client.query('ROLLBACK');
    const partition = routed!.partition;
    const collector = queryLogCollector(OPTIONS);
    await collector.collect(ctx());
    const locker = await connect(db.url);
    const slow = await connect(db.url);
    try {
      // SHARE blocks the writer's row (ROW EXCLUSIVE) but not the collector's reads (ACCESS SHARE).
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${partition} IN SHARE MODE`);
      const slowPid = (await slow.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      const inserted = slow.query("INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('hybrid_search', 700)");
      // Its id is taken (nextval runs before routing), it waits for the partition's lock, and it has no xid.
      await pollFor(async () => {
        const { rows: [a] } = await client.query<{ waiting: boolean; xid: string | null }>(
          "SELECT wait_event_type = 'Lock' AS waiting, backend_xid::text AS xid FROM pg_stat_activity WHERE pid = $1",
          [slowPid],
        );
        return a!.waiting && a!.xid === null;
      });
      // A higher id commits into the DEFAULT partition (no day holds -infinity), and is read: the writer's id is a hole.
      await client.query("INSERT INTO query_performance_log (query_type, duration_ms, ts) VALUES ('vector_search', 10, '-infinity')");
      let samples = await collector.collect(ctx());
      expect(rows(samples, 'observed')).toBe(1);
      expect(collector.state.holes).toHaveLength(1);
      // However many polls run meanwhile (the old time-based stamp gave up after 2 s of them), the
      // hole stays while its writer waits.
      for (let i = 0; i < 40; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        samples = await collector.collect(ctx());
      }
      expect(collector.state.holes).toHaveLength(1);

      await locker.query('COMMIT');
      await inserted;
      samples = await pollUntilSettled(collector, ctx);
      expect(collector.state.holes).toEqual([]);
      expect(histogram(samples, 'hybrid_search').count).toBe(1);
      expect(rows(samples, 'observed')).toBe(2);
    } finally {
      await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
      await slow.end();
    }
  });

  it('counts rows in flight at start when they commit, and forgets rolled-back ids', async () => {
    const slow = await connect(db.url);
    try {
      await slow.query('BEGIN');
      await log(slow, [['insert', 5]]);
      await log(client, [['insert', 5]]); // committed before start: not counted
      const collector = queryLogCollector(OPTIONS);
      await collector.collect(ctx());
      await slow.query('COMMIT');

      await client.query('BEGIN');
      await log(client, [['insert', 5], ['insert', 5]]);
      await client.query('ROLLBACK');
      await log(client, [['insert', 5]]);
      let samples = await collector.collect(ctx());
      expect(rows(samples, 'observed')).toBe(2); // the in-flight row of the start and the new one
      expect(collector.state.holes.length).toBeGreaterThan(0);
      // The rolled-back ids are a hole until no transaction that could hold them can still be running
      // (any writing transaction of the cluster counts: other test files run beside this one).
      samples = await pollUntilSettled(collector, ctx);
      expect(rows(samples, 'observed')).toBe(2);
      expect(collector.state.holes).toEqual([]);
    } finally {
      await slow.end();
    }
  });

  it('reads a backlog larger than one batch in one poll, exactly', async () => {
    const collector = queryLogCollector({ ...OPTIONS, batchRows: 1000 });
    await collector.collect(ctx());
    await client.query(`INSERT INTO query_performance_log (query_type, duration_ms)
      SELECT (ARRAY['vector_search','hybrid_search','insert','bogus'])[1 + g % 4], (g % 1200)::float8 FROM generate_series(1, 5500) g`);
    const samples = await collector.collect(ctx());
    const expected = (await client.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM query_performance_log WHERE query_type = 'vector_search' AND duration_ms <= 300",
    )).rows[0]!.n;
    expect(rows(samples, 'observed')).toBe(5500);
    expect(bucket(samples, 'vector_search', 0.3)).toBe(expected);
    expect(histogram(samples, 'other').count).toBe(1375);
  });

  /** Runs fn while another session holds the log ACCESS EXCLUSIVE and the collector's session times out at 300 ms. */
  async function whileLogLocked(fn: () => Promise<void>): Promise<void> {
    const locker = await connect(db.url);
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE query_performance_log IN ACCESS EXCLUSIVE MODE');
      await client.query("SET statement_timeout = '300ms'");
      await fn();
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await client.query('RESET statement_timeout');
    }
  }

  it('a timed-out read loses nothing, makes the next batches smaller, and reads that succeed grow them back', async () => {
    const collector = queryLogCollector({ ...OPTIONS, batchRows: 8000 });
    await collector.collect(ctx());
    await log(client, [['insert', 1], ['insert', 2]]);
    await whileLogLocked(async () => {
      // Two lock waits in a row (issue 12, item 10: the batch halved and never grew back).
      await expect(collector.collect(ctx())).rejects.toMatchObject({ code: '57014' });
      expect(collector.batchRows).toBe(4000);
      await expect(collector.collect(ctx())).rejects.toMatchObject({ code: '57014' });
      expect(collector.batchRows).toBe(2000);
    });
    expect(rows(await collector.collect(ctx()), 'observed')).toBe(2);
    expect(collector.batchRows).toBe(4000);
    await collector.collect(ctx());
    expect(collector.batchRows).toBe(8000);
    // Never above the configured size.
    await collector.collect(ctx());
    expect(collector.batchRows).toBe(8000);
  });

  it('a backlog after timed-out reads is caught up in one poll while the batch grows back read by read', async () => {
    const collector = queryLogCollector({ ...OPTIONS, batchRows: 8000 });
    await collector.collect(ctx());
    await client.query("INSERT INTO query_performance_log (query_type, duration_ms) SELECT 'insert', 5 FROM generate_series(1, 20000)");
    await whileLogLocked(async () => {
      await expect(collector.collect(ctx())).rejects.toMatchObject({ code: '57014' });
      await expect(collector.collect(ctx())).rejects.toMatchObject({ code: '57014' });
      expect(collector.batchRows).toBe(2000);
    });
    // A full batch means behind, whatever size the next read asks for: 2000, 4000, 8000, then the last 6000.
    expect(rows(await collector.collect(ctx()), 'observed')).toBe(20_000);
    expect(collector.batchRows).toBe(8000);
  });

  it('rejects durations above 24 hours (1e308 ms would make _sum useless) and keeps 24 hours itself', async () => {
    const collector = queryLogCollector(OPTIONS);
    await collector.collect(ctx());
    await client.query(
      "INSERT INTO query_performance_log (query_type, duration_ms) VALUES ('insert', 1e308), ('insert', 86400000.001), ('insert', 86400000), ('insert', 250)",
    );
    const samples = await collector.collect(ctx());
    expect(rows(samples, 'rejected')).toBe(2);
    expect(rows(samples, 'observed')).toBe(2);
    expect(histogram(samples, 'insert').count).toBe(2);
    expect(histogram(samples, 'insert').sum).toBeCloseTo(86_400 + 0.25, 6);
    expect(bucket(samples, 'insert', 0.3)).toBe(1);
  });

  it('reads with index range scans on the primary key, never a sequential scan of a partition that has rows', async () => {
    await client.query(`INSERT INTO query_performance_log (query_type, duration_ms) SELECT 'insert', 1 FROM generate_series(1, 20000)`);
    await client.query('ANALYZE query_performance_log');
    const { rows: [{ max }] } = await client.query('SELECT max(id)::bigint AS max FROM query_performance_log');
    const params = [Number(max) - 50, 250_000, [Number(max) - 500], [Number(max) - 400], TYPES];
    const { rows: plan } = await client.query(`EXPLAIN (FORMAT JSON) ${queryLogSql(DEFAULT_QUERY_BUCKETS)}`, params);
    // The log is partitioned by day (migration 007): the rows are in today's partition; the other
    // partitions are empty, and a sequential scan of an empty table is free (the planner's choice).
    const { rows: filled } = await client.query('SELECT DISTINCT tableoid::regclass::text AS partition FROM query_performance_log');
    const withRows = filled.map((r) => r.partition as string);
    expect(withRows).toHaveLength(1);
    const text = JSON.stringify(plan);
    expect(text).toContain(`"Index Name":"${withRows[0]}_pkey"`);
    expect(seqScans(plan[0]['QUERY PLAN'][0].Plan).filter((rel) => withRows.includes(rel))).toEqual([]);
  });

  it('stays exact under concurrent writers that commit out of order and roll back', async () => {
    const collector = queryLogCollector(OPTIONS);
    await collector.collect(ctx());
    const { rows: [{ start }] } = await client.query('SELECT coalesce(max(id), 0)::bigint AS start FROM query_performance_log');
    const writers = await Promise.all([1, 2, 3, 4].map(() => db.pool.connect()));
    let running = true;
    let holesSeen = 0;
    const write = async (w: pg.PoolClient, seed: number) => {
      for (let i = 0; i < 60; i++) {
        await w.query('BEGIN');
        await w.query(`INSERT INTO query_performance_log (query_type, duration_ms)
          SELECT (ARRAY['vector_search','hybrid_search','odd'])[1 + (g + $1::int) % 3], random() * 1500 FROM generate_series(1, 1 + ($1::int + $2::int) % 4) g`, [seed, i]);
        if ((i + seed) % 3 === 0) await w.query('SELECT pg_sleep(0.005)');
        await w.query((i * seed) % 5 === 0 ? 'ROLLBACK' : 'COMMIT');
      }
    };
    const polls = (async () => {
      while (running) {
        await collector.collect(ctx());
        holesSeen = Math.max(holesSeen, collector.state.holes.length);
      }
    })();
    try {
      await Promise.all(writers.map((w, i) => write(w, i + 1)));
    } finally {
      running = false;
      await polls;
      writers.forEach((w) => w.release());
    }
    // Rolled-back ids below ids already read: the out-of-order case really happened...
    holesSeen = Math.max(holesSeen, (await collector.collect(ctx()), collector.state.holes.length));
    expect(holesSeen).toBeGreaterThan(0);
    // ...and every gap settles once the writers are gone.
    const samples = await pollUntilSettled(collector, ctx);
    expect(collector.state.holes).toEqual([]);
    const { rows: expected } = await client.query<{ query_type: string; n: number; le02: number }>(
      `SELECT CASE WHEN query_type IN ('vector_search','hybrid_search','insert') THEN query_type ELSE 'other' END AS query_type,
              count(*)::int AS n, (count(*) FILTER (WHERE duration_ms <= 200))::int AS le02
       FROM query_performance_log WHERE id > $1 GROUP BY 1`,
      [start],
    );
    const total = expected.reduce((sum, r) => sum + r.n, 0);
    expect(total).toBeGreaterThan(100);
    expect(rows(samples, 'observed') + rows(samples, 'rejected')).toBe(total);
    for (const r of expected) {
      expect(histogram(samples, r.query_type).count).toBe(r.n);
      expect(bucket(samples, r.query_type, 0.2)).toBe(r.le02);
    }
  });
});

/** Polls `state` until it holds (at most ~20 s). */
async function pollFor(state: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200 && !(await state()); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  expect(await state()).toBe(true);
}

/** Polls until no hole is left (at most ~20 s: another test file's long transaction delays it). */
async function pollUntilSettled(collector: QueryLogCollector, ctx: () => CollectContext): Promise<Sample[]> {
  let samples = await collector.collect(ctx());
  for (let i = 0; i < 200 && collector.state.holes.length > 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    samples = await collector.collect(ctx());
  }
  return samples;
}

interface PlanNode {
  'Node Type': string;
  'Relation Name'?: string;
  Plans?: PlanNode[];
}

function seqScans(node: PlanNode): string[] {
  const own = node['Node Type'] === 'Seq Scan' ? [node['Relation Name'] ?? '?'] : [];
  return [...own, ...(node.Plans ?? []).flatMap(seqScans)];
}
