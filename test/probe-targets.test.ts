import { gunzipSync } from 'node:zlib';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeTargetsSettings } from '../src/commands/assembly.js';
import { loadCollectors } from '../src/commands/collector-set.js';
import { ProbeTargets } from '../src/commands/probe-targets.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/log.js';
import { registerProbeMetrics } from '../src/metrics/probe-metrics.js';
import { useTestDatabase } from './helpers/database.js';
import { sampleValue, writeConfig } from './helpers/exporter.js';

/**
 * /probe's targets in process, on a real database: each target's answer comes from a ScrapeCache of its
 * own, as /metrics does, so scrapers asking together (two Prometheus replicas, a shard pair) cost one
 * render and one gzip, not one each.
 */

const db = useTestDatabase();
let targets: ProbeTargets;

beforeAll(() => {
  const config = loadConfig({ file: writeConfig('jobs:\n  enabled: false\n') });
  const loaded = loadCollectors(config, new Registry());
  targets = new ProbeTargets({
    ...probeTargetsSettings(config),
    collectors: () => loaded.set(),
    log: createLogger('silent'),
    observer: registerProbeMetrics(new Registry()),
  });
});
afterAll(async () => {
  await targets?.stop();
});

describe('ProbeTargets', () => {
  it('answers probes of one target from one prepared body, gzipped once', async () => {
    const request = { target: db.url, scrapeTimeoutMs: 30_000 };
    const first = await targets.probe(request);
    expect(sampleValue(first.plain.toString('utf8'), 'pg_up')).toBe(1);
    const [second, third] = await Promise.all([targets.probe(request), targets.probe(request)]);
    // Probes asking together get the same render, and the same compressed copy of it.
    expect(third).toBe(second);
    expect(third.gzip()).toBe(second.gzip());
    expect(gunzipSync(third.gzip()).equals(second.plain)).toBe(true);
    expect(sampleValue(second.plain.toString('utf8'), 'pg_up')).toBe(1);
  });
});
