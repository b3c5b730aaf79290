import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
import { installSignalHandlers, runBenchmark } from './cleanup.js';
import { seedCorpus } from './corpus.js';
import { OUR_DEFAULTS_ROLE, OUR_OVERLAP_ROLE, startDatabase } from './database.js';
import { DEFAULT_COLLECTORS, OVERLAP_COLLECTORS, startOurExporter, startPeerExporter } from './exporters.js';
import { measureIngestion } from './ingestion.js';
import { machineInfo } from './machine.js';
import { readOptions } from './options.js';
import { renderReport, type BenchResults } from './report.js';
import { carrySections } from './report-sections.js';
import { createExtraTables, dropExtraTables, runScenario, type ScenarioFigures } from './scenario.js';
import { runSoak } from './soak.js';

/**
 * npm run bench: this exporter against Debian's prometheus-postgres-exporter on one seeded database,
 * side by side, then query-log ingestion and a memory soak; writes docs/benchmarks.md.
 */
const started = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

async function main(): Promise<void> {
  const options = readOptions();
  if (options.fromJson) {
    // Re-render only (e.g. after a wording change in report.ts): the figures stay those of that run.
    const results = JSON.parse(readFileSync(options.fromJson, 'utf8')) as BenchResults;
    const previous = existsSync(options.output) ? readFileSync(options.output, 'utf8') : '';
    writeFileSync(options.output, carrySections(previous, renderReport(results)));
    log(`wrote ${options.output} from ${options.fromJson}`);
    return;
  }
  installSignalHandlers();
  log(`benchmark${options.quick ? ' (quick)' : ''}: starting PostgreSQL`);
  const db = await startDatabase();
  log(`seeding ${options.documents} chunks`);
  const seed = await seedCorpus(db, options.documents, (line) => log(`  seed: ${line}`));
  const collectors = DEFAULT_COLLECTORS.filter((name) => name in COLLECTOR_FACTORIES);

  log('starting both exporters');
  const ours = await startOurExporter(db, { name: 'pgvector-exporter', intervalMs: options.scrapeIntervalMs });
  const peer = await startPeerExporter(db);
  // Started now so that its slow collectors (1-2 min) are on their natural cadence by the first window.
  const oursDefaults = await startOurExporter(db, { name: 'pgvector-exporter (default intervals)', role: OUR_DEFAULTS_ROLE });
  const oursOverlap = await startOurExporter(db, {
    name: 'pgvector-exporter (overlapping collectors)',
    role: OUR_OVERLAP_ROLE,
    intervalMs: options.scrapeIntervalMs,
    collectors: OVERLAP_COLLECTORS,
  });
  const scenarios: ScenarioFigures[] = [];
  scenarios.push(await runScenario('corpus', db, ours, peer, options, log));
  log(`creating ${options.extraTables} extra tables`);
  const t0 = performance.now();
  await createExtraTables(db, options.extraTables);
  const extraTablesSeconds = (performance.now() - t0) / 1000;
  scenarios.push(await runScenario(`corpus + ${options.extraTables.toLocaleString('en-US')} tables`, db, ours, peer, options, log));
  await ours.stop();
  await peer.stop();
  await oursDefaults.stop();
  await oursOverlap.stop();
  await dropExtraTables(db, options.extraTables);

  log(`query-log ingestion: ${options.ingestRows} rows`);
  const ingestion = collectors.includes('query_log')
    ? await measureIngestion(db, options.ingestRows, log)
    : { notMeasured: 'the query_log collector did not exist yet when this ran' };
  await db.query('TRUNCATE query_performance_log');

  log(`soak: ${options.soakCycles} cycles at ${options.soakIntervalMs} ms (at most ${options.soakMaxSeconds} s)`);
  const soak = await runSoak(db, { cycles: options.soakCycles, intervalMs: options.soakIntervalMs, maxSeconds: options.soakMaxSeconds }, log);
  log(`soak: ${soak.minCycles} cycles in ${soak.seconds.toFixed(0)} s, RSS ${(soak.startBytes / 2 ** 20).toFixed(1)} -> ${(soak.endBytes / 2 ** 20).toFixed(1)} MiB`);

  const results: BenchResults = {
    options,
    machine: await machineInfo(db),
    collectors,
    seed,
    extraTablesSeconds,
    scenarios,
    ingestion,
    soak,
    totalSeconds: (performance.now() - started) / 1000,
  };
  mkdirSync(dirname(options.output), { recursive: true });
  // Sections other scripts write (npm run bench:custom) are carried over, not lost.
  const previous = existsSync(options.output) ? readFileSync(options.output, 'utf8') : '';
  writeFileSync(options.output, carrySections(previous, renderReport(results)));
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/last-run.json', `${JSON.stringify(results, null, 2)}\n`);
  log(`wrote ${options.output} and bench/results/last-run.json`);
}

runBenchmark(main);
