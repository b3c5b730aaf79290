import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent } from 'node:http';
import { installSignalHandlers, runBenchmark } from './cleanup.js';
import { seedCorpus } from './corpus.js';
import { startDatabase } from './database.js';
import { startOurExporter } from './exporters.js';
import { get, seriesCount } from './load.js';
import { machineInfo } from './machine.js';
import { cpuMillis, residentBytes, type ExporterProcess } from './processes.js';
import { sleep } from '../src/sleep.js';
import { withSection } from './report-sections.js';
import { median, ratio } from './stats.js';
import { pooledPercentileMs, runWrk, type WrkResult } from './wrk.js';

/**
 * npm run bench:custom: the cost of custom SQL collectors. Two exporters side by side on one seeded
 * database, the same built-in collectors at their default intervals; one also runs COLLECTORS custom
 * collectors (docs/custom-collectors.md) polling every second. /metrics latency in interleaved rounds,
 * RSS and CPU sampled over the same window. Writes its section of docs/benchmarks.md (the full
 * `npm run bench` keeps it) and bench/results/custom-collectors.json. Bounded: a few minutes.
 */
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const COLLECTORS = env('BENCH_CUSTOM_COLLECTORS', 100);
const DOCUMENTS = env('BENCH_DOCUMENTS', 300);
/** Interleaved rounds of paced scraping; seconds per exporter, case and round; each scraper's pause between scrapes. */
const ROUNDS = env('BENCH_LATENCY_ROUNDS', 10);
const ROUND_SECONDS = env('BENCH_ROUND_SECONDS', 4);
const SCRAPE_PAUSE_MS = env('BENCH_SCRAPE_PAUSE_MS', 20);
/** Rounds and seconds of wrk at saturation (capacity). */
const CAPACITY_ROUNDS = env('BENCH_CAPACITY_ROUNDS', 6);
const CAPACITY_SECONDS = env('BENCH_CAPACITY_SECONDS', 2);
const CAPACITY_CONNECTIONS = 10;
const SETTLE_SECONDS = env('BENCH_CUSTOM_SETTLE_SECONDS', 20);
const IDLE_SECONDS = env('BENCH_CUSTOM_IDLE_SECONDS', 30);
const OUTPUT = process.env.BENCH_OUTPUT ?? 'docs/benchmarks.md';
/** Scrapers at once: one Prometheus, and ten (an HA pair, federation, ad-hoc curl, ... far more than usual). */
const SCRAPERS = [1, 10];
/** How the scrapers ask: gzip as Prometheus does (the cached compressed body), and plain text. */
const ENCODINGS = ['gzip', 'identity'] as const;
type Encoding = (typeof ENCODINGS)[number];

const started = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

type Shape = (i: number) => { sql: string; labels: string[]; metrics: string[] };

/**
 * What a RAG team's own collectors look like: a count or a sum per a few categories, 1 to 3 series each
 * (2 on average): documents, chunks per type, embeddings per model, searches per type, latency.
 */
