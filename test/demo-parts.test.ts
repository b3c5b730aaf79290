import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { demoCommand } from '../src/commands/demo.js';
import { DEFAULT_DEMO_DOCUMENTS } from '../src/demo/corpus.js';
import { ensureServerBinaries, SYSTEM_PROBE } from '../src/demo/embedded-database.js';
import { histogramBuckets, parseMetricsText, quantileBetween } from '../src/metrics/exposition-text.js';
import { readScrape, summaryLines } from '../src/demo/summary.js';
import { Teardown } from '../src/demo/teardown.js';
import { DEFAULT_SLOW_SHARE } from '../src/demo/workload.js';
import { FatalError } from '../src/errors.js';

/** The demo's pure parts: the summary, the teardown, the missing-binaries path, the README's flag table. */

const histogram = (counts: Record<string, number>, type = 'vector_search') =>
  Object.entries(counts)
    .map(([le, n]) => `rag_query_duration_seconds_bucket{query_type="${type}",le="${le}"} ${n}`)
    .concat(`rag_query_duration_seconds_count{query_type="${type}"} ${counts['+Inf']}`)
    .join('\n');

describe('the demo summary', () => {
  it('reads labels with escapes from the text format', () => {
    const [sample] = parseMetricsText('# HELP x y\nrag_health_check_status{component="a\\"b",status="OK"} 1\n');
    expect(sample).toEqual({ name: 'rag_health_check_status', labels: { component: 'a"b', status: 'OK' }, value: 1 });
  });

  it('interpolates quantiles inside the bucket, over the interval between two scrapes only', () => {
    const before = histogramBuckets(parseMetricsText(histogram({ '0.1': 100, '0.5': 100, '1': 100, '+Inf': 100 })), 'rag_query_duration_seconds', { query_type: 'vector_search' });
    const after = histogramBuckets(parseMetricsText(histogram({ '0.1': 100, '0.5': 150, '1': 200, '+Inf': 200 })), 'rag_query_duration_seconds', { query_type: 'vector_search' });
    // 100 new observations: 50 in (0.1, 0.5], 50 in (0.5, 1]; the 95th is 45/50 into the second bucket.
    expect(quantileBetween(0.95, before, after)).toBeCloseTo(0.5 + 0.5 * (45 / 50), 6);
    expect(quantileBetween(0.5, before, after)).toBeCloseTo(0.5, 6);
    expect(quantileBetween(0.95, after, after)).toBeUndefined();
    // Observations beyond the last finite bucket report that bound, as histogram_quantile() does.
    const slow = histogramBuckets(parseMetricsText(histogram({ '0.1': 0, '0.5': 0, '1': 0, '+Inf': 10 })), 'rag_query_duration_seconds', { query_type: 'vector_search' });
    expect(quantileBetween(0.95, undefined, slow)).toBe(1);
  });

  it('summarises latency, pool, index, health and alerts', () => {
    const text = [
      histogram({ '0.1': 90, '0.5': 100, '+Inf': 100 }),
      'pg_up 1',
      'rag_app_pool_utilization_ratio 0.24',
      'pg_connections_utilization_ratio 0.05',
      'pg_index_expected_present{indexrelname="idx_embeddings_vector"} 1',
      'pg_index_valid{indexrelname="idx_embeddings_vector",relname="chunk_embeddings"} 1',
      'pgvector_index_recall_ratio{indexrelname="idx_embeddings_vector"} 0.97',
      'rag_health_check_status{component="vector_index",status="HEALTHY"} 1',
      'rag_health_check_status{component="vector_index",status="CRITICAL"} 0',
      'rag_health_check_status{component="dead_tuples",status="WARNING"} 1',
    ].join('\n');
    const lines = summaryLines(readScrape(text), undefined, [{ name: 'HighLatency', state: 'firing' }, { name: 'Other', state: 'pending' }], {
      completed: { vector_search: 100, hybrid_search: 0, insert: 0 },
      failed: 2,
      dropped: 0,
      slow: 1,
    }).join('\n');
    // rank 95 of 100: 5 of the 10 observations in (0.1, 0.5] -> 0.3 s
    expect(lines).toContain('vector_search 300 ms');
    expect(lines).toContain('hybrid_search -');
    expect(lines).toContain('rag-search 24%');
    expect(lines).toContain('present and valid, recall@10 0.970');
    expect(lines).toContain('health: dead_tuples WARNING');
    expect(lines).toContain('FIRING HighLatency; pending Other');
    expect(lines).toContain('2 failed');
  });
});

