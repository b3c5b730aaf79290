import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { request } from 'node:https';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresExporterFamilies } from '../src/collectors/collector.js';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
import { collectorsOptions } from '../src/commands/assembly.js';
import { loadConfig } from '../src/config/load.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { runCli } from './helpers/cli.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, FAST_COLLECTORS_YAML, sampleValue, startServe, useServeOnTestDatabase, writeConfig, type ServeProcess } from './helpers/exporter.js';

describe('serve against a healthy database', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  useServeOnTestDatabase((started) => ({ db, serve } = started));

  it('answers /healthz at once and /readyz after the first poll', async () => {
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    await eventually(async () => (await fetch(`${serve.url}/readyz`)).status === 200, '/readyz 200');
    const landing = await (await fetch(`${serve.url}/`)).text();
    expect(landing).toContain('href="/metrics"');
  });

  it('publishes pg_up 1, build info and self-metrics with the text content type', async () => {
    const response = await eventually(async () => {
      const r = await fetch(`${serve.url}/metrics`);
      const text = await r.text();
      return sampleValue(text, 'pg_up') === 1 ? { r, text } : undefined;
    }, 'pg_up 1');
    expect(response.r.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(sampleValue(response.text, 'pgvector_exporter_build_info')).toBe(1);
    expect(sampleValue(response.text, 'pgvector_exporter_collector_success', { collector: 'connectivity' })).toBe(1);
    expect(response.text).toMatch(/^pgvector_extension_info\{version="0\.\d+\.\d+"\} 1$/m);
    expect(response.text).toContain('process_resident_memory_bytes');
  });

  it('gzips /metrics for scrapers that accept it, and sends plain text to the others', async () => {
    const url = new URL(`${serve.url}/metrics`);
    const get = (headers: Record<string, string>) =>
      new Promise<{ encoding?: string; body: Buffer }>((resolve, reject) => {
        httpGet({ host: url.hostname, port: url.port, path: url.pathname, headers }, (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }));
        }).on('error', reject);
      });
    const zipped = await get({ 'Accept-Encoding': 'gzip' });
    const plain = await get({});
    expect(zipped.encoding).toBe('gzip');
    expect(plain.encoding).toBeUndefined();
    expect(gunzipSync(zipped.body).toString()).toContain('pgvector_exporter_build_info');
    expect(plain.body.toString()).toContain('pgvector_exporter_build_info');
    expect(zipped.body.length).toBeLessThan(plain.body.length / 3);
  });

  it('serves scrapes from the cache: scraping does not add database queries', async () => {
    const count = async () =>
      Number((await db.pool.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'pgvector-exporter'")).rows[0].n);
    const before = await count();
    await Promise.all(Array.from({ length: 50 }, () => serve.metrics()));
    // The pool is bounded by database.pool_max whatever the scrape rate.
    expect(await count()).toBeLessThanOrEqual(Math.max(before, 3));
  });

  it('passes promtool check metrics for its new families', async () => {
    const text = await serve.metrics();
    const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(result.error).toBeUndefined();
    // Families that keep postgres_exporter's names, types and labels (marked compatibility:
    // 'postgres_exporter' by their collector) keep its conventions too: promtool's naming lint
    // (counters without _total, a gauge named _count) is waived for them alone.
    const config = loadConfig();
    const compatible = postgresExporterFamilies(Object.values(COLLECTOR_FACTORIES).flatMap((factory) => factory(collectorsOptions(config)).families));
    const problems = `${result.stdout}${result.stderr}`
      .split('\n')
      .filter((line) => line.trim() && !/^(process_|nodejs_)/.test(line) && !compatible.has(line.split(' ')[0]!));
    expect(problems).toEqual([]);
  });
});

describe('serve follows the database going away and coming back', () => {
  let cluster: LocalCluster;
  let serve: ServeProcess;
  beforeAll(async () => {
    cluster = await LocalCluster.start();
    serve = await startServe(['--database-url', cluster.url(), '--config', writeConfig(FAST_COLLECTORS_YAML)]);
  });
  afterAll(async () => {
    await serve?.stop();
    cluster?.remove();
  });

  it('moves pg_up to 0 when the server stops and back to 1 when it returns, without a restart', async () => {
    await eventually(async () => sampleValue(await serve.metrics(), 'pg_up') === 1, 'pg_up 1');
    cluster.stopServer();
    await eventually(async () => sampleValue(await serve.metrics(), 'pg_up') === 0, 'pg_up 0');
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    cluster.startServer();
    await eventually(async () => sampleValue(await serve.metrics(), 'pg_up') === 1, 'pg_up back to 1');
    expect(serve.child.exitCode).toBeNull();
  });

  it('stops cleanly on SIGTERM, within its shutdown grace', async () => {
    const { code } = await serve.stop();
    // A shutdown that overran the grace period exits 1 with "shutdown did not finish in time": exit 0 says it did not.
    expect(code).toBe(0);
    expect(serve.logs()).toContain('"msg":"stopped"');
    expect(serve.logs()).not.toContain('shutdown did not finish in time');
  });
});

