import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import pg from 'pg';
import { sleep } from '../src/sleep.js';
import { installSignalHandlers, runBenchmark } from './cleanup.js';
import { seedCorpus } from './corpus.js';
import { BENCH_DATABASE, OUR_DEFAULTS_ROLE, startDatabase, type BenchDatabase } from './database.js';
import { startOurExporter } from './exporters.js';
import { seriesCount } from './load.js';
import { machineInfo } from './machine.js';
import { residentBytes } from './processes.js';
import { withSection } from './report-sections.js';
import { median } from './stats.js';

/**
 * npm run bench:databases: what watching more of a server costs (issue 13). One exporter at its default
 * intervals, logged in as its own role, watches 1, 10 and 50 RAG databases (--auto-discover-databases; the
 * bench database and copies of it), then one database of 1,000 tables with a vector column and an HNSW
 * index each (auto-discovery off). Per case: the exporter's database time per minute (pg_stat_statements
 * of its role, every database), sessions it opened per minute (pg_stat_database.sessions), RSS, series and
 * failed polls. Writes its section of docs/benchmarks.md and bench/results/databases.json. Bounded: about
 * 4 x (WINDOW + setup).
 */
const env = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);
const WINDOW_SECONDS = env('BENCH_DATABASES_SECONDS', 120);
const SETTLE_SECONDS = env('BENCH_DATABASES_SETTLE_SECONDS', 20);
const DOCUMENTS = env('BENCH_DOCUMENTS', 100);
const TABLES = env('BENCH_VECTOR_TABLES', 1000);
const COUNTS = (process.env.BENCH_DATABASES_COUNTS ?? '1,10,50').split(',').map(Number);
const OUTPUT = process.env.BENCH_OUTPUT ?? 'docs/benchmarks.md';
const VECTOR_TABLES_DATABASE = 'vector_tables';

