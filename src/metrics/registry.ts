import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import { VERSION } from '../version.js';

/**
 * prom-client's process and Node.js default metrics cost a few milliseconds of CPU per render (the
 * event-loop-delay percentiles, /proc reads), which under tens of concurrent scrapers queues up on
 * the one event loop. They live in a registry of their own whose text is reused for
 * DEFAULT_METRICS_MAX_AGE_MS; everything else is rendered on every request.
 */
export const DEFAULT_METRICS_MAX_AGE_MS = 1000;

const defaultMetrics = new WeakMap<Registry, { registry: Registry; text?: Promise<string>; at: number }>();

/**
 * The prom-client registry: build info, and whatever the poller (self-metrics) and the scheduler (job
 * metrics) register; the default metrics sit in a companion registry (see above). Collector output
 * is not in here: it is rendered by the poller once per poll and appended by exposition().
 */
export function createRegistry(): Registry {
  const registry = new Registry();
  const defaults = new Registry();
  collectDefaultMetrics({ register: defaults });
  defaultMetrics.set(registry, { registry: defaults, at: 0 });
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
  const parts = [await defaultMetricsText(registry), await registry.metrics(), cachedCollectorText()];
  return parts.filter((p) => p !== '').map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}

/** The default metrics' text, rendered at most once per DEFAULT_METRICS_MAX_AGE_MS (concurrent scrapes share a render). */
function defaultMetricsText(registry: Registry, now = Date.now()): Promise<string> {
  const entry = defaultMetrics.get(registry);
  if (!entry) return Promise.resolve('');
  if (!entry.text || now - entry.at >= DEFAULT_METRICS_MAX_AGE_MS) {
    entry.at = now;
    entry.text = entry.registry.metrics();
    // A failed render is not cached.
    entry.text.catch(() => {
      entry.text = undefined;
    });
  }
  return entry.text;
}

export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
