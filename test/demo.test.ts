import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { freePort } from '../src/free-port.js';
import { findBinary } from '../src/demo/prometheus-stack.js';
import { CLI, runCli } from './helpers/cli.js';
import { type TestDatabase, useTestDatabase } from './helpers/database.js';

/** Command lines of every process on the machine that mention `text`. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(text)) found.push(`${pid}: ${cmdline}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
}

const metricValue = (text: string, pattern: RegExp) =>
  text
    .split('\n')
    .filter((line) => pattern.test(line))
    .map((line) => Number(line.split(' ').at(-1)));

describe('pgvector-exporter demo on the embedded database', () => {
  it('serves latency histograms and a healthy vector index, then stops cleanly on SIGINT', { timeout: 240_000 }, async () => {
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'demo', '--documents', '300', '--rate', '25', '--summary-interval', '2s', '--web.listen-address', `127.0.0.1:${port}`], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const tempDir = await until('the demo to print its URLs', 150_000, async () => /logs\s+(\S+)\/\*\.log/.exec(output)?.[1]);
      const dataDir = /data in (\S+)/.exec(output)?.[1];
      expect(dataDir).toBeDefined();
      const metricsUrl = `http://127.0.0.1:${port}/metrics`;
      const metrics = await until('searches in the latency histogram and a healthy vector index', 90_000, async () => {
        const text = await (await fetch(metricsUrl)).text();
        const searches = metricValue(text, /^rag_query_duration_seconds_count\{.*query_type="vector_search"/);
        const healthy =
          metricValue(text, /^rag_health_check_status\{.*component="vector_index".*status="HEALTHY"/)[0] === 1 ||
          metricValue(text, /^pg_index_expected_present\{.*idx_embeddings_vector/)[0] === 1;
        return searches[0]! > 0 && healthy ? text : undefined;
      });
      expect(metrics).toMatch(/^rag_query_duration_seconds_bucket\{.*query_type="hybrid_search"/m);
      // The workload's connections are counted against the service's pool.
      expect(metricValue(metrics, /^rag_app_pool_utilization_ratio/)[0]).toBeGreaterThan(0);

      const prometheusUrl = /prometheus\s+(http:\/\/\S+)\/alerts/.exec(output)?.[1];
      if (findBinary(['prometheus'])) {
        expect(prometheusUrl).toBeDefined();
        await until('Prometheus to scrape the exporter', 60_000, async () => {
          const body = (await (await fetch(`${prometheusUrl}/api/v1/query?query=up{job="pgvector-exporter"}`)).json()) as {
            data: { result: { value: [number, string] }[] };
          };
          return body.data.result[0]?.value[1] === '1' ? true : undefined;
        });
      }
      await until('a live summary', 30_000, async () => (/health: /.test(output) ? true : undefined));
      expect(processesMentioning(tempDir).length).toBeGreaterThan(0);

      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(output).toContain('demo stopped; temporary data removed');
      expect(processesMentioning(tempDir)).toEqual([]);
      expect(processesMentioning(dataDir!)).toEqual([]);
      expect(existsSync(tempDir)).toBe(false);
      expect(existsSync(dataDir!)).toBe(false);
    } finally {
      // A failed assertion still stops the demo the orderly way, so its helpers do not outlive the test.
      if (child.exitCode === null) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(timer);
      }
    }
  });
});

describe('pgvector-exporter demo --database-url', () => {
  const db = useTestDatabase();

  it('seeds and drives the given database, then stops after --duration', { timeout: 120_000 }, async () => {
    const port = await freePort();
    const result = await runCli(
      ['demo', '--database-url', db.url, '--documents', '40', '--rate', '20', '--duration', '6s', '--no-prometheus', '--web.listen-address', `127.0.0.1:${port}`],
      {},
      110_000,
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('seeded 40 chunks');
    const { rows } = await db.pool.query<{ docs: number; logged: number }>(
      "SELECT (SELECT count(*)::int FROM framework_documents WHERE chunk_id LIKE 'demo-%') AS docs, (SELECT count(*)::int FROM query_performance_log) AS logged",
    );
    expect(rows[0]!.docs).toBe(40);
    expect(rows[0]!.logged).toBeGreaterThan(0);
    const tempDir = /logs\s+(\S+)\/\*\.log/.exec(result.stdout)?.[1];
    expect(tempDir && existsSync(tempDir)).toBe(false);
  });

  it('refuses a database whose tables hold data, naming them, unless --force', async () => {
    // The previous test left the corpus and the query log behind.
    const refused = await runCli(['demo', '--database-url', db.url, '--documents', '5', '--no-prometheus', '--duration', '1s']);
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain('already holds data (framework_documents, chunk_embeddings');
    expect(refused.stderr).toContain('--force');
    const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM framework_documents');
    expect(rows[0]!.n).toBe(40 + (await insertsSince(db)));
  });

  it('rejects bad flags with exit code 2', async () => {
    const bad = await runCli(['demo', '--documents', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--documents');
    const tls = await runCli(['demo', '--web.config.file', 'web.yml']);
    expect(tls.code).toBe(2);
    expect(tls.stderr).toContain('--web.config.file: not supported by demo');
    const force = await runCli(['demo', '--force']);
    expect(force.code).toBe(2);
    expect(force.stderr).toContain('--database-url');
  });
});

/** Documents the workload inserted during the first run (chunk ids live-*). */
async function insertsSince(db: TestDatabase): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM framework_documents WHERE chunk_id LIKE 'live-%'");
  return rows[0]!.n;
}
