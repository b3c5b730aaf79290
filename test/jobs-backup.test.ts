import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConnection } from '../src/db/connection.js';
import { clientEnvironment } from '../src/jobs/backup.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { insertDocuments, testConfig, testRunner, type TestRunner } from './helpers/jobs.js';
import { PASSWORD_CHECKED_ROLE } from './helpers/server.js';
import { CLI } from './helpers/cli.js';

describe('backup', () => {
  let db: TestDatabase;
  let t: TestRunner;
  let dir: string;
  const restored = `restored_${Date.now()}`;
  beforeAll(async () => {
    db = await createTestDatabase();
    await insertDocuments(db.pool, 20);
    dir = mkdtempSync(join(tmpdir(), 'pgvector-exporter-backups-'));
    t = testRunner(db.url, testConfig((c) => Object.assign(c.jobs.backup, { directory: dir, retention: 30 * 86_400_000 })));
  });
  afterAll(async () => {
    await t.close();
    await db.drop();
    await adminQuery(`DROP DATABASE IF EXISTS ${restored} WITH (FORCE)`);
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a verified custom-format dump that restores into a fresh database whose health check passes', async () => {
    // An expired dump of this database, one of another database, and a leftover partial.
    const expired = `${db.name}-20200101T020000Z.dump`;
    const foreign = `otherdb-20200101T020000Z.dump`;
    const partial = `${db.name}-20200102T020000Z.dump.partial`;
    for (const name of [expired, foreign, partial]) writeFileSync(join(dir, name), 'x');

    const result = await t.runner.run('backup', { trigger: 'manual' });
    expect(result.result, result.message).toBe('success');
    const files = readdirSync(dir);
    const dumps = files.filter((f) => f.startsWith(`${db.name}-`) && f.endsWith('.dump'));
    expect(dumps).toHaveLength(1);
    expect(files).toContain(foreign);
    expect(files).not.toContain(expired);
    expect(files).not.toContain(partial);
    const file = join(dir, dumps[0]!);
    expect(result.details).toMatchObject({ deleted: [expired], size_bytes: statSync(file).size });

    await adminQuery(`CREATE DATABASE ${restored} TEMPLATE template0`);
    const restore = spawnSync('pg_restore', ['--exit-on-error', '--no-owner', `--dbname=${adminUrl(restored)}`, file], { encoding: 'utf8' });
    expect(restore.stderr).toBe('');
    expect(restore.status).toBe(0);
    const client = new pg.Client({ connectionString: adminUrl(restored) });
    await client.connect();
    try {
      const health = await client.query<{ component: string; status: string; details: string }>('SELECT * FROM system_health_check()');
      expect(health.rows.length).toBeGreaterThan(5);
      expect(health.rows.filter((r) => r.status === 'CRITICAL')).toEqual([]);
      const count = await client.query('SELECT count(*)::int AS n FROM chunk_embeddings');
      expect(count.rows[0].n).toBe(20);
    } finally {
      await client.end();
    }
  });

  it('dumps as a role that must give a password over TCP: the password reaches pg_dump through PGPASSWORD', async () => {
    const role = `backup_pw_${Date.now()}`;
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PASSWORD_CHECKED_ROLE}') THEN CREATE ROLE ${PASSWORD_CHECKED_ROLE} NOLOGIN; END IF; END $$`);
    await adminQuery(`CREATE ROLE ${role} LOGIN SUPERUSER PASSWORD 'dump-s3cret' IN ROLE ${PASSWORD_CHECKED_ROLE}`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'dump-s3cret';
    const own = mkdtempSync(join(tmpdir(), 'pgvector-exporter-backups-pw-'));
    const withPassword = testRunner(url.toString(), testConfig((c) => Object.assign(c.jobs.backup, { directory: own })));
    try {
      const result = await withPassword.runner.run('backup', { trigger: 'manual' });
      expect(result.result, result.message).toBe('success');
      expect(result.statements.join('\n')).not.toContain('dump-s3cret');
      expect(readdirSync(own).filter((f) => f.endsWith('.dump'))).toHaveLength(1);
    } finally {
      await withPassword.close();
      rmSync(own, { recursive: true, force: true });
      await adminQuery(`DROP ROLE ${role}`).catch(() => undefined);
    }
  });

  it('gives pg_dump the password through PGPASSWORD, never on its command line', () => {
    const connection = resolveConnection('postgresql://app:s3cret@db.example:6543/rag', {});
    const env = clientEnvironment(connection, {});
    expect(env).toMatchObject({ PGHOST: 'db.example', PGPORT: '6543', PGUSER: 'app', PGDATABASE: 'rag', PGPASSWORD: 's3cret' });
  });

  it('fails with pg_dump\'s own words when it cannot dump, and leaves no partial file', async () => {
    // A table locked by a migration: pg_dump gives up after the job's lock_timeout (--lock-wait-timeout).
    const locked = testRunner(db.url, testConfig((c) => Object.assign(c.jobs.backup, { directory: dir, lock_timeout: 300 })));
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE source_lines IN ACCESS EXCLUSIVE MODE');
      const result = await locked.runner.run('backup', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toMatch(/pg_dump failed \(exit code 1\):.*statement timeout.*LOCK TABLE public\.source_lines/);
      expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    } finally {
      await blocker.end();
      await locked.close();
    }
    const missing = testRunner(db.url, testConfig((c) => Object.assign(c.jobs.backup, { directory: dir, pg_dump: '/nonexistent/pg_dump' })));
    try {
      const result = await missing.runner.run('backup', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toContain('/nonexistent/pg_dump not found');
      expect(readdirSync(dir).filter((f) => f.endsWith('.partial'))).toEqual([]);
    } finally {
      await missing.close();
    }
  });

  it('writes dumps 0600 into a directory it creates 0700', async () => {
    const parent = mkdtempSync(join(tmpdir(), 'pgvector-exporter-backups-mode-'));
    const own = join(parent, 'nested', 'dumps');
    const modes = testRunner(db.url, testConfig((c) => Object.assign(c.jobs.backup, { directory: own })));
    try {
      const result = await modes.runner.run('backup', { trigger: 'manual' });
      expect(result.result, result.message).toBe('success');
      expect(statSync(own).mode & 0o777).toBe(0o700);
      expect(statSync(join(parent, 'nested')).mode & 0o777).toBe(0o700);
      const dumps = readdirSync(own);
      expect(dumps).toHaveLength(1);
      expect(statSync(join(own, dumps[0]!)).mode & 0o777).toBe(0o600);
    } finally {
      await modes.close();
      rmSync(parent, { recursive: true, force: true });
    }
  });

  it('fails clearly on a backup directory under /proc, and the event loop keeps turning meanwhile', async () => {
    // Node's recursive mkdir never returns on procfs (it loops on ENOENT); the job used to freeze the process.
    const proc = testRunner(db.url, testConfig((c) => Object.assign(c.jobs.backup, { directory: '/proc/self/pgvector-backups/x' })));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    try {
      const result = await proc.runner.run('backup', { trigger: 'manual' });
      expect(result.result).toBe('failure');
      expect(result.message).toMatch(/cannot create backup directory \/proc\/self\/pgvector-backups\/x: ENOENT/);
      await new Promise((r) => setTimeout(r, 50));
      expect(ticks).toBeGreaterThan(0);
    } finally {
      clearInterval(ticker);
      await proc.close();
    }
  });

  it('`jobs run backup` stops within the shutdown grace on SIGTERM while pg_dump waits for a lock', async () => {
    const own = mkdtempSync(join(tmpdir(), 'pgvector-exporter-backups-sigterm-'));
    const config = join(own, 'config.yaml');
    writeFileSync(config, `jobs:\n  backup:\n    directory: ${join(own, 'dumps')}\n    lock_timeout: 0\n`);
    const blocker = new pg.Client({ connectionString: db.url });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE source_lines IN ACCESS EXCLUSIVE MODE');
      const child = spawn(process.execPath, [CLI, 'jobs', 'run', 'backup', '--config', config], {
        env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: db.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      // pg_dump is waiting for the lock: its session shows up blocked in pg_stat_activity.
      await expect
        .poll(async () => (await db.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'pgvector-exporter-backup' AND wait_event_type = 'Lock'")).rows[0].n, { timeout: 30_000, interval: 100 })
        .toBe(1);
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
      const code = await exited;
      clearTimeout(timer);
      expect(code, output).not.toBeNull(); // exited by itself, not killed by the guard above
      expect(code).not.toBe(0);
      expect(output).toMatch(/backup: failure/);
      expect(readdirSync(join(own, 'dumps')).filter((f) => f.endsWith('.partial'))).toEqual([]);
      const row = await db.pool.query("SELECT status FROM maintenance_log WHERE job = 'backup' ORDER BY id DESC LIMIT 1");
      expect(row.rows[0]?.status).toBe('failed');
    } finally {
      await blocker.end();
      rmSync(own, { recursive: true, force: true });
    }
  });
});
