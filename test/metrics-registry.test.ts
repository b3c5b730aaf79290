import { Gauge } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createRegistry, DEFAULT_METRICS_MAX_AGE_MS, exposition } from '../src/metrics/registry.js';
import { sampleValue } from './helpers/exporter.js';

describe('exposition', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('renders default metrics, registered metrics and the collector text, each once', async () => {
    const registry = createRegistry();
    const text = await exposition(registry, () => '# HELP pg_up x\n# TYPE pg_up gauge\npg_up 1\n');
    expect(sampleValue(text, 'pg_up')).toBe(1);
    expect(sampleValue(text, 'pgvector_exporter_build_info')).toBe(1);
    expect(sampleValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text.match(/^# TYPE process_resident_memory_bytes /gm)).toHaveLength(1);
    expect(text.endsWith('\n')).toBe(true);
  });

  it('reuses the default metrics for a short while but renders registered metrics on every request', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const registry = createRegistry();
    const gauge = new Gauge({ name: 'test_fresh', help: 'changes between scrapes', registers: [registry] });
    const heap = (text: string) => text.match(/^nodejs_heap_size_used_bytes .*$/m)?.[0];

    gauge.set(1);
    const first = await exposition(registry, () => '');
    const garbage = Array.from({ length: 50_000 }, (_, i) => ({ i }));
    gauge.set(2);
    const second = await exposition(registry, () => '');
    expect(sampleValue(first, 'test_fresh')).toBe(1);
    expect(sampleValue(second, 'test_fresh')).toBe(2);
    expect(heap(second)).toBe(heap(first));

    vi.setSystemTime(Date.now() + DEFAULT_METRICS_MAX_AGE_MS);
    const third = await exposition(registry, () => '');
    expect(garbage.length).toBe(50_000);
    expect(heap(third)).not.toBe(heap(first));
  });
});