describe('serve starts without a database and never leaks its password', () => {
  it('serves pg_up 0 while the database is unreachable, with the password redacted from logs', async () => {
    const serve = await startServe([
      '--database-url',
      'postgresql://watcher:hunter2-secret@127.0.0.1:1/rag',
      '--config',
      writeConfig(FAST_COLLECTORS_YAML),
    ]);
    try {
      await eventually(async () => sampleValue(await serve.metrics(), 'pg_up') === 0, 'pg_up 0');
      await eventually(async () => (await fetch(`${serve.url}/readyz`)).status === 200, 'ready after the first (failed) poll');
      expect(serve.logs()).toContain('database unreachable');
      expect(serve.logs()).not.toContain('hunter2-secret');
    } finally {
      await serve.stop();
    }
  });
});

describe('bad input: exit 2 and one message naming the file, line and key', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['invalid YAML', 'collectors:\n  tables: [unclosed\n', /config\.yaml:\d+: invalid YAML/],
    ['an unknown key', 'web:\n  listen_adress: ":9188"\n', /config\.yaml:2: unknown key "web\.listen_adress"/],
    ['a bad duration', 'collectors:\n  tables:\n    interval: fortnightly\n', /config\.yaml:3: collectors\.tables\.interval: "fortnightly" is not a duration/],
    ['an unknown collector', 'collectors:\n  telepathy: { enabled: true }\n', /config\.yaml:2: unknown collector "telepathy"/],
    ['a bad cron expression', 'jobs:\n  analyze:\n    schedule: "61 2 * * *"\n', /config\.yaml:3: jobs\.analyze\.schedule: "61 2 \* \* \*" is not a valid cron expression/],
    ['an unknown job', 'jobs:\n  defragment:\n    enabled: true\n', /config\.yaml:2: unknown job "defragment"/],
  ];
  for (const [what, yaml, message] of cases) {
    it(`refuses ${what}`, async () => {
      const result = await runCli(['serve', '--database-url', 'postgresql://x@127.0.0.1:1/x', '--config', writeConfig(yaml)]);
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    });
  }

  it('refuses a malformed DATABASE_URL', async () => {
    const result = await runCli(['serve'], { DATABASE_URL: 'postgresql://u:pw@[bad' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/DATABASE_URL: malformed connection (URL|string)/);
    expect(result.stderr).not.toMatch(/\bpw\b/);
    expect(result.stderr).not.toContain(':pw@');
  });

  it('refuses an unknown flag and a bad listen address', async () => {
    expect((await runCli(['serve', '--web.listen-adress', ':1'])).code).toBe(2);
    const bad = await runCli(['serve', '--web.listen-address', 'localhost'], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('flag --web.listen-address');
  });

  it('refuses a web config with an unknown key or a bad hash', async () => {
    const unknown = await runCli(['serve', '--web.config.file', writeConfig('tls_server_config:\n  cert_fil: x\n', 'web.yml')], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/web\.yml:2: unknown key "tls_server_config\.cert_fil"/);
    const badHash = await runCli(['serve', '--web.config.file', writeConfig('basic_auth_users:\n  alice: plaintext\n', 'web.yml')], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(badHash.code).toBe(2);
    expect(badHash.stderr).toMatch(/web\.yml:2: basic_auth_users\.alice: expected a bcrypt hash/);
  });
});

describe('--web.config.file: TLS and basic auth, as exporter-toolkit does it', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  let ca: Buffer;
  beforeAll(async () => {
    db = await createTestDatabase();
    const dir = mkdtempSync(join(tmpdir(), 'pgve-tls-'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
    ca = execFileSync('cat', [join(dir, 'cert.pem')]);
    const hash = bcrypt.hashSync('correct horse', 10);
    const web = join(dir, 'web.yml');
    writeFileSync(web, `tls_server_config:\n  cert_file: ${join(dir, 'cert.pem')}\n  key_file: ${join(dir, 'key.pem')}\nbasic_auth_users:\n  prometheus: ${hash}\n`);
    serve = await startServe(['--database-url', db.url, '--web.config.file', web], {}, { tls: true });
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  const get = (path: string, auth?: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${serve.url}${path}`, { ca, headers: auth ? { authorization: `Basic ${Buffer.from(auth).toString('base64')}` } : {} }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });

  it('serves /metrics over TLS to the right user only', async () => {
    expect((await get('/metrics')).status).toBe(401);
    expect((await get('/metrics', 'prometheus:wrong')).status).toBe(401);
    const ok = await get('/metrics', 'prometheus:correct horse');
    expect(ok.status).toBe(200);
    expect(ok.body).toContain('pgvector_exporter_build_info');
    expect(serve.logs()).not.toContain('correct horse');
  });

  it('keeps /healthz open for container healthchecks', async () => {
    expect((await get('/healthz')).status).toBe(200);
  });
});
