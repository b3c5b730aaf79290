import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTcpServer, connect as tcpConnect, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import bcrypt from 'bcryptjs';
import pg from 'pg';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectivityCollector } from '../src/collectors/connectivity.js';
import { resolveConnection } from '../src/db/connection.js';
import { probeTargetConnection } from '../src/db/probe-target.js';
import { freePort } from '../src/free-port.js';
import { createLogger } from '../src/log.js';
import { registerSelfMetrics } from '../src/metrics/self-metrics.js';
import { Poller } from '../src/poller/poller.js';
import { runCli } from './helpers/cli.js';
import { adminQuery, adminUrl, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';
import { PASSWORD_CHECKED_ROLE } from './helpers/server.js';

/**
 * GET /probe (postgres_exporter's multi-target pattern) against the real test server, through the real
 * CLI: auth modules validated at start, pg_up per target (a dead one answers pg_up 0, not a timeout),
 * the cap on live targets, idle targets closed (their connections gone from pg_stat_activity), and no
 * target password in an answer, a log or /metrics.
 */

/** Every character a URL or a libpq string treats specially. */
const PASSWORD = `pr0be@:/%#?&= s3cret`;
const server = new URL(adminUrl());
const HOSTPORT = `${server.hostname}:${server.port || 5432}`;

function probeUrl(serve: ServeProcess, target: string, authModule?: string): string {
  const params = new URLSearchParams({ target });
  if (authModule !== undefined) params.set('auth_module', authModule);
  return `${serve.url}/probe?${params}`;
}

async function probe(serve: ServeProcess, target: string, authModule?: string, timeoutSeconds = 10) {
  const response = await fetch(probeUrl(serve, target, authModule), { headers: { 'X-Prometheus-Scrape-Timeout-Seconds': String(timeoutSeconds) } });
  return { status: response.status, body: await response.text() };
}

function probeConfig(role: string, extra = ''): string {
  return `
auth_modules:
  monitor:
    type: userpass
    userpass:
      username: ${role}
      password: ${JSON.stringify(PASSWORD)}
    options:
      sslmode: disable
collectors:
  connectivity: { interval: 500ms }
database:
  reconnect_max_backoff: 1s
jobs:
  enabled: false
${extra}`;
}

async function liveTargets(serve: ServeProcess): Promise<number> {
  return sampleValue(await serve.metrics(), 'pgvector_exporter_probe_targets') ?? NaN;
}

/** A server that accepts connections and never says a word: a host that is there but does not answer. */
async function blackhole(): Promise<{ port: number; close(): void }> {
  const held = new Set<Socket>();
  const tcp = createTcpServer((socket) => {
    held.add(socket);
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
  const port = (tcp.address() as { port: number }).port;
  return {
    port,
    close: () => {
      for (const socket of held) socket.destroy();
      tcp.close();
    },
  };
}

describe('target forms, as postgres_exporter reads them', () => {
  const module = { user: 'monitor', password: 'm0d@:/%#', options: { sslmode: 'disable', connect_timeout: '4' } };
  it.each([
    ['host:port/dbname', 'db1.internal:6432/rag', 'monitor@db1.internal:6432/rag'],
    ['host:port (the database defaults to the user name)', 'db1.internal:5433', 'monitor@db1.internal:5433/monitor'],
    ['an IPv6 address', '[::1]:5432/rag', 'monitor@::1:5432/rag'],
    ['a URL with its own credentials (the module wins)', 'postgresql://other:pw@db2:5432/app?application_name=x', 'monitor@db2:5432/app'],
    ['a libpq key=value string', 'host=db3 port=5434 dbname=vectors user=other', 'monitor@db3:5434/vectors'],
  ])('%s', (_what, target, description) => {
    const settings = probeTargetConnection(target, module);
    expect(settings.description).toBe(description);
    expect(settings.client.password).toBe(module.password);
    expect(settings.client.ssl).toBe(false);
    expect(settings.client.connectionTimeoutMillis).toBe(4000);
    expect(JSON.stringify(settings)).not.toContain('m0d@');
  });

  it("never presents the exporter's own ~/.postgresql client certificate to a target; an auth module may name one", () => {
    const home = mkdtempSync(join(tmpdir(), 'probe-home-'));
    const before = process.env.HOME;
    try {
      mkdirSync(join(home, '.postgresql'));
      for (const file of ['postgresql.crt', 'postgresql.key', 'module.crt', 'module.key']) writeFileSync(join(home, '.postgresql', file), `-----BEGIN ${file}-----\n`);
      process.env.HOME = home;
      // The exporter's own connection takes libpq's default files, as libpq does.
      const own = resolveConnection(`postgresql://u@${HOSTPORT}/db?sslmode=require`, {});
      expect(own.tls.files).toMatchObject({ sslcert: join(home, '.postgresql', 'postgresql.crt'), sslkey: join(home, '.postgresql', 'postgresql.key') });
      // A target named by a scraper: no client certificate at all.
      const target = probeTargetConnection(`${HOSTPORT}/db?sslmode=require`);
      expect(target.tls.files.sslcert).toBeUndefined();
      expect(target.tls.files.sslkey).toBeUndefined();
      expect(JSON.stringify(target.client.ssl)).not.toContain('BEGIN');
      // The operator's auth module may name one.
      const withModule = probeTargetConnection(`${HOSTPORT}/db?sslmode=require`, { user: 'm', password: 'p', options: { sslcert: join(home, '.postgresql', 'module.crt'), sslkey: join(home, '.postgresql', 'module.key') } });
      expect(withModule.tls.files).toMatchObject({ sslcert: join(home, '.postgresql', 'module.crt'), sslkey: join(home, '.postgresql', 'module.key') });
    } finally {
      if (before === undefined) delete process.env.HOME;
      else process.env.HOME = before;
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('without a module the target is used as it is, and never the exporter\'s PG* variables', async () => {
    process.env.PGPASSWORD = 'exporters-own-s3cret';
    process.env.PGUSER = 'exporters_own_role';
    try {
      const settings = probeTargetConnection('postgresql://app:t%40rget@db4:5432/app');
      expect(settings.client.password).toBe('t@rget');
      // What pg itself would send (it fills unset fields from PG* and ~/.pgpass): no password, not PGUSER.
      const bare = new pg.Client(probeTargetConnection('db4:5432/app').client);
      const password = typeof bare.password === 'function' ? await (bare.password as () => Promise<string> | string)() : bare.password;
      expect(password ?? '').not.toContain('exporters-own-s3cret');
      expect(bare.user).not.toBe('exporters_own_role');
    } finally {
      delete process.env.PGPASSWORD;
      delete process.env.PGUSER;
    }
  });

  it.each([
    ['a port that is not a number', 'postgresql://u:pa55word-x@db:notaport/x'],
    ['a bad percent escape', 'postgresql://u:pa55word-%zz@db/x'],
    ['an unknown keyword', 'host=db pa55word-x=1'],
    ['several hosts', 'postgresql://u:pa55word-x@db1,db2/x'],
  ])('%s is an error naming "target", never quoting it', (_what, target) => {
    expect(() => probeTargetConnection(target)).toThrow(/^target: /);
    try {
      probeTargetConnection(target);
    } catch (err) {
      expect((err as Error).message).not.toContain('pa55word');
    }
  });
});

describe('pg_up when the connection outlasts the poll', () => {
  it('a connectivity poll abandoned at its deadline publishes pg_up 0, not nothing', async () => {
    const hole = await blackhole();
    const pool = new pg.Pool({ host: '127.0.0.1', port: hole.port, user: 'nobody', database: 'none', connectionTimeoutMillis: 30_000, max: 1 });
    pool.on('error', () => undefined);
    const poller = new Poller({
      collectors: [connectivityCollector()],
      schedule: () => ({ intervalMs: 60_000, timeoutMs: 200 }),
      pool,
      log: createLogger('silent'),
      observer: registerSelfMetrics(new Registry()),
      maxBackoffMs: 1000,
    });
    try {
      await poller.pollAll();
      expect(sampleValue(poller.render(), 'pg_up')).toBe(0);
    } finally {
      hole.close();
      await pool.end().catch(() => undefined);
    }
  });
});

describe('auth_modules are validated at start', () => {
  const cases: [string, string, RegExp][] = [
    [
      'an unknown connection option',
      'auth_modules:\n  mon:\n    type: userpass\n    userpass: { username: u, password: "s3cr@t:/x" }\n    options:\n      sslmod: disable\n',
      /config\.yaml:6: auth_modules\.mon\.options\.sslmod: unknown connection option "sslmod"/,
    ],
    ['a type that is not userpass', 'auth_modules:\n  mon:\n    type: tls\n', /config\.yaml:3: auth_modules\.mon\.type: "tls" is not an auth module type/],
    ['a missing password', 'auth_modules:\n  mon:\n    type: userpass\n    userpass:\n      username: u\n', /config\.yaml:4: auth_modules\.mon\.userpass: password is required/],
    ['a bad sslmode', 'auth_modules:\n  mon:\n    type: userpass\n    userpass: { username: u, password: "s3cr@t:/x" }\n    options: { sslmode: sometimes }\n', /config\.yaml:5: auth_modules\.mon\.options\.sslmode: "sometimes" is not an sslmode/],
    ['an unknown key', 'auth_modules:\n  mon:\n    type: userpass\n    userpass: { username: u, password: "s3cr@t:/x" }\n    tls_config: {}\n', /config\.yaml:5: auth_modules\.mon\.tls_config: unknown key "tls_config"/],
    ['a probe setting in seconds where a duration was meant', 'probe:\n  idle_timeout: 30d\n', /config\.yaml:2: probe\.idle_timeout: "30d" is longer than the maximum/],
  ];
  it.each(cases)('%s: exit 2, one line naming file:line:key, no password', async (_what, yaml, message) => {
    const result = await runCli(['serve', '--config', writeConfig(yaml), '--database-url', 'postgresql://nobody@127.0.0.1:1/none']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).not.toContain('s3cr@t');
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stderr).not.toContain('s3cr@t:/x');
  });
});

describe('GET /probe', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  const role = `probe_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PASSWORD_CHECKED_ROLE}') THEN CREATE ROLE ${PASSWORD_CHECKED_ROLE} NOLOGIN; END IF; END $$`);
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD '${PASSWORD}' IN ROLE ${PASSWORD_CHECKED_ROLE}, pg_monitor`);
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(probeConfig(role, 'probe:\n  max_targets: 3\n'))]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });

  it('answers a target with an auth module: pg_up 1 and its collectors, not the process metrics', async () => {
    const { status, body } = await probe(serve, `${HOSTPORT}/${db.name}`, 'monitor');
    expect(status).toBe(200);
    expect(sampleValue(body, 'pg_up')).toBe(1);
    // The target's own database is the one the target names.
    expect(sampleValue(body, 'pg_database_size_bytes', { datname: db.name })).toBeGreaterThan(0);
    expect(body).toContain('pgvector_exporter_collector_success{collector="connectivity"} 1');
    expect(body).not.toMatch(/^process_|^nodejs_|^pgvector_exporter_probe_targets/m);
    // Later probes answer from the target's cache.
    const again = await probe(serve, `${HOSTPORT}/${db.name}`, 'monitor');
    expect(sampleValue(again.body, 'pg_up')).toBe(1);
    expect(await liveTargets(serve)).toBe(1);
  });

  it('an unknown auth_module is a 400 saying which, and what is configured', async () => {
    const { status, body } = await probe(serve, `${HOSTPORT}/${db.name}`, 'nope');
    expect(status).toBe(400);
    expect(body).toBe('auth_module "nope" not found (configured in auth_modules: monitor)\n');
    // /metrics is rendered at most once a second: wait for the count rather than read it at once.
    await eventually(async () => sampleValue(await serve.metrics(), 'pgvector_exporter_probe_refused_total', { reason: 'unknown_auth_module' }) === 1, 'the refusal counted');
  });

  it('no target or a malformed one is a 400 that never quotes it', async () => {
    expect((await fetch(`${serve.url}/probe`)).status).toBe(400);
    const malformed = await probe(serve, `postgresql://${role}:${encodeURIComponent(PASSWORD)}@${HOSTPORT}:notaport/x`);
    expect(malformed.status).toBe(400);
    expect(malformed.body).toMatch(/^target: malformed connection string/);
    expect(malformed.body).not.toContain('s3cret');
  });

  it('a dead target answers 200 with pg_up 0 at once, not a scrape timeout', async () => {
    const dead = `127.0.0.1:${await freePort()}/postgres`;
    const { status, body } = await probe(serve, dead, 'monitor', 30);
    expect(status).toBe(200);
    expect(sampleValue(body, 'pg_up')).toBe(0);
  });

  it('a target with the password in its URL works; past probe.max_targets live targets a new one is refused with 503', async () => {
    const target = `postgresql://${role}:${encodeURIComponent(PASSWORD)}@${HOSTPORT}/${db.name}?sslmode=disable`;
    const good = await probe(serve, target);
    expect(sampleValue(good.body, 'pg_up')).toBe(1);
    // Live now: the auth-module target, the dead one, this one = probe.max_targets (3).
    await eventually(async () => (await liveTargets(serve)) === 3, 'three live targets');
    const flood = await Promise.all(Array.from({ length: 20 }, (_, i) => probe(serve, `${HOSTPORT}/flood_${i}`, 'monitor')));
    for (const refused of flood) {
      expect(refused.status).toBe(503);
      expect(refused.body).toMatch(/^too many probe targets: 3 are live, the most probe\.max_targets allows/);
    }
    // Known targets still answer from their caches.
    expect(sampleValue((await probe(serve, target)).body, 'pg_up')).toBe(1);
    const metrics = await eventually(async () => {
      const text = await serve.metrics();
      return sampleValue(text, 'pgvector_exporter_probe_refused_total', { reason: 'too_many_targets' }) === 20 ? text : undefined;
    }, 'the refusals counted');
    expect(sampleValue(metrics, 'pgvector_exporter_probe_targets')).toBe(3);
    for (const text of [good.body, metrics, serve.logs()]) {
      expect(text).not.toContain('s3cret');
      expect(text).not.toContain(encodeURIComponent(PASSWORD));
    }
  });
});

describe('a target that comes back, and idle targets closed', () => {
  let db: TestDatabase;
  let serve: ServeProcess;
  let proxy: TcpServer | undefined;
  const sockets = new Set<Socket>();
  const role = `probe_${randomBytes(4).toString('hex')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    await adminQuery(`DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${PASSWORD_CHECKED_ROLE}') THEN CREATE ROLE ${PASSWORD_CHECKED_ROLE} NOLOGIN; END IF; END $$`);
    await adminQuery(`CREATE ROLE ${role} LOGIN PASSWORD 'the-right-one' IN ROLE ${PASSWORD_CHECKED_ROLE}`);
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(probeConfig('unused', 'probe:\n  idle_timeout: 2s\n  connect_timeout: 1s\n'))]);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    proxy?.close();
    await serve?.stop();
    await db?.drop();
    await adminQuery(`DROP ROLE IF EXISTS ${role}`);
  });

  it('pg_up goes from 0 to 1 when a dead target starts answering', async () => {
    // The port is held by this test from the start (another worker cannot take it): first every connection
    // is dropped at once (a dead server), then relayed to the real server.
    let relaying = false;
    proxy = createTcpServer((client) => {
      if (!relaying) return void client.destroy();
      const upstream = tcpConnect(Number(server.port || 5432), server.hostname);
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => sockets.delete(s));
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => proxy!.listen(0, '127.0.0.1', resolve));
    const port = (proxy.address() as AddressInfo).port;
    const target = `postgresql://postgres@127.0.0.1:${port}/${db.name}?sslmode=disable`;
    const down = await probe(serve, target);
    expect(down.status).toBe(200);
    expect(sampleValue(down.body, 'pg_up')).toBe(0);
    relaying = true;
    await eventually(async () => sampleValue((await probe(serve, target)).body, 'pg_up') === 1, 'pg_up 1 after the target came back');
  });

  it('a target that accepts connections but never answers: pg_up 0 within probe.connect_timeout', async () => {
    const hole = await blackhole();
    try {
      // A scrape timeout shorter than the collectors' 5 s: pg_up 0 comes from the 1 s connect timeout.
      const { status, body } = await probe(serve, `127.0.0.1:${hole.port}/postgres`, undefined, 4);
      expect(status).toBe(200);
      expect(sampleValue(body, 'pg_up')).toBe(0);
    } finally {
      hole.close();
    }
  });

  it('a wrong password in a target: pg_up 0, and neither password in the answer, the log or /metrics', async () => {
    const secret = 'wr0ng@:/%#s3cret';
    const answer = await probe(serve, `postgresql://${role}:${encodeURIComponent(secret)}@${HOSTPORT}/${db.name}?sslmode=disable`);
    expect(answer.status).toBe(200);
    expect(sampleValue(answer.body, 'pg_up')).toBe(0);
    await eventually(async () => /database unreachable[^\n]*password authentication failed|password authentication failed[^\n]*database unreachable/.test(serve.logs()), 'the failed login logged');
    for (const text of [answer.body, await serve.metrics(), serve.logs()]) {
      expect(text).not.toContain('s3cret');
      expect(text).not.toContain(encodeURIComponent(secret));
    }
  });

  it('a target not probed for probe.idle_timeout is closed: its connections leave pg_stat_activity', async () => {
    const target = `postgresql://postgres@${HOSTPORT}/${db.name}?sslmode=disable`;
    const answer = await probe(serve, target);
    expect(sampleValue(answer.body, 'pg_up')).toBe(1);
    const probeConnections = async () =>
      Number((await adminQuery<{ n: string }>("SELECT count(*) AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE 'pgvector-exporter probe%'", [db.name])).rows[0]!.n);
    expect(await probeConnections()).toBeGreaterThan(0);
    // No more probes: the target is closed and its pools ended.
    await eventually(async () => (await probeConnections()) === 0, 'the idle target closed', 60_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${serve.logs().slice(-4000)}`);
    });
    await eventually(async () => (await liveTargets(serve)) === 0, 'pgvector_exporter_probe_targets 0');
    expect(sampleValue(await serve.metrics(), 'pgvector_exporter_probe_targets_closed_total')).toBeGreaterThanOrEqual(1);
  });
});

describe('/probe behind the web config, as /metrics', () => {
  let serve: ServeProcess;
  let db: TestDatabase;
  const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  beforeAll(async () => {
    db = await createTestDatabase();
    const web = writeConfig(`basic_auth_users:\n  prometheus: ${bcrypt.hashSync('correct horse', 8)}\n`, 'web.yml');
    serve = await startServe(['--database-url', db.url, '--web.config.file', web, '--config', writeConfig(probeConfig('unused'))]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('answers 401 without credentials, before any target is opened; 200 with them', async () => {
    const url = `${serve.url}/probe?${new URLSearchParams({ target: `postgresql://postgres@${HOSTPORT}/${db.name}?sslmode=disable` })}`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: basic('prometheus', 'wrong') } })).status).toBe(401);
    const metrics = await fetch(`${serve.url}/metrics`, { headers: { authorization: basic('prometheus', 'correct horse') } });
    expect(sampleValue(await metrics.text(), 'pgvector_exporter_probe_targets_opened_total')).toBe(0);
    const answer = await fetch(url, { headers: { authorization: basic('prometheus', 'correct horse') } });
    expect(answer.status).toBe(200);
    expect(sampleValue(await answer.text(), 'pg_up')).toBe(1);
  });
});

describe('a reload reaches the live probe targets', () => {
  let serve: ServeProcess;
  let db: TestDatabase;
  let configPath: string;

  beforeAll(async () => {
    db = await createTestDatabase();
    configPath = writeConfig(probeConfig('unused'));
    serve = await startServe(['--database-url', db.url, '--config', configPath]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('SIGHUP with a collector turned off: the target stops running it, without a restart', async () => {
    const target = `postgresql://postgres@${HOSTPORT}/${db.name}?sslmode=disable`;
    const before = await probe(serve, target);
    expect(before.body).toContain('pgvector_exporter_collector_success{collector="locks"}');
    writeFileSync(configPath, probeConfig('unused').replace('  connectivity: { interval: 500ms }\n', '  connectivity: { interval: 500ms }\n  locks: { enabled: false }\n'));
    serve.child.kill('SIGHUP');
    await eventually(async () => {
      const { body } = await probe(serve, target);
      return sampleValue(body, 'pg_up') === 1 && !body.includes('collector="locks"');
    }, 'the locks collector gone from the target');
    expect(sampleValue(await serve.metrics(), 'pgvector_exporter_probe_targets_opened_total')).toBe(1);
  });
});