const REALISTIC: Shape[] = [
  (i) => ({ sql: `SELECT count(*) AS v FROM framework_documents WHERE length(title) > ${i % 7}`, labels: [], metrics: ['v'] }),
  (i) => ({ sql: `SELECT chunk_type, count(*) AS v FROM framework_metadata WHERE character_count > ${i} GROUP BY chunk_type`, labels: ['chunk_type'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT model_name, count(*) AS v FROM chunk_embeddings WHERE created_at > now() - interval '${i + 1} days' GROUP BY model_name`, labels: ['model_name'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT query_type, count(*) AS v FROM query_performance_log WHERE ts > now() - interval '1 day' AND rows_returned >= ${i % 3} GROUP BY query_type`, labels: ['query_type'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT coalesce(avg(duration_ms), 0) AS v, coalesce(max(duration_ms), 0) AS m FROM query_performance_log WHERE ts > now() - interval '1 day' AND rows_returned > ${i % 20}`, labels: [], metrics: ['v', 'm'] }),
];

/** Wider collectors (the first version of this bench): up to 10 label sets each, about 9 series on average. */
const WIDE: Shape[] = [
  (i) => ({ sql: `SELECT source_file, count(*) AS v FROM framework_documents WHERE length(title) > ${i % 7} GROUP BY source_file ORDER BY 2 DESC LIMIT 10`, labels: ['source_file'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT chunk_type, sum(word_count) AS v FROM framework_metadata WHERE character_count > ${i} GROUP BY chunk_type`, labels: ['chunk_type'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT model_name, count(*) AS v FROM chunk_embeddings WHERE created_at > now() - interval '${i + 1} days' GROUP BY model_name`, labels: ['model_name'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT query_type, count(*) AS v FROM query_performance_log WHERE ts > now() - interval '${i + 1} minutes' GROUP BY query_type`, labels: ['query_type'], metrics: ['v'] }),
  (i) => ({ sql: `SELECT relname, n_live_tup + ${i} AS v FROM pg_stat_user_tables WHERE schemaname = 'public' ORDER BY relname LIMIT 10`, labels: ['relname'], metrics: ['v'] }),
];

const SCENARIOS = [
  { key: 'realistic', title: `${COLLECTORS} custom collectors of 1-3 series`, shapes: REALISTIC },
  { key: 'wide', title: `${COLLECTORS} custom collectors of ~9 series`, shapes: WIDE },
].filter((s) => (process.env.BENCH_CUSTOM_SCENARIOS ?? 'realistic,wide').split(',').includes(s.key));

function collectorFile(count: number, shapes: Shape[]): string {
  const lines = ['collectors:'];
  for (let i = 0; i < count; i++) {
    const { sql, labels, metrics } = shapes[i % shapes.length]!(i);
    lines.push(
      `  - name: bench_custom_${i}`,
      `    query: ${JSON.stringify(sql)}`,
      '    interval: 1s',
      '    timeout: 5s',
      `    labels: [${labels.join(', ')}]`,
      '    metrics:',
      ...metrics.map((m) => `      - { name: bench_custom_${i}_${m}, type: gauge, column: ${m}, help: "custom collector ${i} of the benchmark" }`),
    );
  }
  return `${lines.join('\n')}\n`;
}

/**
 * Paced scraping: wrk, each scraper pausing SCRAPE_PAUSE_MS after every answer; percentiles of every
 * latency of the interleaved rounds pooled (wrk's own histograms, merged).
 */
interface LatencyFigures {
  encoding: Encoding;
  scrapers: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/**
 * wrk with CAPACITY_CONNECTIONS connections requesting back to back: the exporter saturated, so this is its
 * capacity (requests per second), and the figure for the exporter with custom collectors is the median
 * of its per-round ratios against the one without, measured back to back in the same round.
 */
interface CapacityFigures {
  encoding: Encoding;
  requestsPerSecond: number;
  errors: number;
  pairedRatio?: number;
}

interface Figures {
  name: string;
  series: number;
  /** Series of the custom collectors' own families (the rest of the difference is their self-metrics). */
  customSeries: number;
  bodyBytes: number;
  latency: LatencyFigures[];
  capacity: CapacityFigures[];
  rssMedianBytes: number;
  rssMaxBytes: number;
  /** CPU of the process while nobody scrapes: what the polling itself costs. */
  idleCpuPercent: number;
  polls: number;
  failedPolls: number;
}

function pollCounts(text: string): { polls: number; failed: number } {
  let polls = 0;
  let failed = 0;
  for (const m of text.matchAll(/^pgvector_exporter_collector_polls_total\{collector="bench_custom_\d+",result="(\w+)"\} (\S+)$/gm)) {
    polls += Number(m[2]);
    if (m[1] === 'failure') failed += Number(m[2]);
  }
  return { polls, failed };
}

interface ScenarioFigures {
  key: string;
  title: string;
  results: [Figures, Figures];
}

async function main(): Promise<void> {
  installSignalHandlers();
  log('starting PostgreSQL');
  const db = await startDatabase();
  log(`seeding ${DOCUMENTS} chunks`);
  const seed = await seedCorpus(db, DOCUMENTS, (line) => log(`  seed: ${line}`));
  await db.query(`INSERT INTO query_performance_log (query_type, duration_ms, rows_returned)
    SELECT (ARRAY['vector_search','hybrid_search','insert'])[1 + n % 3], n % 500, n % 20 FROM generate_series(1, 20000) AS n`);

  const scenarios: ScenarioFigures[] = [];
  for (const scenario of SCENARIOS) {
    // A fresh pair per scenario: the same start, the same age, measured over the same window.
    log(`${scenario.key}: starting two exporters (one with ${scenario.title} every 1 s)`);
    const none = await startOurExporter(db, { name: 'no custom collectors' });
    const custom = await startOurExporter(db, { name: `${scenario.title} every 1 s`, customCollectors: collectorFile(COLLECTORS, scenario.shapes) });
    try {
      scenarios.push({ key: scenario.key, title: scenario.title, results: await measurePair(none, custom) });
    } finally {
      await custom.stop();
      await none.stop();
    }
  }

  const machine = await machineInfo(db);
  const report = { collectors: COLLECTORS, idleSeconds: IDLE_SECONDS, documents: seed.documents, machine, scenarios, seconds: (performance.now() - started) / 1000 };
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/custom-collectors.json', `${JSON.stringify(report, null, 2)}\n`);
  const existing = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : '# Benchmarks\n';
  writeFileSync(OUTPUT, withSection(existing, 'custom-collectors', renderSection(report)));
  log(`wrote the custom-collectors section of ${OUTPUT} and bench/results/custom-collectors.json`);
}

async function measurePair(none: ExporterProcess, custom: ExporterProcess): Promise<[Figures, Figures]> {
  const exporters: ExporterProcess[] = [none, custom];
  log(`settling ${SETTLE_SECONDS} s`);
  await sleep(SETTLE_SECONDS * 1000);

  const rss = new Map<string, number[]>(exporters.map((e) => [e.name, []]));
  const sampler = setInterval(() => {
    for (const e of exporters) rss.get(e.name)!.push(residentBytes(e.child.pid!));
  }, 500);

  log(`idle window ${IDLE_SECONDS} s (no scrapes): CPU of polling`);
  const cpu0 = exporters.map((e) => cpuMillis(e.child.pid!));
  const before = pollCounts((await get(`${custom.url}/metrics`, new Agent())).body);
  await sleep(IDLE_SECONDS * 1000);
  const idleCpu = exporters.map((e, i) => (cpuMillis(e.child.pid!) - cpu0[i]!) / (IDLE_SECONDS * 10));
  const after = pollCounts((await get(`${custom.url}/metrics`, new Agent())).body);

  const cases = ENCODINGS.flatMap((encoding) => SCRAPERS.map((scrapers) => ({ encoding, scrapers, key: `${encoding} ${scrapers}` })));
  const paced = new Map<string, Map<string, WrkResult[]>>(exporters.map((e) => [e.name, new Map(cases.map((c) => [c.key, []]))]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const { encoding, scrapers, key } of cases) {
      // Interleaved, and in alternating order, so drift on a busy machine hits both alike.
      const order = round % 2 === 0 ? exporters : [...exporters].reverse();
      for (const e of order) paced.get(e.name)!.get(key)!.push(await runWrk(`${e.url}/metrics`, scrapers, ROUND_SECONDS, { 'accept-encoding': encoding }, SCRAPE_PAUSE_MS));
    }
    log(`paced round ${round + 1}/${ROUNDS} done`);
  }
  const capacity = new Map<string, Map<Encoding, WrkResult[]>>(exporters.map((e) => [e.name, new Map(ENCODINGS.map((enc) => [enc, []]))]));
  for (let round = 0; round < CAPACITY_ROUNDS; round++) {
    for (const encoding of ENCODINGS) {
      const order = round % 2 === 0 ? exporters : [...exporters].reverse();
      for (const e of order) capacity.get(e.name)!.get(encoding)!.push(await runWrk(`${e.url}/metrics`, CAPACITY_CONNECTIONS, CAPACITY_SECONDS, { 'accept-encoding': encoding }));
    }
    log(`capacity round ${round + 1}/${CAPACITY_ROUNDS} done`);
  }
  clearInterval(sampler);

  const results: Figures[] = [];
  for (const [i, e] of exporters.entries()) {
    const body = (await get(`${e.url}/metrics`, new Agent())).body;
    const samples = rss.get(e.name)!;
    results.push({
      name: e.name,
      series: seriesCount(body),
      customSeries: seriesCount(body.split('\n').filter((l) => l.startsWith('bench_custom_') || l.startsWith('#')).join('\n')),
      bodyBytes: Buffer.byteLength(body),
      latency: cases.map((c) => {
        const mine = paced.get(e.name)!.get(c.key)!;
        return {
          encoding: c.encoding,
          scrapers: c.scrapers,
          requests: mine.reduce((n, r) => n + r.requests, 0),
          errors: mine.reduce((n, r) => n + r.errors, 0),
          p50Ms: pooledPercentileMs(mine, 50),
          p99Ms: pooledPercentileMs(mine, 99),
        };
      }),
      capacity: ENCODINGS.map((encoding) => {
        const mine = capacity.get(e.name)!.get(encoding)!;
        const base = capacity.get(none.name)!.get(encoding)!;
        return {
          encoding,
          requestsPerSecond: median(mine.map((r) => r.requestsPerSecond)),
          errors: mine.reduce((n, r) => n + r.errors, 0),
          ...(e === custom ? { pairedRatio: median(mine.map((r, i) => ratio(r.requestsPerSecond, base[i]!.requestsPerSecond))) } : {}),
        };
      }),
      rssMedianBytes: median(samples),
      rssMaxBytes: Math.max(...samples),
      idleCpuPercent: idleCpu[i]!,
      polls: e === custom ? after.polls - before.polls : 0,
      failedPolls: e === custom ? after.failed - before.failed : 0,
    });
  }
  return results as [Figures, Figures];
}

function renderTable(report: { collectors: number; idleSeconds: number }, scenario: ScenarioFigures): string[] {
  const [none, custom] = scenario.results;
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const pct = (a: number, b: number) => `${ratio(a, b) >= 1 ? '+' : ''}${((ratio(a, b) - 1) * 100).toFixed(0)} %`;
  const within = (a: number, b: number) => (ratio(a, b) <= 1.1 ? 'within 10 %' : 'above 10 %');
  return [
    `| ${scenario.title} | no custom collectors | with them, every 1 s | difference |`,
    '|---|---|---|---|',
    `| series on /metrics | ${none.series} | ${custom.series} (${custom.customSeries} of the collectors' own) | +${custom.series - none.series} |`,
    `| /metrics body | ${(none.bodyBytes / 1024).toFixed(0)} KiB | ${(custom.bodyBytes / 1024).toFixed(0)} KiB | ${pct(custom.bodyBytes, none.bodyBytes)} |`,
    ...none.latency.flatMap((l, i) => {
      const c = custom.latency[i]!;
      const scrape = `${l.encoding === 'gzip' ? 'gzip' : 'plain text'}, ${l.scrapers === 1 ? '1 scraper' : `${l.scrapers} scrapers`}`;
      return [
        `| /metrics p50, ${scrape} (${l.requests} / ${c.requests} scrapes) | ${l.p50Ms.toFixed(2)} ms | ${c.p50Ms.toFixed(2)} ms | ${pct(c.p50Ms, l.p50Ms)} (${within(c.p50Ms, l.p50Ms)}) |`,
        `| /metrics p99, ${scrape} | ${l.p99Ms.toFixed(2)} ms | ${c.p99Ms.toFixed(2)} ms | ${pct(c.p99Ms, l.p99Ms)} (${within(c.p99Ms, l.p99Ms)}) |`,
      ];
    }),
    ...none.capacity.map((l, i) => {
      const c = custom.capacity[i]!;
      return `| capacity, ${l.encoding === 'gzip' ? 'gzip' : 'plain text'}: requests/s with ${CAPACITY_CONNECTIONS} connections back to back | ${l.requestsPerSecond.toFixed(0)} | ${c.requestsPerSecond.toFixed(0)} | ${pct(c.pairedRatio!, 1)} |`;
    }),
    `| RSS, median over the run | ${mib(none.rssMedianBytes)} MiB | ${mib(custom.rssMedianBytes)} MiB | ${pct(custom.rssMedianBytes, none.rssMedianBytes)} (${within(custom.rssMedianBytes, none.rssMedianBytes)}) |`,
    `| RSS, max | ${mib(none.rssMaxBytes)} MiB | ${mib(custom.rssMaxBytes)} MiB | ${pct(custom.rssMaxBytes, none.rssMaxBytes)} |`,
    `| CPU while not scraped (${report.idleSeconds} s) | ${none.idleCpuPercent.toFixed(1)} % | ${custom.idleCpuPercent.toFixed(1)} % | +${(custom.idleCpuPercent - none.idleCpuPercent).toFixed(1)} points |`,
    `| custom collector polls in that window | | ${custom.polls} (${custom.failedPolls} failed) | of ${report.collectors * report.idleSeconds} scheduled |`,
  ];
}

function renderSection(report: { collectors: number; idleSeconds: number; documents: number; machine: Awaited<ReturnType<typeof machineInfo>>; scenarios: ScenarioFigures[]; seconds: number }): string {
  return [
    '## Custom SQL collectors',
    '',
    `\`npm run bench:custom\` (bench/custom-collectors.ts), ${new Date().toISOString().slice(0, 10)}, ${report.machine.cpus} cores, ` +
      `PostgreSQL ${report.machine.postgres}, ${report.documents} chunks; ${report.seconds.toFixed(0)} s. Per scenario, two fresh exporters side by side on the same database, ` +
      `run as the image runs them (the Dockerfile's node flags), the built-in collectors at their default intervals; one also runs ${report.collectors} custom collectors ` +
      'polling every second on the default pool of 3 connections: first collectors of 1 to 3 series (2 on average: counts per chunk type, embedding model, ' +
      'query type, latency; what a RAG team adds), then wider ones (up to 10 label sets, about 9 series each). ' +
      `Latency: \`wrk\` scraping as Prometheus scrapes, at a pace: 1 scraper, then 10 at once, each pausing ${SCRAPE_PAUSE_MS} ms after every answer ` +
      `(far more often than any Prometheus scrapes), asking for gzip as Prometheus does (the body is the cached compressed one) and for plain text; ` +
      `${ROUNDS} rounds of ${ROUND_SECONDS} s per exporter and case, the two exporters back to back in each round and in alternating order. ` +
      "The latency columns are percentiles of every scrape of the rounds pooled (wrk's own latency histograms, merged). " +
      `Capacity: \`wrk\` with ${CAPACITY_CONNECTIONS} keep-alive connections requesting back to back for ${CAPACITY_SECONDS} s, ${CAPACITY_ROUNDS} interleaved rounds; ` +
      "the difference is the median of the rounds' ratios. RSS sampled every 0.5 s over the whole window.",
    '',
    ...report.scenarios.flatMap((s) => [...renderTable(report, s), '']),
    'The aim of issue 14 is /metrics latency and RSS within 10 % of the figures without custom collectors.',
    'How to read it: a scrape never waits for a poll or for a render: it writes a body rendered ahead, every second',
    "while anybody scrapes, from the collectors' cache (src/metrics/scrape-cache.ts). What the collectors add to a",
    "scrape is the body's size: their own series plus four self-metric series each (duration, success, last success,",
    'polls by result); gzip, which Prometheus asks for, makes it several times smaller. A p99 over about 1,900 scrapes',
    'is decided by some 19 slow answers, which on a shared machine fall on either exporter. Capacity is another',
    'figure: requests answered back to back with no pause, the exporter saturated; the polling takes its share of',
    'the one core (the idle CPU row), less than this measurement resolves. The polling costs that CPU and database',
    'time whether or not anyone scrapes.',
  ].join('\n');
}

runBenchmark(main);
