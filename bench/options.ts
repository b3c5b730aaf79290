import { parseArgs } from 'node:util';

/**
 * The benchmark's knobs: environment variables (BENCH_*) with flag overrides. Defaults keep a full
 * run under ~15 minutes on a 2-core machine; --quick is a smoke run of a couple of minutes.
 */
export interface BenchOptions {
  quick: boolean;
  /** Chunks seeded (documents, each with one 3,072-dimension embedding). */
  documents: number;
  /** /metrics requests per exporter per concurrency level. */
  requests: number;
  /** Upper bound on the seconds one exporter's latency measurement may take (the peer can be slow). */
  latencySeconds: number;
  /** The requests are split into this many rounds, interleaved between the two exporters. */
  latencyRounds: number;
  concurrency: number[];
  /** Length of the database-time window, both exporters scraped every scrapeIntervalMs. */
  dbTimeSeconds: number;
  scrapeIntervalMs: number;
  extraTables: number;
  /** Rows inserted into query_performance_log for the ingestion measurement. */
  ingestRows: number;
  /** Poll cycles of every collector in the soak, and the poll interval used there. */
  soakCycles: number;
  soakIntervalMs: number;
  /** The soak stops at this many seconds even if the cycle target is not reached. */
  soakMaxSeconds: number;
  /** Markdown output; docs/benchmarks.md by default, so a run updates the committed figures. */
  output: string;
  /** Re-render the Markdown from a previous run's results JSON instead of measuring. */
  fromJson?: string;
}

const QUICK: Omit<BenchOptions, 'output' | 'quick' | 'fromJson'> = {
  documents: 200,
  requests: 200,
  latencySeconds: 10,
  latencyRounds: 3,
  concurrency: [1, 50],
  dbTimeSeconds: 10,
  scrapeIntervalMs: 1000,
  extraTables: 200,
  ingestRows: 200_000,
  soakCycles: 300,
  soakIntervalMs: 100,
  soakMaxSeconds: 30,
};

const FULL: Omit<BenchOptions, 'output' | 'quick' | 'fromJson'> = {
  documents: 2000,
  requests: 2000,
  latencySeconds: 27,
  latencyRounds: 3,
  concurrency: [1, 50],
  dbTimeSeconds: 120,
  scrapeIntervalMs: 1000,
  extraTables: 2000,
  ingestRows: 2_000_000,
  soakCycles: 10_000,
  soakIntervalMs: 10,
  soakMaxSeconds: 480,
};

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name}: "${value}" is not a whole number`);
  return n;
}

export function readOptions(argv = process.argv.slice(2), env = process.env): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: { quick: { type: 'boolean', default: false }, output: { type: 'string' }, 'from-json': { type: 'string' } },
    strict: true,
  });
  const quick = Boolean(values.quick) || env.BENCH_QUICK === '1';
  const base = quick ? QUICK : FULL;
  return {
    quick,
    documents: positiveInt('BENCH_DOCUMENTS', env.BENCH_DOCUMENTS, base.documents),
    requests: positiveInt('BENCH_REQUESTS', env.BENCH_REQUESTS, base.requests),
    latencySeconds: positiveInt('BENCH_LATENCY_SECONDS', env.BENCH_LATENCY_SECONDS, base.latencySeconds),
    latencyRounds: Math.max(1, positiveInt('BENCH_LATENCY_ROUNDS', env.BENCH_LATENCY_ROUNDS, base.latencyRounds)),
    concurrency: base.concurrency,
    dbTimeSeconds: positiveInt('BENCH_DB_TIME_SECONDS', env.BENCH_DB_TIME_SECONDS, base.dbTimeSeconds),
    scrapeIntervalMs: base.scrapeIntervalMs,
    extraTables: positiveInt('BENCH_EXTRA_TABLES', env.BENCH_EXTRA_TABLES, base.extraTables),
    ingestRows: positiveInt('BENCH_INGEST_ROWS', env.BENCH_INGEST_ROWS, base.ingestRows),
    soakCycles: positiveInt('BENCH_SOAK_CYCLES', env.BENCH_SOAK_CYCLES, base.soakCycles),
    soakIntervalMs: positiveInt('BENCH_SOAK_INTERVAL_MS', env.BENCH_SOAK_INTERVAL_MS, base.soakIntervalMs),
    soakMaxSeconds: positiveInt('BENCH_SOAK_MAX_SECONDS', env.BENCH_SOAK_MAX_SECONDS, base.soakMaxSeconds),
    output: values.output ?? env.BENCH_OUTPUT ?? (quick ? 'bench/results/benchmarks-quick.md' : 'docs/benchmarks.md'),
    fromJson: values['from-json'],
  };
}