describe('probe targets and the custom collector files', () => {
  let serve: ServeProcess;
  let db: TestDatabase;
  let customFile: string;
  const CUSTOM = 'collectors:\n  - name: probed\n    query: SELECT 7 AS v\n    metrics:\n      - { name: test_probed_v, type: gauge, column: v, help: Seven. }\n';

  beforeAll(async () => {
    db = await createTestDatabase();
    customFile = writeConfig(CUSTOM, 'custom.yaml');
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(probeConfig('unused')), '--custom-collectors.files', customFile]);
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });

  it('a target opened after the file broke on disk runs the custom collectors read at start: the file is read once per loaded config, not per target', async () => {
    writeFileSync(customFile, 'collectors:\n  - name: [broken\n');
    const { status, body } = await probe(serve, `postgresql://postgres@${HOSTPORT}/${db.name}?sslmode=disable`);
    expect(status).toBe(200);
    expect(sampleValue(body, 'pg_up')).toBe(1);
    expect(sampleValue(body, 'test_probed_v')).toBe(7);
  });
});

describe("the exporter's own credentials never reach a target", () => {
  let serve: ServeProcess;
  let fake: TcpServer | undefined;
  const received: { user?: string; password?: string }[] = [];

  beforeAll(async () => {
    // A "server" a scraper names, which asks for the password in clear text and records what it gets.
    fake = createTcpServer((socket) => {
      socket.on('error', () => undefined);
      let buffer = Buffer.alloc(0);
      let started = false;
      socket.on('data', (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        if (!started && buffer.length >= 8) {
          const length = buffer.readInt32BE(0);
          if (buffer.length < length) return;
          const code = buffer.readInt32BE(4);
          if (code === 80877103) {
            // SSLRequest: no TLS here; the client then sends its startup message.
            buffer = buffer.subarray(8);
            socket.write('N');
            return;
          }
          const params = buffer.subarray(8, length).toString('utf8').split('\0');
          const user = params[params.indexOf('user') + 1];
          buffer = buffer.subarray(length);
          started = true;
          received.push({ user });
          const auth = Buffer.alloc(9);
          auth.write('R', 0);
          auth.writeInt32BE(8, 1);
          auth.writeInt32BE(3, 5); // AuthenticationCleartextPassword
          socket.write(auth);
        }
        if (started && buffer.length >= 5 && buffer[0] === 0x70) {
          const length = buffer.readInt32BE(1);
          if (buffer.length < length + 1) return;
          received.at(-1)!.password = buffer.subarray(5, length).toString('utf8').replace(/\0$/, '');
          socket.destroy();
        }
      });
    });
    await new Promise<void>((resolve) => fake!.listen(0, '127.0.0.1', resolve));
    serve = await startServe(['--database-url', adminUrl(), '--config', writeConfig(probeConfig('unused'))], {
      PGPASSWORD: 'exporter-own-secret',
      PGUSER: 'exporter_own_role',
      PGDATABASE: 'exporter_own_db',
    });
  });
  afterAll(async () => {
    await serve?.stop();
    await new Promise((resolve) => fake?.close(resolve));
  });

  it('a target without a password is offered none: not PGPASSWORD, not PGUSER, from the exporter\'s environment', async () => {
    const port = (fake!.address() as AddressInfo).port;
    const answer = await probe(serve, `127.0.0.1:${port}/somedb?sslmode=disable`);
    expect(answer.status).toBe(200);
    expect(sampleValue(answer.body, 'pg_up')).toBe(0);
    await eventually(async () => received.some((r) => r.password !== undefined), 'the fake server asked for a password');
    for (const r of received) {
      expect(r.password ?? '').not.toContain('exporter-own-secret');
      expect(r.user).not.toBe('exporter_own_role');
    }
    expect(serve.logs()).not.toContain('exporter-own-secret');
  });

  it('a target naming a file on the exporter host is refused with 400, without quoting it', async () => {
    const answer = await probe(serve, `127.0.0.1:5432/x?sslcert=/etc/shadow&sslkey=/etc/shadow`);
    expect(answer.status).toBe(400);
    expect(answer.body).toMatch(/sslcert names a file on the exporter's host/);
    expect(answer.body).not.toContain('/etc/shadow');
  });
});