const started = performance.now();
const log = (line: string) => console.log(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}`);

interface Figures {
  label: string;
  databases: number;
  dbTimeMsPerMinute: number;
  callsPerMinute: number;
  sessionsPerMinute: number;
  rssMedianBytes: number;
  rssMaxBytes: number;
  series: number;
  failedPolls: number;
  pollsPerMinute: number;
  /** The exporter's most expensive statements in the window (all databases summed), ms per minute. */
  top: { query: string; msPerMinute: number; calls: number }[];
}

async function admin<T>(db: BenchDatabase, fn: (client: pg.Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const client = new pg.Client({ connectionString: db.cluster.url(database), application_name: 'bench' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The role's statement time and calls in every database, and the sessions every database has seen. */
async function counters(db: BenchDatabase): Promise<{ ms: number; calls: number; sessions: number }> {
  return admin(
    db,
    async (c) => {
      const { rows } = await c.query<{ ms: number; calls: number; sessions: number }>(
        `SELECT (SELECT coalesce(sum(total_exec_time + total_plan_time), 0) FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1))::float8 AS ms,
                (SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1))::float8 AS calls,
                (SELECT coalesce(sum(sessions), 0) FROM pg_stat_database)::float8 AS sessions`,
        [OUR_DEFAULTS_ROLE],
      );
      return rows[0]!;
    },
    BENCH_DATABASE,
  );
}

function pollCounts(text: string): { failed: number; total: number } {
  let failed = 0;
  let total = 0;
  for (const m of text.matchAll(/^pgvector_exporter_collector_polls_total\{([^}]*)\} (\S+)$/gm)) {
    total += Number(m[2]);
    if (m[1]!.includes('result="failure"')) failed += Number(m[2]);
  }
  return { failed, total };
}

/** The role's statements by total time, summed over databases, for the window's breakdown. */
async function statementTimes(db: BenchDatabase): Promise<Map<string, { ms: number; calls: number }>> {
  const rows = await admin(
    db,
    async (c) =>
      (
        await c.query<{ query: string; ms: number; calls: number }>(
          `SELECT left(regexp_replace(query, '\\s+', ' ', 'g'), 80) AS query, sum(total_exec_time + total_plan_time)::float8 AS ms, sum(calls)::float8 AS calls
             FROM pg_stat_statements WHERE userid = (SELECT oid FROM pg_roles WHERE rolname = $1) GROUP BY 1`,
          [OUR_DEFAULTS_ROLE],
        )
      ).rows,
    BENCH_DATABASE,
  );
  return new Map(rows.map((r) => [r.query, { ms: r.ms, calls: r.calls }]));
}

async function measure(db: BenchDatabase, label: string, databases: number, options: { database?: string; autoDiscover: boolean }): Promise<Figures> {
  const exporter = await startOurExporter(db, {
    name: `pgvector-exporter (${label})`,
    role: OUR_DEFAULTS_ROLE,
    database: options.database,
    // The maintenance database `postgres` is left out, so the case's databases are exactly the RAG ones.
    ...(options.autoDiscover ? { extraYaml: 'auto_discover:\n  enabled: true\n  exclude_databases: [postgres]' } : {}),
    readyTimeoutMs: 180_000,
    // Plain node, as the figures in docs/benchmarks.md were measured (the image's flags crashed one run: see the report of issue 13).
    nodeFlags: [],
  });
  try {
    await sleep(SETTLE_SECONDS * 1000);
    const before = await counters(db);
    const statementsBefore = await statementTimes(db);
    const pollsBefore = pollCounts(await (await fetch(`${exporter.url}/metrics`)).text());
    const rss: number[] = [];
    const end = Date.now() + WINDOW_SECONDS * 1000;
    while (Date.now() < end) {
      rss.push(residentBytes(exporter.child.pid!));
      await sleep(2000);
    }
    const after = await counters(db);
    const statementsAfter = await statementTimes(db);
    const text = await (await fetch(`${exporter.url}/metrics`)).text();
    const pollsAfter = pollCounts(text);
    const minutes = WINDOW_SECONDS / 60;
    const figures: Figures = {
      label,
      databases,
      dbTimeMsPerMinute: (after.ms - before.ms) / minutes,
      callsPerMinute: (after.calls - before.calls) / minutes,
      // The two counter reads open one session each.
      sessionsPerMinute: Math.max(0, after.sessions - before.sessions - 1) / minutes,
      rssMedianBytes: median(rss),
      rssMaxBytes: Math.max(...rss),
      series: seriesCount(text),
      failedPolls: pollsAfter.failed - pollsBefore.failed,
      pollsPerMinute: (pollsAfter.total - pollsBefore.total) / minutes,
      top: [...statementsAfter]
        .map(([query, a]) => ({ query, msPerMinute: (a.ms - (statementsBefore.get(query)?.ms ?? 0)) / minutes, calls: (a.calls - (statementsBefore.get(query)?.calls ?? 0)) / minutes }))
        .sort((x, y) => y.msPerMinute - x.msPerMinute)
        .slice(0, 5),
    };
    for (const t of figures.top) log(`    ${t.msPerMinute.toFixed(0).padStart(6)} ms/min ${t.calls.toFixed(0).padStart(5)} calls/min  ${t.query}`);
    log(`${label}: ${figures.dbTimeMsPerMinute.toFixed(0)} ms/min, ${figures.sessionsPerMinute.toFixed(1)} sessions/min, RSS ${(figures.rssMedianBytes / 2 ** 20).toFixed(1)} MiB, ${figures.series} series, ${figures.failedPolls} failed polls`);
    return figures;
  } finally {
    await exporter.stop();
  }
}

/** Copies of the bench database up to `count` databases in all (the bench database counts as one). */
async function copiesUpTo(db: BenchDatabase, count: number): Promise<void> {
  await admin(db, async (c) => {
    const { rows } = await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_database WHERE datname LIKE 'rag_copy_%'");
    for (let i = rows[0]!.n + 1; i < count; i++) await c.query(`CREATE DATABASE rag_copy_${String(i).padStart(2, '0')} TEMPLATE ${BENCH_DATABASE}`);
  });
}

async function createVectorTables(db: BenchDatabase): Promise<void> {
  await admin(db, (c) => c.query(`CREATE DATABASE ${VECTOR_TABLES_DATABASE}`));
  await admin(
    db,
    async (c) => {
      await c.query('CREATE EXTENSION vector');
      for (let i = 0; i < TABLES; i += 100) {
        const statements: string[] = [];
        for (let j = i; j < Math.min(i + 100, TABLES); j++) {
          const t = `items_${String(j).padStart(4, '0')}`;
          statements.push(`CREATE TABLE ${t} (id bigserial PRIMARY KEY, embedding vector(8))`, `CREATE INDEX ${t}_hnsw ON ${t} USING hnsw (embedding vector_cosine_ops)`);
        }
        await c.query(statements.join(';\n'));
      }
      await c.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${OUR_DEFAULTS_ROLE}`);
    },
    VECTOR_TABLES_DATABASE,
  );
}

