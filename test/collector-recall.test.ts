import type pg from 'pg';
import { describe, expect, it } from 'vitest';
import { NoDataError } from '../src/collectors/collector.js';
import { EXACT_PASS, INDEX_PASS, recallCollector, recallOf, recallSearchSql, type RecallOptions } from '../src/collectors/recall.js';
import { collectorContext, undeclaredSamples, valueOf, useDatabaseClient } from './helpers/collector-context.js';
import { seedDocuments } from './helpers/seed.js';

const OPTIONS: RecallOptions = { sampleSize: 20, topK: 10, efSearch: 0, dimensions: 3072 };
const LABELS = { indexrelname: 'idx_embeddings_vector' };

describe('recall collector', () => {
  let client: pg.Client;
  const ctx = () => collectorContext(client);
  useDatabaseClient((opened) => ({ client } = opened));

  it('compares id sets', () => {
    expect(recallOf(['a', 'b', 'x'], ['a', 'b', 'c', 'd'])).toBe(0.5);
    expect(recallOf([], [])).toBe(1);
  });

  it('has nothing to measure on an empty table', async () => {
    await expect(recallCollector(OPTIONS).collect(ctx())).rejects.toBeInstanceOf(NoDataError);
  });

  it('measures recall@k of the HNSW index, and sees it drop with a tiny ef_search', async () => {
    await seedDocuments(client, { count: 500, prefix: 'recall', withEmbeddings: true });
    await client.query('ANALYZE chunk_embeddings');

    const collector = recallCollector(OPTIONS);
    const samples = await collector.collect(ctx());
    expect(undeclaredSamples(collector.families, samples)).toEqual([]);
    const recall = valueOf(samples, 'pgvector_index_recall_ratio', LABELS);
    expect(recall).toBeGreaterThan(0.5);
    expect(recall).toBeLessThanOrEqual(1);
    expect(valueOf(samples, 'pgvector_index_recall_queries', LABELS)).toBe(20);
    expect(valueOf(samples, 'pgvector_index_recall_k', LABELS)).toBe(10);

    // An HNSW scan returns at most ef_search rows: with 1, at most 1 of the exact 10 per query.
    const starved = await recallCollector({ ...OPTIONS, efSearch: 1 }).collect(ctx());
    const low = valueOf(starved, 'pgvector_index_recall_ratio', LABELS);
    expect(low).toBeLessThanOrEqual(0.1 + 1e-9);
    expect(low).toBeLessThan(recall);
    // The measurement leaves no transaction open and no setting changed on the connection.
    const { rows } = await client.query("SELECT current_setting('enable_indexscan') AS s, now() = statement_timestamp() AS no_txn");
    expect(rows[0]).toEqual({ s: 'on', no_txn: true });
  });

  it('samples the whole table when page sampling picks too few rows (a table of few pages, or stale statistics)', async () => {
    if ((await client.query('SELECT 1 FROM chunk_embeddings LIMIT 1')).rowCount === 0) {
      await seedDocuments(client, { count: 100, prefix: 'few-pages', withEmbeddings: true });
    }
    // reltuples far above the table's size makes the percentage tiny: SYSTEM then picks no page at all.
    await client.query("UPDATE pg_class SET reltuples = 1e9 WHERE oid = 'chunk_embeddings'::regclass");
    const samples = await recallCollector(OPTIONS).collect(ctx());
    expect(valueOf(samples, 'pgvector_index_recall_queries', LABELS)).toBe(20);
    await client.query('ANALYZE chunk_embeddings');
  });

  it('the exact pass really ignores the index, the index pass really uses it (the settings recall.ts uses)', async () => {
    const vector = (await client.query('SELECT embedding::text AS v FROM chunk_embeddings LIMIT 1')).rows[0].v;
    const setLocal = async (settings: Record<string, string>) => {
      for (const [name, value] of Object.entries(settings)) await client.query('SELECT set_config($1, $2, true)', [name, value]);
    };
    const explain = async () => JSON.stringify((await client.query(`EXPLAIN (FORMAT JSON) ${recallSearchSql(3072)}`, [vector, 10])).rows);
    await client.query('BEGIN');
    try {
      await setLocal(INDEX_PASS);
      expect(await explain()).toContain('idx_embeddings_vector');
      await setLocal(EXACT_PASS);
      const plan = await explain();
      expect(plan).not.toContain('idx_embeddings_vector');
      expect(plan).toContain('Seq Scan');
    } finally {
      await client.query('ROLLBACK');
    }
  });

  it('stops at its deadline and keeps what it measured', async () => {
    const samples = await recallCollector({ ...OPTIONS, sampleSize: 200 }).collect(collectorContext(client, 300)).catch((err: Error) => err);
    // Either a partial sample before the deadline or, on a very slow machine, a clear error: never a hang.
    if (samples instanceof Error) expect(samples.message).toMatch(/budget|statement timeout/);
    else expect(valueOf(samples, 'pgvector_index_recall_queries', LABELS)).toBeLessThan(200);
  });

  it('has nothing to measure without a vector index', async () => {
    await client.query('DROP INDEX idx_embeddings_vector');
    await expect(recallCollector(OPTIONS).collect(ctx())).rejects.toBeInstanceOf(NoDataError);
  });
});
