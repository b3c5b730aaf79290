import { Agent } from 'node:http';
import pg from 'pg';
import type { BenchDatabase } from './database.js';
import { startOurExporter } from './exporters.js';
import { parseMetricsText } from '../src/metrics/exposition-text.js';
import { get } from './load.js';
import { residentBytes } from './processes.js';
import { sleep } from '../src/sleep.js';
import { slope } from './stats.js';

/**
 * This exporter's resident memory over many poll cycles at a short interval, with label churn
 * (indexes on a managed table created and dropped under new names, client connections with ever-new
 * application_name values, unknown query types in the query log) and one database restart midway.
 */
export interface SoakFigures {
  seconds: number;
  intervalMs: number;
  /** Polls of the least-polled collector (every collector ran at least this many cycles). */
  minCycles: number;
  totalPolls: number;
  failedPolls: number;
  restartAtSeconds: number;
  rss: { t: number; bytes: number }[];
  warmupSeconds: number;
  startBytes: number;
  endBytes: number;
  maxBytes: number;
  /** Least-squares slope after warm-up, bytes per minute, for the whole window and its second half. */
  slopeBytesPerMinute: number;
  secondHalfSlopeBytesPerMinute: number;
  /** Highest RSS in the first and in the last third of the window after warm-up (V8's heap saws up and down). */
  firstThirdPeakBytes: number;
  lastThirdPeakBytes: number;
  flat: boolean;
}

export interface SoakOptions {
  cycles: number;
  intervalMs: number;
  maxSeconds: number;
}

interface PollCounts {
  min: number;
  total: number;
  failed: number;
}

function pollCounts(text: string): PollCounts {
  const perCollector = new Map<string, number>();
  let failed = 0;
  for (const s of parseMetricsText(text)) {
    if (s.name !== 'pgvector_exporter_collector_polls_total') continue;
    perCollector.set(s.labels.collector!, (perCollector.get(s.labels.collector!) ?? 0) + s.value);
    if (s.labels.result === 'failure') failed += s.value;
  }
  const counts = [...perCollector.values()];
  return { min: counts.length ? Math.min(...counts) : 0, total: counts.reduce((a, b) => a + b, 0), failed };
}

/** Label churn, one step every 250 ms; errors (e.g. while the server restarts) are part of the weather. */
function startChurn(db: BenchDatabase) {
  let stopped = false;
  let step = 0;
  const clients: pg.Client[] = [];
  const run = async () => {
    const admin = { client: undefined as pg.Client | undefined };
    while (!stopped) {
      step += 1;
      try {
        admin.client ??= await db.connect('bench-churn');
        const c = admin.client;
        await c.query(`CREATE INDEX churn_idx_${step} ON source_lines (start_line)`);
        await c.query(`DROP INDEX IF EXISTS churn_idx_${step - 1}`);
        await c.query(`CREATE TABLE churn_t_${step} (id int)`);
        await c.query(`DROP TABLE IF EXISTS churn_t_${step - 1}`);
        await c.query(
          `INSERT INTO query_performance_log (query_type, duration_ms) SELECT 'churn_type_' || ($1::int % 50 + g % 3), random() * 800 FROM generate_series(1, 20) g`,
          [step],
        );
        const client = await db.connect(`churn-app-${step}`);
        clients.push(client);
        if (clients.length > 8) await clients.shift()!.end().catch(() => undefined);
      } catch {
        await admin.client?.end().catch(() => undefined);
        admin.client = undefined;
      }
      await sleep(250);
    }
    await admin.client?.end().catch(() => undefined);
  };
  const done = run();
  return {
    async stop() {
      stopped = true;
      await done;
      await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    },
  };
}

export async function runSoak(db: BenchDatabase, options: SoakOptions, log: (line: string) => void): Promise<SoakFigures> {
  // A connection per collector, so at a 10 ms interval collectors do not queue for the default 3.
  const proc = await startOurExporter(db, { name: 'pgvector-exporter (soak)', intervalMs: options.intervalMs, poolMax: 8 });
  const churn = startChurn(db);
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const rss: { t: number; bytes: number }[] = [];
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let counts: PollCounts = { min: 0, total: 0, failed: 0 };
  let restartAt = NaN;
  try {
    while (elapsed() < options.maxSeconds) {
      await sleep(2000);
      if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
        throw new Error(`the exporter exited during the soak (${proc.child.exitCode ?? proc.child.signalCode}):\n${proc.output()}`);
      }
      rss.push({ t: elapsed(), bytes: residentBytes(proc.child.pid!) });
      counts = pollCounts((await get(`${proc.url}/metrics`, agent)).body);
      if (Number.isNaN(restartAt) && (counts.min >= options.cycles / 2 || elapsed() >= options.maxSeconds / 2)) {
        restartAt = elapsed();
        log(`  soak: ${counts.min} cycles after ${restartAt.toFixed(0)} s; restarting PostgreSQL`);
        await restartServer(db);
      }
      if (counts.min >= options.cycles) break;
    }
  } finally {
    agent.destroy();
    await churn.stop();
    await proc.stop();
  }
  return summarise(rss, counts, restartAt, elapsed(), options);
}

async function restartServer(db: BenchDatabase): Promise<void> {
  db.cluster.stopServer('fast');
  await sleep(3000);
  db.cluster.startServer();
}

/**
 * The first 20 % (at least 10 s) is warm-up: V8 grows its heaps to their working size there. After
 * that RSS saws up and down with garbage collection, so "flat" compares peaks, not single samples:
 * the last third's peak within 10 % of the first third's, and the least-squares trend adding less
 * than 10 % over the window.
 */
function summarise(rss: { t: number; bytes: number }[], counts: PollCounts, restartAt: number, seconds: number, options: SoakOptions): SoakFigures {
  const warmupSeconds = Math.max(10, seconds * 0.2);
  const steady = rss.filter((p) => p.t >= warmupSeconds);
  const secondHalf = steady.filter((p) => p.t >= (warmupSeconds + seconds) / 2);
  const perMinute = (points: typeof rss) => slope(points.map((p) => ({ x: p.t / 60, y: p.bytes })));
  const startBytes = steady[0]?.bytes ?? NaN;
  const endBytes = rss.at(-1)?.bytes ?? NaN;
  const slopeBytesPerMinute = perMinute(steady);
  const secondHalfSlopeBytesPerMinute = perMinute(secondHalf);
  const window = (seconds - warmupSeconds) / 60;
  const third = (seconds - warmupSeconds) / 3;
  const peak = (points: typeof rss) => Math.max(...points.map((p) => p.bytes));
  const firstThirdPeakBytes = peak(steady.filter((p) => p.t < warmupSeconds + third));
  const lastThirdPeakBytes = peak(steady.filter((p) => p.t >= seconds - third));
  const flat = lastThirdPeakBytes <= 1.1 * firstThirdPeakBytes && slopeBytesPerMinute * window < 0.1 * startBytes;
  return {
    seconds,
    intervalMs: options.intervalMs,
    minCycles: counts.min,
    totalPolls: counts.total,
    failedPolls: counts.failed,
    restartAtSeconds: restartAt,
    rss,
    warmupSeconds,
    startBytes,
    endBytes,
    maxBytes: Math.max(...rss.map((p) => p.bytes)),
    slopeBytesPerMinute,
    secondHalfSlopeBytesPerMinute,
    firstThirdPeakBytes,
    lastThirdPeakBytes,
    flat,
  };
}
