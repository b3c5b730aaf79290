import { Agent } from 'node:http';
import { FIELDS } from '../src/config/schema.js';
import type { BenchDatabase } from './database.js';
import { startOurExporter } from './exporters.js';
import { parseMetricsText, sumOf, type TextSample } from '../src/metrics/exposition-text.js';
import { get } from './load.js';
import { type ExporterProcess } from './processes.js';
import { sleep } from '../src/sleep.js';

/**
 * The query-log ingestion rate: rows written to query_performance_log become observations of
 * rag_query_duration_seconds. Two measurements on the same rows:
 *  - live: the exporter (query_log collector every 1 s) follows a bulk insert as fast as PostgreSQL
 *    takes it (INSERT ... SELECT generate_series in big batches);
 *  - backlog: a fresh exporter with a look-back reads all of those rows at once, which is its
 *    capacity regardless of how fast the rows can be written.
 * Then the histogram is checked against the same buckets counted by SQL.
 */
export interface IngestionFigures {
  rows: number;
  rejectedRows: number;
  insertSeconds: number;
  insertRowsPerSecond: number;
  live: { seconds: number; rowsPerSecond: number; lagAfterInsertSeconds: number; peakRowsPerSecond: number };
  backlog: { seconds: number; rowsPerSecond: number };
  exact: { ok: boolean; checkedBuckets: number; mismatches: string[] };
}

/** Deterministic rows: known and unknown types, exact bucket boundaries, NULL, negative, NaN and infinite durations. */
const INSERT_BATCH = `
INSERT INTO query_performance_log (query_type, duration_ms, rows_returned, ts)
SELECT (ARRAY['vector_search','hybrid_search','insert','text_search','vector_search','mystery_' || (g % 5)])[1 + g % 6],
       CASE WHEN g % 1000 = 1 THEN NULL
            WHEN g % 1000 = 2 THEN -5
            WHEN g % 1000 = 3 THEN 'NaN'
            WHEN g % 1000 = 4 THEN 'Infinity'
            WHEN g % 97 = 0 THEN (ARRAY[5, 100, 200, 300, 500, 1000, 10000])[1 + (g / 97) % 7]
            ELSE round((random() * random() * 1500)::numeric, 3)::float8 END,
       g % 20, now()
FROM generate_series($1::bigint, $2::bigint) AS g`;

const BATCH_ROWS = 250_000;
const QUERY_TYPES = FIELDS.find((f) => f.key === 'query_log.query_types')!.default as readonly string[];

async function scrape(proc: ExporterProcess, agent: Agent): Promise<TextSample[]> {
  const res = await get(`${proc.url}/metrics`, agent);
  return parseMetricsText(res.body);
}

const processed = (samples: TextSample[]) => sumOf(samples, 'rag_query_log_rows_total');

/** Scrapes every 250 ms until `target` rows are counted; returns the (time, rows) trace. */
async function followUntil(proc: ExporterProcess, target: number, timeoutMs: number, stopWhen: () => boolean = () => true) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const trace: { t: number; rows: number }[] = [];
  const deadline = performance.now() + timeoutMs;
  try {
    for (;;) {
      const rows = processed(await scrape(proc, agent));
      trace.push({ t: performance.now(), rows });
      if ((rows >= target && stopWhen()) || performance.now() > deadline) return trace;
      await sleep(250);
    }
  } finally {
    agent.destroy();
  }
}

function peakRate(trace: { t: number; rows: number }[]): number {
  let peak = 0;
  for (let i = 0, j = 0; j < trace.length; j++) {
    while (trace[j]!.t - trace[i]!.t > 2000) i++;
    const dt = (trace[j]!.t - trace[i]!.t) / 1000;
    if (dt >= 0.9) peak = Math.max(peak, (trace[j]!.rows - trace[i]!.rows) / dt);
  }
  return peak;
}

async function insertRows(db: BenchDatabase, rows: number): Promise<void> {
  const client = await db.connect('bench-ingest');
  try {
    for (let first = 1; first <= rows; first += BATCH_ROWS) {
      await client.query(INSERT_BATCH, [first, Math.min(rows, first + BATCH_ROWS - 1)]);
    }
  } finally {
    await client.end();
  }
}

