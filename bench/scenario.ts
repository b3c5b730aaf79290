import type { BenchOptions } from './options.js';
import { Agent } from 'node:http';
import { OUR_DEFAULTS_ROLE, OUR_OVERLAP_ROLE, OUR_ROLE, PEER_ROLE, type BenchDatabase } from './database.js';
import { get, runLoad, scrapeEvery, seriesCount } from './load.js';
import { cpuMillis, residentBytes } from './processes.js';
import type { ExporterProcess } from './processes.js';
import { median, percentile } from './stats.js';

/** The figures of one exporter in one scenario (base database, or with the extra tables). */
export interface ExporterFigures {
  latency: LatencyFigures[];
  series: number;
  rssBytes: { median: number; max: number };
  dbTime: { totalMs: number; calls: number; perMinuteMs: number; scrapes: number; top: TopStatement[] };
}

/** One exporter at one concurrency: medians over the interleaved rounds, and each round's p99. */
export interface LatencyFigures {
  concurrency: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  roundP99Ms: number[];
  cpuMsPerRequest: number;
}

/** The statements that cost an exporter the most database time in the window. */
export interface TopStatement {
  query: string;
  calls: number;
  totalMs: number;
}

export interface ScenarioFigures {
  label: string;
  ours: ExporterFigures;
  peer: ExporterFigures;
  /** This exporter at its default intervals (15 s to 2 min), in the same window. */
  oursDefaults: ExporterFigures['dbTime'];
  /** This exporter with only the collectors overlapping the peer's defaults, every 1 s, in the same window. */
  oursOverlap: ExporterFigures['dbTime'];
}

/** The peer's cost per scrape times 4: what it costs scraped every 15 s (it queries on every scrape). */
export function peerPerMinuteAt15s(peer: ExporterFigures['dbTime']): number {
  return peer.scrapes === 0 ? NaN : (peer.totalMs / peer.scrapes) * 4;
}

export type ScenarioOptions = Pick<BenchOptions, 'requests' | 'latencySeconds' | 'latencyRounds' | 'concurrency' | 'dbTimeSeconds' | 'scrapeIntervalMs'>;

const ROLES = [OUR_ROLE, PEER_ROLE, OUR_DEFAULTS_ROLE, OUR_OVERLAP_ROLE];

/** Samples both processes' RSS every second while the scenario runs. */
function rssSampler(procs: ExporterProcess[]) {
  const samples = new Map<string, number[]>(procs.map((p) => [p.name, []]));
  const sample = () => {
    for (const p of procs) {
      try {
        samples.get(p.name)!.push(residentBytes(p.child.pid!));
      } catch {
        /* process gone: the scenario fails elsewhere */
      }
    }
  };
  sample();
  const timer = setInterval(sample, 1000);
  return {
    stop(name: string) {
      clearInterval(timer);
      sample();
      const values = samples.get(name) ?? [];
      return { median: percentile(values, 50), max: Math.max(...values) };
    },
  };
}

async function scrapeOnce(url: string): Promise<string> {
  const agent = new Agent({ keepAlive: false });
  try {
    const res = await get(`${url}/metrics`, agent);
    if (res.status !== 200) throw new Error(`${url}/metrics: HTTP ${res.status}`);
    return res.body;
  } finally {
    agent.destroy();
  }
}

/**
 * Database time from pg_stat_statements, per role: both exporters scraped at the same interval for
 * the same window, at the same time (the roles keep them apart). Top-level statements only: the
 * cluster tracks nested statements too (pg_stat_statements.track = all), and a function's call
 * (system_health_check()) already includes its statements' time. total_exec_time covers execution;
 * planning is not tracked (pg_stat_statements.track_planning is off by default) and is small for both.
 */
