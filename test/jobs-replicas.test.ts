import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { migrate } from '../src/db/migrate.js';
import { Scheduler } from '../src/jobs/scheduler.js';
import { createLogger } from '../src/log.js';
import pg from 'pg';
import { createTestDatabase, type TestDatabase, useTestDatabase } from './helpers/database.js';
import { maintenanceRows, testConfig, testRunner, type TestRunner } from './helpers/jobs.js';

const silent = createLogger('silent');

describe('several sidecars on one database', () => {
  let db: TestDatabase;
  let a: TestRunner;
  let b: TestRunner;
  beforeAll(async () => {
    db = await createTestDatabase();
    const config = testConfig();
    a = testRunner(db.url, config, 'replica-a');
    b = testRunner(db.url, config, 'replica-b');
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    await db.drop();
  });

  it('two schedulers firing the same slot at the same moment: exactly one success and one skipped', async () => {
    const specs = [{ job: 'analyze' as const, schedule: '0 2 * * *', timezone: 'UTC' }];
    const schedulerA = new Scheduler(specs, a.runner, silent);
    const schedulerB = new Scheduler(specs, b.runner, silent);
    const slot = new Date('2026-01-01T02:00:00Z');
    await Promise.all([schedulerA.fire('analyze', slot), schedulerB.fire('analyze', slot)]);

    const rows = await maintenanceRows(db.pool, 'analyze');
    expect(rows.map((r) => r.status).sort()).toEqual(['skipped', 'success']);
    expect(new Set(rows.map((r) => r.host))).toEqual(new Set(['replica-a', 'replica-b']));
    const skipped = rows.find((r) => r.status === 'skipped')!;
    // Either the other replica still held the lock, or it had already finished this slot.
    expect(skipped.message).toMatch(/advisory lock|already ran on replica-/);
    expect(rows.every((r) => r.details.scheduled_for === slot.toISOString())).toBe(true);
  });

  it('the same job on a replica while it runs elsewhere: skipped, naming the holder', async () => {
    // Hold the lock the way a running replica does: pg_try_advisory_lock on its own session.
    const holder = new pg.Client({ connectionString: db.url, application_name: 'pgvector-exporter job vacuum-analyze (replica-x)' });
    await holder.connect();
    try {
      await holder.query("SELECT pg_try_advisory_lock(hashtext('pgvector-exporter:job:vacuum-analyze'))");
      const result = await b.runner.run('vacuum-analyze', { trigger: 'manual' });
      expect(result.result).toBe('skipped');
      expect(result.skipReason).toBe('locked');
      expect(result.message).toContain('replica-x');
      const rows = await maintenanceRows(db.pool, 'vacuum-analyze');
      expect(rows.map((r) => r.status)).toEqual(['skipped']);
    } finally {
      await holder.end();
    }
  });

  it('a second run of a job running in this process is skipped at once, never overlapping', async () => {
    const results = await Promise.all([a.runner.run('log-retention', { trigger: 'manual' }), a.runner.run('log-retention', { trigger: 'manual' })]);
    expect(results.map((r) => r.result).sort()).toEqual(['skipped', 'success']);
    expect(results.find((r) => r.result === 'skipped')!.skipReason).toBe('already-running');
  });

  it('every slot of a real cron schedule runs once across two schedulers', async () => {
    const specs = [{ job: 'analyze' as const, schedule: '* * * * * *', timezone: 'UTC' }];
    const before = (await maintenanceRows(db.pool, 'analyze')).length;
    const schedulerA = new Scheduler(specs, a.runner, silent);
    const schedulerB = new Scheduler(specs, b.runner, silent);
    schedulerA.start();
    schedulerB.start();
    // Wait until both have fired at least two slots, then stop.
    for (let i = 0; i < 100; i++) {
      const { rows } = await db.pool.query("SELECT count(DISTINCT details->>'scheduled_for') AS n FROM maintenance_log WHERE job = 'analyze' AND id > 0 AND status <> 'running'");
      if (Number(rows[0].n) >= 4) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    await Promise.all([schedulerA.stop(), schedulerB.stop()]);
    const rows = (await maintenanceRows(db.pool, 'analyze')).slice(before);
    const bySlot = new Map<string, string[]>();
    for (const row of rows) bySlot.set(String(row.details.scheduled_for), [...(bySlot.get(String(row.details.scheduled_for)) ?? []), row.status]);
    expect(bySlot.size).toBeGreaterThanOrEqual(2);
    // Never twice. (On a very loaded machine a slot may find the previous one still running on both
    // replicas and be skipped everywhere: that is the no-overlap rule, not a double run.)
    for (const [slot, statuses] of bySlot) {
      expect(statuses.filter((s) => s === 'success').length, `slot ${slot}: ${statuses}`).toBeLessThanOrEqual(1);
      expect(statuses.filter((s) => s !== 'success' && s !== 'skipped')).toEqual([]);
    }
    expect([...bySlot.values()].filter((statuses) => statuses.includes('success')).length).toBeGreaterThanOrEqual(2);
  });
});

describe('the maintenance window', () => {
  const db = useTestDatabase();

  it('skips scheduled runs outside it (spanning midnight, in its time zone), not runs asked for by hand', async () => {
    const t = testRunner(db.url, testConfig((c) => (c.jobs.window = { start: '22:00', end: '04:00', timezone: 'Europe/Berlin' })));
    try {
      // 12:00 UTC = 13:00 in Berlin (winter): outside 22:00-04:00.
      const outside = await t.runner.run('analyze', { trigger: 'schedule', scheduledFor: new Date('2026-01-10T12:00:00Z') });
      expect(outside.result).toBe('skipped');
      expect(outside.message).toBe('outside the maintenance window 22:00-04:00 Europe/Berlin (it is 13:00 there)');
      // 23:30 UTC = 00:30 in Berlin: inside.
      const inside = await t.runner.run('analyze', { trigger: 'schedule', scheduledFor: new Date('2026-01-10T23:30:00Z') });
      expect(inside.result).toBe('success');
      const manual = await t.runner.run('analyze', { trigger: 'manual' });
      expect(manual.result).toBe('success');
      expect((await maintenanceRows(db.pool, 'analyze')).map((r) => r.status)).toEqual(['skipped', 'success', 'success']);
    } finally {
      await t.close();
    }
  });
});

describe('a standby', () => {
  let primary: LocalCluster;
  let standby: LocalCluster;
  beforeAll(async () => {
    primary = await LocalCluster.start();
    const client = new pg.Client({ connectionString: primary.url() });
    await client.connect();
    await migrate(client);
    // pg_basebackup waits for a spread checkpoint; with nothing left to write it is immediate.
    await client.query('CHECKPOINT');
    await client.end();
    standby = await primary.createStandby();
  });
  afterAll(() => {
    standby?.remove();
    primary?.remove();
  });

  it('skips every job with the reason and writes nothing', async () => {
    const { runner, close } = testRunner(standby.url(), testConfig(), 'standby-sidecar');
    try {
      const result = await runner.run('analyze', { trigger: 'manual' });
      expect(result.result).toBe('skipped');
      expect(result.skipReason).toBe('standby');
      expect(result.message).toContain('standby');
    } finally {
      await close();
    }
  });
});
