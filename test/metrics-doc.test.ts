import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_FACTORIES, COLLECTOR_NAMES } from '../src/collectors/index.js';
import { collectorsOptions } from '../src/commands/assembly.js';
import { loadConfig } from '../src/config/load.js';
import type { Config } from '../src/config/schema.js';
import { resolveConnection } from '../src/db/connection.js';
import { startExporter, type RunningExporter } from '../src/commands/serve.js';
import { createLogger } from '../src/log.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, writeConfig } from './helpers/exporter.js';

/** Families that prom-client publishes by itself; documented by reference, not row by row. */
const DEFAULT_METRIC_PREFIXES = ['process_', 'nodejs_'];

function documentedFamilies(): Set<string> {
  const doc = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');
  const names = [...doc.matchAll(/^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|/gm)].map((m) => m[1]!);
  return new Set(names);
}

/** Every family the exporter can publish: what the collectors declare plus what the registry holds. */
async function declaredFamilies(exporter: RunningExporter, config: Config): Promise<Set<string>> {
  const names = new Set<string>();
  for (const factory of Object.values(COLLECTOR_FACTORIES)) {
    for (const family of factory(collectorsOptions(config)).families) names.add(family.name);
  }
  for (const metric of await exporter.registry.getMetricsAsJSON()) {
    if (!DEFAULT_METRIC_PREFIXES.some((p) => metric.name.startsWith(p))) names.add(metric.name);
  }
  return names;
}

function liveFamilies(text: string): Set<string> {
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!).filter((n) => !DEFAULT_METRIC_PREFIXES.some((p) => n.startsWith(p))));
}

describe('docs/metrics.md matches what the exporter publishes', () => {
  let db: TestDatabase;
  let exporter: RunningExporter;
  let config: Config;
  beforeAll(async () => {
    db = await createTestDatabase();
    const everyCollector = COLLECTOR_NAMES.map((name) => `  ${name}: { enabled: true, interval: 200ms, timeout: 5s }`).join('\n');
    config = loadConfig({ file: writeConfig(`collectors:\n${everyCollector}\njobs:\n  enabled: false\n`), flags: { 'web.listen-address': '127.0.0.1:0' } });
    exporter = await startExporter({ config, connection: resolveConnection(db.url, {}), log: createLogger('silent') });
    await eventually(async () => exporter.poller.ready(), 'first poll');
  });
  afterAll(async () => {
    await exporter?.stop();
    await db?.drop();
  });

  it('documents every family the exporter declares or publishes', async () => {
    const documented = documentedFamilies();
    const live = liveFamilies(await (await fetch(`${exporter.url}/metrics`)).text());
    const undocumented = [...new Set([...(await declaredFamilies(exporter, config)), ...live])].filter((n) => !documented.has(n)).sort();
    expect(undocumented, 'families missing from docs/metrics.md').toEqual([]);
  });

  it('documents no family the exporter cannot publish', async () => {
    const declared = await declaredFamilies(exporter, config);
    const phantom = [...documentedFamilies()].filter((n) => !declared.has(n)).sort();
    expect(phantom, 'families in docs/metrics.md that no collector or registry declares').toEqual([]);
  });
});
