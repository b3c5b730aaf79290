import { readFileSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCorpus } from '../src/demo/corpus.js';
import { familyTypes, parseMetricsText } from '../src/metrics/exposition-text.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * "No behaviour change" for /metrics, checked: one `serve` (every collector on, the scheduler on)
 * against a seeded demo corpus publishes exactly the families, types and label names of the committed
 * golden file test/golden/metric-families.txt. A change that adds, drops, retypes or relabels a family
 * shows up as a diff of that file; regenerate it on purpose with
 *   UPDATE_GOLDEN=1 npx vitest run test/metric-families.test.ts
 * and say why in the commit. (Values and label values are not compared: they depend on the data.)
 * prom-client's process_* and nodejs_* defaults are left out: they depend on the platform.
 */
const GOLDEN = new URL('./golden/metric-families.txt', import.meta.url);
const PLATFORM_PREFIXES = ['process_', 'nodejs_'];

const COLLECTORS = ['connectivity', 'database', 'replication', 'connections', 'tables', 'indexes', 'health', 'query_log', 'embeddings', 'embedding_failures', 'recall', 'statements'];

/** `name type label,label` per family, sorted: the families of a scrape with the label names their samples carry. */
export function familySignature(text: string): string[] {
  const types = familyTypes(text);
  const labels = new Map<string, Set<string>>([...types.keys()].map((name) => [name, new Set<string>()]));
  for (const sample of parseMetricsText(text)) {
    const family = types.has(sample.name) ? sample.name : sample.name.replace(/_(bucket|sum|count)$/, '');
    const set = labels.get(family);
    if (!set) continue;
    for (const label of Object.keys(sample.labels)) if (label !== 'le') set.add(label);
  }
  return [...types.entries()]
    .filter(([name]) => !PLATFORM_PREFIXES.some((p) => name.startsWith(p)))
    .map(([name, type]) => `${name} ${type} ${[...labels.get(name)!].sort().join(',')}`.trimEnd())
    .sort();
}

describe('the families and label names of one serve', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  beforeAll(async () => {
    db = await createTestDatabase();
    await seedCorpus(db.pool, { documents: 300, seed: 7 });
    // Traffic every collector can see: logged queries of each kind, and one vector search.
    await db.pool.query(
      `INSERT INTO query_performance_log (query_type, duration_ms) SELECT t, 12.5 FROM unnest(ARRAY['vector_search','hybrid_search','insert','odd']) t`,
    );
    await db.pool.query('SELECT id FROM chunk_embeddings ORDER BY embedding::halfvec(3072) <=> (SELECT embedding FROM chunk_embeddings LIMIT 1)::halfvec(3072) LIMIT 5');
    const collectors = COLLECTORS.map((name) => `  ${name}: { enabled: true, interval: 500ms, timeout: 20s }`).join('\n');
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(`collectors:\n${collectors}\n`)]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('match test/golden/metric-families.txt', async () => {
    // Wait for the state compared: every collector has finished its first poll (/readyz), the ones
    // configured here have succeeded at least once, and the families are the golden ones. A poll that
    // fails or finds no data between two scrapes (recall under a loaded machine) takes its series out of
    // one body, so one body is not enough: a family that never comes within the time still fails, with the diff.
    const golden = readFileSync(GOLDEN, 'utf8');
    let signature = '';
    await eventually(
      async () => {
        if ((await fetch(`${serve.url}/readyz`)).status !== 200) return undefined;
        const body = await serve.metrics();
        const ok = COLLECTORS.every((name) => new RegExp(`^pgvector_exporter_collector_success\\{collector="${name}"\\} 1$`, 'm').test(body));
        if (!ok) return undefined;
        signature = `${familySignature(body).join('\n')}\n`;
        return process.env.UPDATE_GOLDEN || signature === golden ? signature : undefined;
      },
      'every collector polled successfully and the golden families published',
      90_000,
      500,
    ).catch(() => undefined);
    if (process.env.UPDATE_GOLDEN) writeFileSync(GOLDEN, signature);
    expect(signature).toBe(readFileSync(GOLDEN, 'utf8'));
  });
});
