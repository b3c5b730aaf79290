import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { JobMetrics } from '../src/jobs/metrics.js';
import type { RunResult } from '../src/jobs/runner.js';

async function value(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const sample = (metric?.values ?? []).find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return sample?.value;
}

function result(job: RunResult['job'], kind: RunResult['result'], finishedAt: Date, extra: Partial<RunResult> = {}): RunResult {
  return { job, result: kind, message: '', details: {}, statements: [], dryRun: false, startedAt: finishedAt, finishedAt, durationSeconds: 1, ...extra };
}

describe('job metrics', () => {
  it('start at 0 for every scheduled job, and move last success/run forward only', async () => {
    const registry = new Registry();
    const metrics = new JobMetrics(registry);
    metrics.seed(['analyze', 'backup']);
    expect(await value(registry, 'rag_maintenance_job_runs_total', { job_name: 'analyze', result: 'failure' })).toBe(0);
    expect(await value(registry, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'analyze' })).toBe(0);
    expect(await value(registry, 'rag_backup_last_size_bytes')).toBe(0);

    const t1 = new Date('2026-03-01T02:00:00Z');
    const t2 = new Date('2026-03-02T02:00:00Z');
    // Another replica's success, read from maintenance_log.
    metrics.applyHistory(['analyze', 'backup'], { lastSuccess: new Map([['analyze', t2], ['backup', t1]]), lastRun: new Map([['analyze', t2]]), lastBackupSizeBytes: 1234 });
    expect(await value(registry, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'analyze' })).toBe(t2.getTime() / 1000);
    expect(await value(registry, 'rag_backup_last_size_bytes')).toBe(1234);
    // An older local run (or older history) never moves it back; a skip counts but is no success.
    metrics.finished(result('analyze', 'skipped', t1, { skipReason: 'locked' }));
    metrics.applyHistory(['analyze'], { lastSuccess: new Map([['analyze', t1]]), lastRun: new Map() });
    expect(await value(registry, 'rag_maintenance_job_last_success_timestamp_seconds', { job_name: 'analyze' })).toBe(t2.getTime() / 1000);
    expect(await value(registry, 'rag_maintenance_job_runs_total', { job_name: 'analyze', result: 'skipped' })).toBe(1);
  });

  it('keeps the running gauge while a second request for a running job is refused', async () => {
    const registry = new Registry();
    const metrics = new JobMetrics(registry);
    metrics.seed(['vacuum-analyze']);
    metrics.started('vacuum-analyze');
    metrics.finished(result('vacuum-analyze', 'skipped', new Date(), { skipReason: 'already-running' }));
    expect(await value(registry, 'rag_maintenance_job_running', { job_name: 'vacuum-analyze' })).toBe(1);
    metrics.finished(result('vacuum-analyze', 'success', new Date()));
    expect(await value(registry, 'rag_maintenance_job_running', { job_name: 'vacuum-analyze' })).toBe(0);
  });
});