async function measureDbTime(db: BenchDatabase, ours: ExporterProcess, peer: ExporterProcess, options: ScenarioOptions) {
  await db.query('SELECT pg_stat_statements_reset()');
  const started = performance.now();
  const [ourScrapes, peerScrapes] = await Promise.all([
    scrapeEvery(`${ours.url}/metrics`, options.scrapeIntervalMs, options.dbTimeSeconds * 1000),
    scrapeEvery(`${peer.url}/metrics`, options.scrapeIntervalMs, options.dbTimeSeconds * 1000),
  ]);
  const seconds = (performance.now() - started) / 1000;
  const rows = await db.query<{ rolname: string; total_ms: number; calls: number }>(
    `SELECT r.rolname, sum(s.total_exec_time)::float8 AS total_ms, sum(s.calls)::float8 AS calls
       FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
      WHERE r.rolname = ANY($1) AND s.toplevel GROUP BY r.rolname`,
    [ROLES],
  );
  const top = await db.query<{ rolname: string; query: string; calls: number; total_ms: number }>(
    `SELECT rolname, query, calls, total_ms FROM (
       SELECT r.rolname, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 110) AS query, s.calls::float8 AS calls,
              s.total_exec_time::float8 AS total_ms,
              row_number() OVER (PARTITION BY r.rolname ORDER BY s.total_exec_time DESC) AS rank
         FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
        WHERE r.rolname = ANY($1) AND s.toplevel) ranked
     WHERE rank <= 5 ORDER BY rolname, total_ms DESC`,
    [ROLES],
  );
  const figures = (role: string, scrapes: number) => {
    const row = rows.find((r) => r.rolname === role);
    const totalMs = row?.total_ms ?? 0;
    const mine = top.filter((t) => t.rolname === role).map((t) => ({ query: t.query, calls: t.calls, totalMs: t.total_ms }));
    return { totalMs, calls: row?.calls ?? 0, perMinuteMs: (totalMs * 60) / seconds, scrapes, top: mine };
  };
  return {
    ours: figures(OUR_ROLE, ourScrapes.scrapes),
    peer: figures(PEER_ROLE, peerScrapes.scrapes),
    oursDefaults: figures(OUR_DEFAULTS_ROLE, 0),
    oursOverlap: figures(OUR_OVERLAP_ROLE, 0),
  };
}

/**
 * CPU a process burns per millisecond while nobody scrapes it (this exporter polls in the background;
 * the peer does nothing): subtracted from the CPU measured under load, so CPU per scrape is the
 * scrape's own.
 */
async function backgroundCpuRate(procs: ExporterProcess[], ms: number): Promise<Map<string, number>> {
  const before = new Map(procs.map((p) => [p.name, cpuMillis(p.child.pid!)]));
  const t0 = performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const elapsed = performance.now() - t0;
  return new Map(procs.map((p) => [p.name, (cpuMillis(p.child.pid!) - before.get(p.name)!) / elapsed]));
}

function latencyFigures(concurrency: number, rounds: { latenciesMs: number[]; errors: number; cpuMs: number }[]): LatencyFigures {
  const requests = rounds.reduce((n, r) => n + r.latenciesMs.length, 0);
  return {
    concurrency,
    requests,
    errors: rounds.reduce((n, r) => n + r.errors, 0),
    p50Ms: median(rounds.map((r) => percentile(r.latenciesMs, 50))),
    p99Ms: median(rounds.map((r) => percentile(r.latenciesMs, 99))),
    roundP99Ms: rounds.map((r) => percentile(r.latenciesMs, 99)),
    cpuMsPerRequest: rounds.reduce((n, r) => n + r.cpuMs, 0) / Math.max(1, requests),
  };
}