export async function measureIngestion(db: BenchDatabase, rows: number, log: (line: string) => void): Promise<IngestionFigures> {
  await db.query('TRUNCATE query_performance_log');
  const collectors = ['connectivity', 'query_log'] as const;
  const live = await startOurExporter(db, { name: 'pgvector-exporter (ingestion)', intervalMs: 1000, collectors });
  let insertSeconds = 0;
  let liveFigures: IngestionFigures['live'];
  try {
    let insertDone = false;
    let insertEnd = 0;
    const t0 = performance.now();
    const following = followUntil(live, rows, 600_000, () => insertDone);
    await insertRows(db, rows);
    insertEnd = performance.now();
    insertDone = true;
    insertSeconds = (insertEnd - t0) / 1000;
    log(`  inserted ${rows} rows in ${insertSeconds.toFixed(1)} s`);
    const trace = await following;
    const done = trace.find((p) => p.rows >= rows)?.t ?? NaN;
    liveFigures = {
      seconds: (done - t0) / 1000,
      rowsPerSecond: rows / ((done - t0) / 1000),
      lagAfterInsertSeconds: Math.max(0, (done - insertEnd) / 1000),
      peakRowsPerSecond: peakRate(trace),
    };
    log(`  live: all rows counted ${liveFigures.lagAfterInsertSeconds.toFixed(1)} s after the insert ended`);
  } finally {
    await live.stop();
  }
  const started = performance.now();
  const backlog = await startOurExporter(db, { name: 'pgvector-exporter (backlog)', intervalMs: 1000, collectors, lookbackMs: 3_600_000 });
  try {
    const trace = await followUntil(backlog, rows, 600_000);
    const done = trace.find((p) => p.rows >= rows)?.t ?? NaN;
    const seconds = (done - started) / 1000;
    log(`  backlog: ${rows} rows read in ${seconds.toFixed(1)} s from process start`);
    const exact = await checkHistogram(db, await scrape(backlog, new Agent()), rows);
    return {
      rows,
      rejectedRows: exact.rejected,
      insertSeconds,
      insertRowsPerSecond: rows / insertSeconds,
      live: liveFigures,
      backlog: { seconds, rowsPerSecond: rows / seconds },
      exact: { ok: exact.mismatches.length === 0, checkedBuckets: exact.checked, mismatches: exact.mismatches },
    };
  } finally {
    await backlog.stop();
  }
}

/** The exporter's buckets, counts and rejected rows against the same figures computed by SQL. */
async function checkHistogram(db: BenchDatabase, samples: TextSample[], rows: number) {
  const buckets = samples.filter((s) => s.name === 'rag_query_duration_seconds_bucket');
  const les = [...new Set(buckets.map((s) => s.labels.le!).filter((le) => le !== '+Inf'))];
  const expected = await db.query<{ qt: string; le: string; n: string }>(
    `WITH t AS (SELECT CASE WHEN query_type = ANY($1) THEN query_type ELSE 'other' END AS qt, duration_ms FROM query_performance_log)
     SELECT qt, le, count(*) FILTER (WHERE duration_ms >= 0 AND duration_ms < 'Infinity' AND (le = '+Inf' OR duration_ms::numeric <= le::numeric * 1000)) AS n
       FROM t CROSS JOIN unnest($2::text[]) AS le GROUP BY qt, le`,
    [QUERY_TYPES, [...les, '+Inf']],
  );
  const [{ rejected }] = (await db.query<{ rejected: string }>(
    "SELECT count(*) AS rejected FROM query_performance_log WHERE NOT coalesce(duration_ms >= 0 AND duration_ms < 'Infinity', false)",
  )) as [{ rejected: string }];
  const mismatches: string[] = [];
  for (const row of expected) {
    const got = buckets.find((s) => s.labels.query_type === row.qt && s.labels.le === row.le)?.value ?? 0;
    if (got !== Number(row.n)) mismatches.push(`query_type=${row.qt} le=${row.le}: exporter ${got}, SQL ${row.n}`);
  }
  const observed = sumOf(samples, 'rag_query_duration_seconds_count');
  if (observed !== rows - Number(rejected)) mismatches.push(`sum of _count ${observed} != rows ${rows} - rejected ${rejected}`);
  const rejectedCounted = samples
    .filter((s) => s.name === 'rag_query_log_rows_total' && /reject/.test(s.labels.result ?? ''))
    .reduce((t, s) => t + s.value, 0);
  if (rejectedCounted !== Number(rejected)) mismatches.push(`rejected: exporter ${rejectedCounted}, SQL ${rejected}`);
  return { checked: expected.length, rejected: Number(rejected), mismatches };
}