describe('the demo teardown', () => {
  it('undoes newest first, carries on past a failing step, and leaves nothing for the exit guard', async () => {
    const order: string[] = [];
    const teardown = new Teardown();
    teardown.add('dir', async () => void order.push('dir'), () => order.push('dir sync'));
    teardown.add('db', async () => {
      throw new Error('gone');
    }, () => order.push('db sync'));
    teardown.add('exporter', async () => void order.push('exporter'));
    const errors: string[] = [];
    await teardown.run((name, err) => errors.push(`${name}: ${err.message}`));
    expect(order).toEqual(['exporter', 'db sync', 'dir']);
    expect(errors).toEqual(['db: gone']);
    teardown.runSync();
    expect(order).toHaveLength(3);
  });

  it('runs the synchronous forms of what is left when the process exits early', () => {
    const order: string[] = [];
    const teardown = new Teardown();
    teardown.add('dir', async () => undefined, () => order.push('dir'));
    teardown.add('prometheus', async () => undefined, () => order.push('prometheus'));
    teardown.runSync();
    expect(order).toEqual(['prometheus', 'dir']);
  });
});

describe('the demo without PostgreSQL binaries', () => {
  const probe = (ready: boolean[], canInstall: boolean, status: number | null) => {
    const calls: string[] = [];
    return {
      calls,
      probe: {
        serverReady: () => ready.shift() ?? false,
        canInstall: () => canInstall,
        runSetup: () => (calls.push('setup'), status),
      },
    };
  };

  it('prints the one command to run when it may not install them', () => {
    const { probe: p, calls } = probe([false], false, 0);
    expect(() => ensureServerBinaries(() => undefined, p)).toThrow(/install them with "sudo bash scripts\/setup-system.sh".*--database-url/);
    expect(calls).toEqual([]);
  });

  it('runs the set-up script where it may, and goes on when it worked', () => {
    const { probe: p, calls } = probe([false, true], true, 0);
    const lines: string[] = [];
    ensureServerBinaries((line) => lines.push(line), p);
    expect(calls).toEqual(['setup']);
    expect(lines[0]).toContain('setup-system.sh');
  });

  it('stops with exit code 1 when the set-up script fails', () => {
    const { probe: p } = probe([false, false], true, 100);
    let error: unknown;
    try {
      ensureServerBinaries(() => undefined, p);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FatalError);
    expect((error as FatalError).message).toContain('exit 100');
  });

  it('does nothing where the binaries are installed (this machine)', () => {
    expect(SYSTEM_PROBE.serverReady()).toBe(true);
  });
});

describe("the README's demo section", () => {
  it('lists every demo flag with the defaults the code uses', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('## The demo'), readme.indexOf('\n## ', readme.indexOf('## The demo') + 1));
    const rows = section
      .split('\n')
      .filter((line) => line.startsWith('| `--'))
      .map((line) => line.split('|').map((cell) => cell.trim().replace(/`/g, '')))
      .map((cells) => ({ flag: /^--([a-z.-]+)/.exec(cells[1]!)![1]!, default: cells[2]! }));
    const documented = rows.map((r) => r.flag).sort();
    expect(documented).toEqual([...Object.keys(demoCommand.options), 'web.listen-address', 'database-url'].sort());
    const defaultOf = (flag: string) => rows.find((r) => r.flag === flag)!.default;
    expect(Number(defaultOf('documents'))).toBe(DEFAULT_DEMO_DOCUMENTS);
    expect(Number(defaultOf('slow-share'))).toBe(DEFAULT_SLOW_SHARE);
  });
});
