import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { FIELDS } from '../src/config/schema.js';
import { MAX_TIMER_MS } from '../src/config/values.js';
import { runCli } from './helpers/cli.js';

/** Every duration and number of the config has a range; values that would break timers are exit 2 at start. */

const dir = mkdtempSync(join(tmpdir(), 'pgve-ranges-'));
const writeConfig = (yaml: string) => {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(file, yaml);
  return file;
};
const refusal = (yaml: string) => {
  try {
    loadConfig({ env: {}, file: writeConfig(yaml) });
  } catch (err) {
    return err as Error & { exitCode?: number };
  }
  return undefined;
};

describe('config ranges', () => {
  it('recall.indexes takes patterns or maps with per-pattern k, sample size, ef_search and probes, each in range', () => {
    const config = loadConfig({
      env: {},
      file: writeConfig('recall:\n  top_k: 10\n  indexes:\n    - public.items_*\n    - { index: "catalog.*", top_k: 50, probes: 20 }\n'),
    });
    expect(config.recall.indexes).toEqual([{ index: 'public.items_*' }, { index: 'catalog.*', top_k: 50, probes: 20 }]);
    const unknown = refusal('recall:\n  indexes:\n    - index: a.*\n      topk: 5\n');
    expect(unknown?.exitCode).toBe(2);
    expect(unknown?.message).toMatch(/:3: recall\.indexes: item 1: unknown key "topk"/);
    const range = refusal('recall:\n  indexes:\n    - { index: a.*, sample_size: 5000 }\n');
    expect(range?.message).toMatch(/recall\.indexes: item 1: sample_size: "5000" is not a whole number from 1 to 1000/);
    expect(refusal('recall:\n  indexes:\n    - { top_k: 5 }\n')?.message).toMatch(/item 1: index: expected a pattern/);
  });

  it('refuses durations beyond the longest timer (about 24.8 days) where they become timers', () => {
    // A 30-day interval polled in a tight loop (TimeoutOverflowWarning); a 30-day timeout kept pg_up at 0.
    for (const [yaml, key] of [
      ['collectors:\n  tables:\n    interval: 30d\n', 'collectors.tables.interval'],
      ['collectors:\n  connectivity:\n    timeout: 30d\n', 'collectors.connectivity.timeout'],
      ['database:\n  reconnect_max_backoff: 25d\n', 'database.reconnect_max_backoff'],
      ['jobs:\n  analyze:\n    statement_timeout: 4w\n', 'jobs.analyze.statement_timeout'],
      ['jobs:\n  log-retention:\n    batch_pause: 1e308\n', 'jobs.log-retention.batch_pause'],
    ]) {
      const err = refusal(yaml!);
      expect(err?.exitCode, yaml).toBe(2);
      expect(err?.message).toContain(key!);
      expect(err?.message).toMatch(/maximum|finite/);
    }
    expect(loadConfig({ env: {}, file: writeConfig('collectors:\n  tables:\n    interval: 24d\n') }).collectors.tables.interval).toBe(24 * 86_400_000);
  });

  it('keeps long ages where they are compared in SQL, never set as timers', () => {
    const config = loadConfig({ env: {}, file: writeConfig('jobs:\n  backup:\n    retention: 400d\n  log-retention:\n    archive_retention: 5y\n'.replace('5y', '1825d')) });
    expect(config.jobs.backup.retention).toBe(400 * 86_400_000);
    expect(refusal('jobs:\n  backup:\n    retention: 100000d\n')?.message).toMatch(/jobs\.backup\.retention.*maximum/);
  });

  it('refuses empty or unordered buckets, a telemetry path without "/" and out-of-range numbers', () => {
    expect(refusal('query_log:\n  buckets: []\n')?.message).toMatch(/:2: query_log\.buckets: expected at least one bucket/);
    expect(refusal('query_log:\n  buckets: [0.5, 0.1]\n')?.message).toMatch(/query_log\.buckets: buckets must increase/);
    expect(refusal('query_log:\n  buckets: [0, 1]\n')?.message).toMatch(/query_log\.buckets: bucket 0 must be above 0/);
    expect(refusal('web:\n  telemetry_path: metrics\n')?.message).toMatch(/:2: web\.telemetry_path: "metrics" is not a path/);
    expect(refusal('web:\n  telemetry_path: /healthz\n')?.message).toMatch(/web\.telemetry_path: "\/healthz" is taken/);
    expect(refusal('app:\n  pool_max: 1e12\n')?.message).toMatch(/app\.pool_max/);
    expect(refusal('collectors:\n  tables:\n    interval: -5\n')?.message).toMatch(/collectors\.tables\.interval/);
  });

  it('gives every number and duration field a finite upper bound', () => {
    const huge = ['1e308', '99999999999d'];
    const unbounded = FIELDS.filter((f) => ['int', 'number', 'ratio', 'duration'].includes(f.type)).filter((f) =>
      huge.some((v) => {
        try {
          f.parse(v);
          return true;
        } catch {
          return false;
        }
      }),
    );
    expect(unbounded.map((f) => f.key)).toEqual([]);
    expect(MAX_TIMER_MS).toBe(2 ** 31 - 1);
  });

  it('exits 2 on a stray positional argument and on a 30-day interval given as a flag-free config', async () => {
    const stray = await runCli(['serve', 'extra'], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/unexpected argument "extra"/);
    expect(stray.stderr.trim().split('\n')).toHaveLength(1);
    const migrate = await runCli(['migrate', 'now'], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(migrate.code).toBe(2);
    const month = await runCli(['serve', '--config', writeConfig('collectors:\n  database:\n    interval: 30d\n')], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(month.code).toBe(2);
    expect(month.stderr).toMatch(/:3: collectors\.database\.interval: "30d" is longer than the maximum 24d20h31m23s/);
    const path = await runCli(['serve', '--web.telemetry-path', 'metrics'], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(path.code).toBe(2);
    expect(path.stderr).toMatch(/flag --web\.telemetry-path: web\.telemetry_path/);
  });
});