async function main(): Promise<void> {
  installSignalHandlers();
  mkdirSync('bench/results', { recursive: true });
  const db = await startDatabase();
  const seed = await seedCorpus(db, DOCUMENTS, (line) => log(`  seed: ${line}`));
  const results: Figures[] = [];
  for (const count of COUNTS) {
    await copiesUpTo(db, count);
    results.push(await measure(db, `${count} database${count === 1 ? '' : 's'}`, count, { autoDiscover: true }));
  }
  if (TABLES > 0) {
    log(`creating ${TABLES} tables with a vector column and an HNSW index`);
    await createVectorTables(db);
    results.push(await measure(db, `1 database, ${TABLES.toLocaleString('en')} vector tables`, 1, { database: VECTOR_TABLES_DATABASE, autoDiscover: false }));
  }
  const machine = await machineInfo(db);
  const report = { windowSeconds: WINDOW_SECONDS, documents: seed.documents, tables: TABLES, machine, results, seconds: (performance.now() - started) / 1000 };
  writeFileSync('bench/results/databases.json', `${JSON.stringify(report, null, 2)}\n`);
  const doc = existsSync(OUTPUT) ? readFileSync(OUTPUT, 'utf8') : '# Benchmarks\n';
  writeFileSync(OUTPUT, withSection(doc, 'databases', renderSection(report)));
  log(`wrote ${OUTPUT} (section databases) and bench/results/databases.json`);
}

function renderSection(r: { windowSeconds: number; documents: number; tables: number; machine: Awaited<ReturnType<typeof machineInfo>>; results: Figures[]; seconds: number }): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const base = r.results[0]!;
  const rows = r.results.map((f) =>
    [
      f.label,
      `${f.dbTimeMsPerMinute.toFixed(0)} ms`,
      `${(f.dbTimeMsPerMinute / base.dbTimeMsPerMinute).toFixed(1)}x`,
      f.callsPerMinute.toFixed(0),
      f.sessionsPerMinute.toFixed(1),
      mib(f.rssMedianBytes),
      mib(f.rssMaxBytes),
      String(f.series),
      `${f.pollsPerMinute.toFixed(0)} (${f.failedPolls} failed)`,
    ].join(' | '),
  );
  return [
    '## Every database on a server',
    '',
    `\`npm run bench:databases\` (bench/databases.ts), ${new Date().toISOString().slice(0, 10)}, ${r.machine.cpus} cores, load average ${r.machine.loadAverage}, ` +
      `PostgreSQL ${r.machine.postgres}, pgvector ${r.machine.pgvector}; ${r.seconds.toFixed(0)} s. One exporter at the default intervals, its own role, ` +
      `\`--auto-discover-databases --exclude-databases postgres\` with the default \`auto_discover.max_connections\` (5): the RAG bench database (${r.documents} chunks) and copies of it, ` +
      `1, 10 and 50 databases in all. Then one database of ${r.tables.toLocaleString('en')} tables, each with a \`vector(8)\` column and an HNSW index ` +
      `(auto-discovery off). Each case: ${SETTLE_SECONDS} s to settle, then a ${r.windowSeconds} s window. Database time: pg_stat_statements ` +
      '(exec + plan) of the exporter\'s role in every database, per minute; sessions: `pg_stat_database.sessions` over all databases ' +
      '(session start-up is not in pg_stat_statements). RSS sampled every 2 s.',
    '',
    '| case | database time per minute | vs 1 database | statements per minute | sessions opened per minute | RSS median | RSS max | series | polls per minute |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map((row) => `| ${row} |`),
    '',
    'Per watched database the database-scoped collectors (database, tables, indexes, health, query_log, embeddings, ' +
      'embedding_failures) run at their default intervals; the server-scoped ones, statements included (one read of ' +
      'pg_stat_statements for every database), run once. Statements per minute should grow linearly with the databases; ' +
      'database time per statement is where contention and cold backends show (with more databases than ' +
      '`auto_discover.max_connections` no connection is kept idle while polls wait). Top statements of each case: ' +
      'bench/results/databases.json. Figures of a machine shared with other work.',
  ].join('\n');
}

runBenchmark(main);
