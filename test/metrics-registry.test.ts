import { describe, expect, it } from 'vitest';
import { createRegistry, exposition } from '../src/metrics/registry.js';
import { sampleValue } from './helpers/exporter.js';

describe('exposition', () => {
  it('renders default metrics, registered metrics and the collector text, each once', async () => {
    const registry = createRegistry();
    const text = await exposition(registry, () => '# HELP pg_up x\n# TYPE pg_up gauge\npg_up 1\n');
    expect(sampleValue(text, 'pg_up')).toBe(1);
    expect(sampleValue(text, 'pgvector_exporter_build_info')).toBe(1);
    expect(sampleValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(text.match(/^# TYPE process_resident_memory_bytes /gm)).toHaveLength(1);
    expect(text.endsWith('\n')).toBe(true);
  });
});
