import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from '../version.js';

/**
 * The prom-client registry: process and Node.js default metrics, build info, and whatever the poller
 * (self-metrics) and the scheduler (job metrics) register. Collector output is not in here: it is
 * rendered by the poller once per poll and appended by exposition(). The whole body is rendered at
 * most once a second however many scrapers ask (ScrapeCache), which also bounds what the default
 * metrics (event-loop-delay percentiles, /proc reads) cost under concurrent scrapes.
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const buildInfo = new Gauge({
    name: 'pgvector_exporter_build_info',
    help: 'A metric with a constant 1 labeled by the version of pgvector-exporter and of Node.js.',
    labelNames: ['version', 'nodejs_version'],
    registers: [registry],
  });
  buildInfo.set({ version: VERSION, nodejs_version: process.version }, 1);
  return registry;
}

/** The full /metrics body: the registry's families, then the cached collector snapshots. */
export async function exposition(registry: Registry, cachedCollectorText: () => string): Promise<string> {
  const parts = [await registry.metrics(), cachedCollectorText()];
  return parts.filter((p) => p !== '').map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
