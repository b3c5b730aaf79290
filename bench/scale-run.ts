import { mkdirSync, writeFileSync } from 'node:fs';
import { installSignalHandlers, runBenchmark } from './cleanup.js';
import { seedCorpus } from './corpus.js';
import { corpusScenario } from './corpus-scale.js';
import { startDatabase } from './database.js';
import { runHourSoak } from './hour-soak.js';
import { conversionScenario, createDatabase, retentionScenario, throughputScenario } from './query-log-scale.js';
import { OUR_DEFAULTS_ROLE } from './database.js';
import { startOurExporter } from './exporters.js';

/**
 * npm run bench:scale -- <scenario>: the query log at the specification's throughput, the exporter's
 * cost at scale and its memory over an hour (issue 15). Each scenario writes
 * bench/results/scale-<scenario>.json; `report` renders them into docs/benchmarks.md.
 */
const started = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}`);

async function main(): Promise<void> {
  const scenario = process.argv[2];
  installSignalHandlers();
  mkdirSync('bench/results', { recursive: true });
  const save = (figures: unknown) => {
    writeFileSync(`bench/results/scale-${scenario}.json`, `${JSON.stringify(figures, null, 2)}\n`);
    log(`wrote bench/results/scale-${scenario}.json`);
  };
  switch (scenario) {
    case 'soak': {
      const seconds = Number(process.env.BENCH_SOAK_HOUR_SECONDS ?? 3600);
      const db = await startDatabase();
      await seedCorpus(db, 200, (line) => log(`  seed: ${line}`));
      log(`soak: ${seconds} s at default intervals`);
      save(await runHourSoak(db, seconds, 20, log));
      break;
    }
    case 'retention': {
      const db = await startDatabase();
      save(await retentionScenario(db, Number(process.env.BENCH_RETENTION_ROWS ?? 2_000_000), 200, log));
      break;
    }
    case 'conversion': {
      const db = await startDatabase();
      save(await conversionScenario(db, Number(process.env.BENCH_CONVERSION_ROWS ?? 1_000_000), 500, log));
      break;
    }
    case 'throughput': {
      const seconds = Number(process.env.BENCH_THROUGHPUT_SECONDS ?? 600);
      const db = await startDatabase();
      // Side by side, one after the other on the same cluster: the partitioned log (migration 007), then the
      // previous design (an unpartitioned log: migrations through 006) in a database of its own.
      const figures: Record<string, unknown> = {};
      for (const design of ['partitioned', 'unpartitioned'] as const) {
        const database = design === 'partitioned' ? undefined : await createDatabase(db, 'rag_unpartitioned', '006').then(() => 'rag_unpartitioned');
        const exporter = await startOurExporter(db, { name: `pgvector-exporter (default intervals, ${design})`, role: OUR_DEFAULTS_ROLE, database });
        log(`throughput (${design} log): 2000 rows/s for ${seconds} s`);
        figures[design] = await throughputScenario(db, exporter.url, OUR_DEFAULTS_ROLE, seconds, 2000, log, database);
        await exporter.stop();
      }
      save(figures);
      break;
    }
    case 'corpus': {
      const db = await startDatabase();
      const sizes = { small: Number(process.env.BENCH_CORPUS_SMALL ?? 10_000), large: Number(process.env.BENCH_CORPUS_LARGE ?? 1_000_000) };
      const seconds = { warmup: Number(process.env.BENCH_CORPUS_WARMUP_SECONDS ?? 150), window: Number(process.env.BENCH_CORPUS_SECONDS ?? 600) };
      save(await corpusScenario(db, sizes, seconds, log));
      break;
    }
    default:
      throw new Error(`unknown scenario ${scenario ?? '(none)'}`);
  }
}

runBenchmark(main);
