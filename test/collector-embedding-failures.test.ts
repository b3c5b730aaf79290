import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { embeddingFailuresCollector } from '../src/collectors/embedding-failures.js';
import { collectorContext, connect, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';
import type { TestDatabase } from './helpers/database.js';
import { seedDocuments } from './helpers/seed.js';

const logFailures = (client: pg.Client, n: number, queryType = 'embedding_generation', error: string | null = 'openai: 429 Too Many Requests') =>
  client.query(`INSERT INTO query_performance_log (query_type, duration_ms, error) SELECT $1, 120, $2 FROM generate_series(1, $3)`, [queryType, error, n]);

/** Documents created `ageSeconds` ago, without an embedding. */
async function oldDocuments(client: pg.Client, prefix: string, count: number, ageSeconds: number): Promise<void> {
  const ids = await seedDocuments(client, { count, prefix });
  await client.query(`UPDATE framework_documents SET created_at = now() - make_interval(secs => $2) WHERE id = ANY ($1::uuid[])`, [ids, ageSeconds]);
}

describe('embedding_failures collector', () => {
  let client: pg.Client;
  let db: TestDatabase;
  useDatabaseClient((opened) => ({ client, db } = opened));

  it('counts what is already there on the first poll: failed log rows and documents past the grace period', async () => {
    await logFailures(client, 2);
    await logFailures(client, 4, 'vector_search', 'canceling statement due to statement timeout'); // not an embedding call
    await logFailures(client, 3, 'embedding_generation', null); // succeeded
    await oldDocuments(client, 'stale', 3, 3600);
    await oldDocuments(client, 'fresh', 2, 10); // still within the grace period
    await seedDocuments(client, { count: 4, prefix: 'embedded', withEmbeddings: true });
    await client.query(`UPDATE framework_documents SET created_at = now() - interval '2 hours' WHERE chunk_id LIKE 'embedded%'`);

    const collector = embeddingFailuresCollector({ gracePeriodMs: 30 * 60_000, batchRows: 250_000 });
    const samples = await collector.collect(collectorContext(client));
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    expect(valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'query_log' })).toBe(2);
    expect(valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'missing_embedding' })).toBe(3);
  });

  it('counts each failure once across polls, and documents when they cross the grace period', async () => {
    const collector = embeddingFailuresCollector({ gracePeriodMs: 2_000, batchRows: 250_000 });
    const ctx = collectorContext(client);
    // whatever the database already holds is the base (the previous test's rows, if it shares the database)
    let samples = await collector.collect(ctx);
    const base = {
      log: valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'query_log' })!,
      missing: valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'missing_embedding' })!,
    };
    const value = (reason: string) => valueOf(samples, 'rag_embedding_generation_failures_total', { reason })!;

    await logFailures(client, 3);
    await seedDocuments(client, { count: 3, prefix: 'late' }); // created now: not yet past 2 s
    samples = await collector.collect(ctx);
    expect(value('query_log') - base.log).toBe(3);
    expect(value('missing_embedding') - base.missing).toBe(0);

    // once they are past the grace period: counted, once, however many polls follow
    const deadline = Date.now() + 30_000;
    while (value('missing_embedding') - base.missing < 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      samples = await collector.collect(ctx);
    }
    for (let i = 0; i < 3; i++) samples = await collector.collect(ctx);
    expect(value('query_log') - base.log).toBe(3);
    expect(value('missing_embedding') - base.missing).toBe(3);

    // log retention deletes the rows: the counter does not go down
    await client.query(`DELETE FROM query_performance_log`);
    await logFailures(client, 1);
    samples = await collector.collect(ctx);
    expect(value('query_log') - base.log).toBe(4);
  });

  it('a backlog read under a statement timeout: the batch halves, nothing is lost, and the next poll catches up as the batch grows back', async () => {
    const collector = embeddingFailuresCollector({ gracePeriodMs: 30 * 60_000, batchRows: 8000 });
    const ctx = collectorContext(client, 10_000);
    const value = (samples: Awaited<ReturnType<typeof collector.collect>>) =>
      valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'query_log' })!;
    const base = value(await collector.collect(ctx));
    await logFailures(client, 20_000);
    await logFailures(client, 500, 'vector_search');
    const locker = await connect(db.url);
    try {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE query_performance_log IN ACCESS EXCLUSIVE MODE');
      await client.query("SET statement_timeout = '300ms'");
      await expect(collector.collect(ctx)).rejects.toMatchObject({ code: '57014' });
      expect(collector.batchRows).toBe(4000);
      await expect(collector.collect(ctx)).rejects.toMatchObject({ code: '57014' });
      expect(collector.batchRows).toBe(2000);
    } finally {
      await locker.query('ROLLBACK');
      await locker.end();
      await client.query('RESET statement_timeout');
    }
    // One poll reads on while it is behind (2000, 4000, 8000, then the rest), each failure once.
    expect(value(await collector.collect(ctx)) - base).toBe(20_000);
    expect(collector.batchRows).toBe(8000);
    expect(value(await collector.collect(ctx)) - base).toBe(20_000);
  });

  it('counts a failed row whose lower id commits after a higher id was read', async () => {
    const collector = embeddingFailuresCollector({ gracePeriodMs: 30 * 60_000, batchRows: 250_000 });
    const ctx = collectorContext(client);
    const value = (samples: Awaited<ReturnType<typeof collector.collect>>) =>
      valueOf(samples, 'rag_embedding_generation_failures_total', { reason: 'query_log' })!;
    const base = value(await collector.collect(ctx));
    const late = await connect(db.url);
    try {
      // The late writer takes the lower id and holds it uncommitted; a higher id commits and is read.
      await late.query('BEGIN');
      const { rows: [low] } = await late.query<{ id: string }>(
        "INSERT INTO query_performance_log (query_type, duration_ms, error) VALUES ('embedding_generation', 120, 'openai: 500') RETURNING id",
      );
      const { rows: [high] } = await client.query<{ id: string }>(
        "INSERT INTO query_performance_log (query_type, duration_ms, error) VALUES ('embedding_generation', 120, 'openai: 429') RETURNING id",
      );
      expect(Number(high!.id)).toBeGreaterThan(Number(low!.id));
      expect(value(await collector.collect(ctx)) - base).toBe(1);
      await late.query('COMMIT');
      // The next polls read the lower id's row from its hole, once (a cursor on the highest id read never returns to it).
      let samples = await collector.collect(ctx);
      for (let i = 0; i < 3; i++) samples = await collector.collect(ctx);
      expect(value(samples) - base).toBe(2);
    } finally {
      await late.query('ROLLBACK').catch(() => undefined);
      await late.end();
    }
  });
});
