import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { primarySamples, replicationCollector, standbySamples } from '../src/collectors/replication.js';
import type { Sample } from '../src/collectors/collector.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { migrate } from '../src/db/migrate.js';
import { collectorContext, connect, exporterLogin, samplesOf, valueOf } from './helpers/collector-context.js';

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A real primary and a streaming standby made with pg_basebackup -R, with the schema's roles. */
describe('replication collector', () => {
  let primary: LocalCluster;
  let standby: LocalCluster;
  let onPrimary: pg.Client;
  let onStandby: pg.Client;
  const collector = replicationCollector();
  const collectPrimary = async (client: pg.Client = onPrimary) => collector.collect(collectorContext(client));
  const collectStandby = async (client: pg.Client = onStandby) => collector.collect(collectorContext(client));

  beforeAll(async () => {
    primary = await LocalCluster.start();
    const admin = await connect(primary.url());
    await admin.query('CREATE DATABASE rag');
    await admin.end();
    onPrimary = await connect(primary.url('rag'));
    await migrate(onPrimary);
    standby = await primary.createStandby();
    onStandby = await until('standby accepting connections', () => connect(standby.url('rag')));
  });
  afterAll(async () => {
    await onPrimary?.end().catch(() => undefined);
    await onStandby?.end().catch(() => undefined);
    standby?.remove();
    primary?.remove();
  });

  it('on the primary: role 0, one connected standby, its lag in bytes and seconds', async () => {
    const samples = await until('the standby streaming', async () => {
      const s = await collectPrimary();
      return samplesOf(s, 'pg_replication_lag_bytes', { state: 'streaming' }).length === 1 ? s : undefined;
    });
    expect(valueOf(samples, 'pg_replication_is_standby')).toBe(0);
    expect(valueOf(samples, 'pg_replication_connected_standbys')).toBe(1);
    const [lag] = samplesOf(samples, 'pg_replication_lag_bytes');
    expect(lag!.labels).toMatchObject({ client_addr: '127.0.0.1', state: 'streaming' });
    expect(lag!.labels!.application_name).toBeTruthy();
    expect(valueOf(samples, 'pg_replication_lag_bytes')).toBeGreaterThanOrEqual(0);
    expect(samplesOf(samples, 'pg_replication_wal_receiver_streaming')).toHaveLength(0);

    // Writes on the primary are replayed: lag goes back to 0 bytes and seconds are published.
    await onPrimary.query('CREATE TABLE replicated AS SELECT g FROM generate_series(1, 10000) g');
    const caughtUp = await until('replay to catch up', async () => {
      const s = await collectPrimary();
      return samplesOf(s, 'pg_replication_lag_bytes').length === 1 && valueOf(s, 'pg_replication_lag_bytes') === 0 ? s : undefined;
    });
    expect(valueOf(caughtUp, 'pg_replication_lag_seconds')).toBeGreaterThanOrEqual(0);
  });

  it('on the standby: role 1, streaming, and no lag while an idle primary writes nothing', async () => {
    await onPrimary.query('INSERT INTO replicated VALUES (0)');
    await until('the row on the standby', async () => ((await onStandby.query('SELECT 1 FROM replicated WHERE g = 0')).rowCount ? true : undefined));
    // The primary stays idle: the last replayed transaction grows old, but nothing waits to be replayed.
    await new Promise((r) => setTimeout(r, 2500));
    const { rows } = await onStandby.query<{ age: number }>('SELECT extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 AS age');
    expect(rows[0]!.age).toBeGreaterThan(2);

    const samples = await collectStandby();
    expect(valueOf(samples, 'pg_replication_is_standby')).toBe(1);
    expect(valueOf(samples, 'pg_replication_wal_receiver_streaming')).toBe(1);
    expect(valueOf(samples, 'pg_replication_lag_seconds')).toBe(0);
    expect(valueOf(samples, 'pg_replication_lag_bytes')).toBe(0);
    expect(samplesOf(samples, 'pg_replication_lag_seconds')[0]!.labels).toBeUndefined();
    expect(samplesOf(samples, 'pg_replication_connected_standbys')).toHaveLength(0);
  });

  it('works on both servers with the least-privilege pgvector_exporter role alone (pg_monitor)', async () => {
    const primaryLogin = await exporterLogin(onPrimary, primary.url('rag'));
    try {
      await until('the role on the standby', async () =>
        (await onStandby.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [primaryLogin.role])).rowCount ? true : undefined,
      );
      const standbyLogin = await connect(new URL(`postgresql://${primaryLogin.role}@127.0.0.1:${standby.port}/rag`).toString());
      try {
        // Without pg_read_all_stats, state and the receiver's status would read NULL.
        const onP = await collectPrimary(primaryLogin.client);
        expect(samplesOf(onP, 'pg_replication_lag_bytes', { state: 'streaming' })).toHaveLength(1);
        const onS = await collectStandby(standbyLogin);
        expect(valueOf(onS, 'pg_replication_wal_receiver_streaming')).toBe(1);
      } finally {
        await standbyLogin.end();
      }
    } finally {
      await primaryLogin.drop();
    }
  });

  it('turns streaming to 0 on the standby when the primary stops', async () => {
    primary.stopServer();
    const samples = await until('the WAL receiver to stop streaming', async () => {
      const s = await collectStandby();
      return valueOf(s, 'pg_replication_wal_receiver_streaming') === 0 ? s : undefined;
    });
    expect(valueOf(samples, 'pg_replication_is_standby')).toBe(1);
  });

  it('leaves NULL lag out, and reads a caught-up standby with NULL replay_lag as 0 seconds', () => {
    const none: Sample[] = standbySamples({ lag_seconds: null, lag_bytes: null, receiver_status: null });
    expect(samplesOf(none, 'pg_replication_lag_seconds')).toHaveLength(0);
    expect(samplesOf(none, 'pg_replication_lag_bytes')).toHaveLength(0);
    expect(valueOf(none, 'pg_replication_wal_receiver_streaming')).toBe(0);

    const row = { application_name: 'walreceiver', client_addr: '127.0.0.1', state: 'streaming' };
    const idle = primarySamples([{ ...row, lag_bytes: 0, lag_seconds: null }]);
    expect(valueOf(idle, 'pg_replication_lag_seconds')).toBe(0);
    const starting = primarySamples([{ ...row, state: 'startup', lag_bytes: null, lag_seconds: null }]);
    expect(samplesOf(starting, 'pg_replication_lag_bytes')).toHaveLength(0);
    expect(valueOf(starting, 'pg_replication_connected_standbys')).toBe(1);
  });
});