/** Latency at each concurrency in interleaved rounds, then series, RSS and database time. */
export async function runScenario(
  label: string,
  db: BenchDatabase,
  ours: ExporterProcess,
  peer: ExporterProcess,
  options: ScenarioOptions,
  log: (line: string) => void,
): Promise<ScenarioFigures> {
  const rss = rssSampler([ours, peer]);
  const latency = new Map<string, ExporterFigures['latency']>([[ours.name, []], [peer.name, []]]);
  const background = await backgroundCpuRate([ours, peer], 5000);
  for (const concurrency of options.concurrency) {
    const rounds = new Map<string, { latenciesMs: number[]; errors: number; seconds: number; cpuMs: number }[]>([[ours.name, []], [peer.name, []]]);
    // Interleaved rounds (ours, peer, ours, peer...): a burst of load from the rest of the machine
    // hits one round of each rather than all of one exporter's requests.
    for (let round = 0; round < options.latencyRounds; round++) {
      for (const proc of [ours, peer]) {
        let cpuBefore = 0;
        let cpuAfter = 0;
        const result = await runLoad(`${proc.url}/metrics`, concurrency, Math.ceil(options.requests / options.latencyRounds), options.latencySeconds / options.latencyRounds, {
          onStart: () => (cpuBefore = cpuMillis(proc.child.pid!)),
          onEnd: () => (cpuAfter = cpuMillis(proc.child.pid!)),
        });
        const cpuMs = Math.max(0, cpuAfter - cpuBefore - background.get(proc.name)! * result.seconds * 1000);
        rounds.get(proc.name)!.push({ ...result, cpuMs });
      }
    }
    for (const proc of [ours, peer]) {
      const row = latencyFigures(concurrency, rounds.get(proc.name)!);
      latency.get(proc.name)!.push(row);
      log(
        `  ${label}: ${proc.name} x${concurrency}: ${row.requests} requests, p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms ` +
          `(rounds ${row.roundP99Ms.map((v) => v.toFixed(1)).join(', ')}), ${row.cpuMsPerRequest.toFixed(2)} ms CPU per request, ${row.errors} errors`,
      );
    }
  }
  const [ourText, peerText] = [await scrapeOnce(ours.url), await scrapeOnce(peer.url)];
  log(`  ${label}: database time window, ${options.dbTimeSeconds} s, both scraped every ${options.scrapeIntervalMs} ms`);
  const dbTime = await measureDbTime(db, ours, peer, options);
  log(
    `  ${label}: database time per minute: ours ${dbTime.ours.perMinuteMs.toFixed(0)} ms, peer ${dbTime.peer.perMinuteMs.toFixed(0)} ms; ` +
      `ours overlapping collectors ${dbTime.oursOverlap.perMinuteMs.toFixed(0)} ms; ` +
      `ours at default intervals ${dbTime.oursDefaults.perMinuteMs.toFixed(0)} ms, peer at 15 s ${peerPerMinuteAt15s(dbTime.peer).toFixed(0)} ms`,
  );
  return {
    label,
    ours: { latency: latency.get(ours.name)!, series: seriesCount(ourText), rssBytes: rss.stop(ours.name), dbTime: dbTime.ours },
    peer: { latency: latency.get(peer.name)!, series: seriesCount(peerText), rssBytes: rss.stop(peer.name), dbTime: dbTime.peer },
    oursDefaults: dbTime.oursDefaults,
    oursOverlap: dbTime.oursOverlap,
  };
}

/** CREATE TABLE extra_N (id int), in transactions of 200. */
export async function createExtraTables(db: BenchDatabase, count: number): Promise<void> {
  for (let first = 1; first <= count; first += 200) {
    const last = Math.min(count, first + 199);
    await db.query(`DO $$ BEGIN FOR i IN ${first}..${last} LOOP EXECUTE format('CREATE TABLE extra_%s (id int)', i); END LOOP; END $$`);
  }
}

export async function dropExtraTables(db: BenchDatabase, count: number): Promise<void> {
  for (let first = 1; first <= count; first += 200) {
    const last = Math.min(count, first + 199);
    await db.query(`DO $$ BEGIN FOR i IN ${first}..${last} LOOP EXECUTE format('DROP TABLE IF EXISTS extra_%s', i); END LOOP; END $$`);
  }
}
