import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveConnection } from '../src/db/connection.js';
import { LocalCluster } from '../src/local-cluster/cluster.js';
import { withClient } from '../src/db/pool.js';
import { describeDatabaseError } from '../src/db/errors.js';
import { adminUrl } from './helpers/database.js';

/**
 * Every connection-string form and every sslmode against real servers: a PostgreSQL of its own with
 * ssl=on, a certificate signed by a CA made here with openssl, password (SCRAM) authentication and one
 * role that pg_hba.conf lets in only over TLS; and the suite's shared server, which has no TLS.
 */
const PASSWORD = 'p@:/%#sLeak s';
const ENC = encodeURIComponent(PASSWORD);

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: 'pipe' });
}

/** A CA and a server certificate for localhost / 127.0.0.1 / ::1 signed by it; and an unrelated CA. */
function makeCertificates(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.pem'], dir);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=other-ca', '-keyout', 'other.key', '-out', 'other.pem'], dir);
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr'], dir);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n');
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem'], dir);
  return { ca: join(dir, 'ca.pem'), otherCa: join(dir, 'other.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

async function whoAmI(url: string, env: Record<string, string> = {}): Promise<{ user: string; db: string; ssl: boolean }> {
  const settings = resolveConnection(url, { HOME: process.env.HOME, ...env });
  return withClient(settings, 'connection-tls-test', async (client) => {
    const { rows } = await client.query<{ user: string; db: string; ssl: boolean }>(
      'SELECT current_user AS user, current_database() AS db, COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false) AS ssl',
    );
    return rows[0]!;
  });
}

async function failure(url: string): Promise<string> {
  const settings = resolveConnection(url, {});
  try {
    await withClient(settings, 'connection-tls-test', async () => undefined, 10_000);
  } catch (err) {
    return describeDatabaseError(err, settings.description);
  }
  throw new Error('expected the connection to fail');
}

describe('connection strings and TLS against real PostgreSQL servers', () => {
  let cluster: LocalCluster;
  let certs: ReturnType<typeof makeCertificates>;
  let certDir: string;
  let port: number;

  beforeAll(async () => {
    certDir = mkdtempSync(join(tmpdir(), 'pg-tls-'));
    certs = makeCertificates(certDir);
    cluster = await LocalCluster.start({
      settings: { listen_addresses: "'127.0.0.1,::1'", password_encryption: "'scram-sha-256'" },
      hba: [
        'hostnossl all tls_only 0.0.0.0/0 reject',
        'hostnossl all tls_only ::/0 reject',
        'host all all 127.0.0.1/32 scram-sha-256',
        'host all all ::1/128 scram-sha-256',
      ],
    });
    port = cluster.port;
    // The server reads its key as its own OS user, and refuses a key others can read.
    const owner = statSync(cluster.dataDir);
    for (const file of [certs.cert, certs.key]) chownSync(file, owner.uid, owner.gid);
    chmodSync(certs.key, 0o600);
    chownSync(certDir, owner.uid, owner.gid);
    const sql = [
      `CREATE ROLE app LOGIN PASSWORD '${PASSWORD.replace(/'/g, "''")}'`,
      `CREATE ROLE tls_only LOGIN PASSWORD '${PASSWORD.replace(/'/g, "''")}'`,
      'CREATE DATABASE rag',
      `ALTER SYSTEM SET ssl_cert_file = '${certs.cert}'`,
      `ALTER SYSTEM SET ssl_key_file = '${certs.key}'`,
      'ALTER SYSTEM SET ssl = on',
      'SELECT pg_reload_conf()',
    ];
    for (const statement of sql) cluster.run('psql', ['-h', cluster.socketDir, '-p', String(port), '-U', 'postgres', '-d', 'postgres', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', statement]);
    // Wait for the reload to take effect (TLS offered), by asking for it.
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        if ((await whoAmI(`postgresql://app:${ENC}@127.0.0.1:${port}/rag?sslmode=require`)).ssl) break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });
  afterAll(() => {
    cluster?.remove();
    if (certDir) rmSync(certDir, { recursive: true, force: true });
  });

  it('connects with every URL form: both schemes, a password with @:/%# and a space, IPv6, socket directories', async () => {
    const forms = [
      `postgresql://app:${ENC}@127.0.0.1:${port}/rag`,
      `postgres://app:${ENC}@localhost:${port}/rag`,
      `postgresql://app:${ENC}@[::1]:${port}/rag`,
      `postgresql://app@%2F${encodeURIComponent(cluster.socketDir.slice(1))}:${port}/rag`,
      `postgresql:///rag?host=${encodeURIComponent(cluster.socketDir)}&port=${port}&user=app`,
    ];
    for (const url of forms) expect(await whoAmI(url), url.replace(ENC, '***')).toMatchObject({ user: 'app', db: 'rag' });
  });

  it('connects with key=value strings: quoted password with quote and backslash escapes, socket directory via host=', async () => {
    const quoted = PASSWORD.replace(/\\/g, '\\\\').replace(/'/g, "\\'");
    expect(await whoAmI(`host=127.0.0.1 port=${port} user=app password='${quoted}' dbname=rag sslmode=disable`)).toEqual({ user: 'app', db: 'rag', ssl: false });
    expect(await whoAmI(`host=${cluster.socketDir} port=${port} user=app dbname=rag`)).toMatchObject({ user: 'app', ssl: false });
  });

  it('passfile= reads the password from that file as libpq does: the matching line, and not when others can read it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-passfile-'));
    try {
      const file = join(dir, 'pass');
      // libpq's format: host:port:database:user:password, ':' and '\\' escaped, '*' matching anything.
      const escaped = PASSWORD.replace(/\\/g, '\\\\').replace(/:/g, '\\:');
      writeFileSync(file, `otherhost:*:*:app:wrong\n127.0.0.1:${port}:rag:app:${escaped}\n`, { mode: 0o600 });
      const url = `postgresql://app@127.0.0.1:${port}/rag?passfile=${encodeURIComponent(file)}`;
      expect(await whoAmI(url)).toMatchObject({ user: 'app', db: 'rag' });
      expect(await whoAmI(`host=127.0.0.1 port=${port} user=app dbname=rag passfile='${file}'`)).toMatchObject({ user: 'app' });
      // A line for another database does not match: the login fails without a password.
      expect(await failure(`postgresql://app@127.0.0.1:${port}/postgres?passfile=${encodeURIComponent(file)}`)).toMatch(/password/i);
      // Group- or world-readable: ignored, as libpq ignores it.
      chmodSync(file, 0o644);
      expect(await failure(url)).toMatch(/password/i);
      // A password in the string wins over the file.
      chmodSync(file, 0o600);
      writeFileSync(file, `*:*:*:app:wrong\n`, { mode: 0o600 });
      expect(await whoAmI(`postgresql://app:${ENC}@127.0.0.1:${port}/rag?passfile=${encodeURIComponent(file)}`)).toMatchObject({ user: 'app' });
      const message = await failure(url);
      expect(message).toMatch(/password/i);
      expect(message).not.toContain('wrong');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('DATA_SOURCE_URI with DATA_SOURCE_USER/PASS connects (postgres_exporter form)', async () => {
    const settings = resolveConnection(undefined, { DATA_SOURCE_URI: `127.0.0.1:${port}/rag?sslmode=require`, DATA_SOURCE_USER: 'app', DATA_SOURCE_PASS: PASSWORD });
    const user = await withClient(settings, 't', async (c) => (await c.query<{ u: string }>('SELECT current_user AS u')).rows[0]!.u);
    expect(user).toBe('app');
  });

  it('prefer (the default) uses TLS when the server offers it, and allow only when pg_hba.conf demands it', async () => {
    expect((await whoAmI(`postgresql://app:${ENC}@127.0.0.1:${port}/rag`)).ssl).toBe(true);
    expect((await whoAmI(`postgresql://app:${ENC}@127.0.0.1:${port}/rag?sslmode=allow`)).ssl).toBe(false);
    expect((await whoAmI(`postgresql://tls_only:${ENC}@127.0.0.1:${port}/rag?sslmode=allow`)).ssl).toBe(true);
    expect(await failure(`postgresql://tls_only:${ENC}@127.0.0.1:${port}/rag?sslmode=disable`)).toMatch(/pg_hba\.conf/);
  });

  it('prefer falls back to a plain connection on a server without TLS; require does not', async () => {
    const plain = new URL(adminUrl());
    plain.searchParams.delete('sslmode');
    expect((await whoAmI(plain.toString())).ssl).toBe(false);
    plain.searchParams.set('sslmode', 'require');
    expect(await failure(plain.toString())).toMatch(/does not support SSL/);
  });

  it('require encrypts without checking the certificate; verify-ca and verify-full check it against sslrootcert', async () => {
    const base = `postgresql://app:${ENC}@127.0.0.1:${port}/rag`;
    expect((await whoAmI(`${base}?sslmode=require`)).ssl).toBe(true);
    expect((await whoAmI(`${base}?sslmode=verify-ca&sslrootcert=${certs.ca}`)).ssl).toBe(true);
    expect((await whoAmI(`${base}?sslmode=verify-full&sslrootcert=${certs.ca}`)).ssl).toBe(true);
    expect((await whoAmI(`postgresql://app:${ENC}@localhost:${port}/rag?sslmode=verify-full&sslrootcert=${certs.ca}`)).ssl).toBe(true);
    expect((await whoAmI(`host=127.0.0.1 port=${port} user=app dbname=rag sslmode=verify-full`, { PGSSLROOTCERT: certs.ca, PGPASSWORD: PASSWORD })).ssl).toBe(true);
  });

  it('verify-full against another CA is refused with one clear line; require with that CA as root (= verify-ca) too', async () => {
    for (const mode of ['verify-full', 'verify-ca', 'require']) {
      const message = await failure(`postgresql://app:${ENC}@127.0.0.1:${port}/rag?sslmode=${mode}&sslrootcert=${certs.otherCa}`);
      expect(message, mode).toMatch(/certificate/i);
      expect(message).not.toContain('\n');
      expect(message).not.toContain('Leak');
    }
  });

  it('verify-full refuses a certificate for another host name; verify-ca accepts it', async () => {
    // hostaddr connects to 127.0.0.1 while host names the server to check: "db.invalid" is not in the certificate.
    const mismatch = `host=db.invalid hostaddr=127.0.0.1 port=${port} user=app password='${PASSWORD.replace(/'/g, "\\'")}' dbname=rag sslrootcert=${certs.ca}`;
    expect(await failure(`${mismatch} sslmode=verify-full`)).toMatch(/db\.invalid|altnames|host ?name/i);
    expect((await whoAmI(`${mismatch} sslmode=verify-ca`)).ssl).toBe(true);
  });
});
