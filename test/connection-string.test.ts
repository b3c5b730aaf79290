import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConnectionString } from '../src/db/conninfo.js';
import { resolveConnection } from '../src/db/connection.js';
import { resolveTls } from '../src/db/tls.js';
import { redactSecrets } from '../src/log.js';

/**
 * libpq's connection strings read as libpq reads them, without a server (connection-tls.test.ts connects
 * every form to a real PostgreSQL with TLS and passwords). The password is never in a message.
 */
const PASSWORD = 'p@:/%#sLeak s';
const ENCODED = encodeURIComponent(PASSWORD); // p%40%3A%2F%25%23sLeak%20s

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected an error');
}

describe('URL form (pg-connection-string, fixed up to libpq)', () => {
  it('reads both schemes, a percent-encoded password with @:/%# and space, and the database', () => {
    for (const scheme of ['postgres', 'postgresql']) {
      expect(parseConnectionString(`${scheme}://app:${ENCODED}@db.example:6543/rag`, 'test')).toEqual({
        host: 'db.example',
        port: '6543',
        user: 'app',
        password: PASSWORD,
        dbname: 'rag',
      });
    }
  });

  it('keeps a valid %2F in a password that also has a raw space (pg-connection-string alone turns it into a literal "%2F")', () => {
    expect(parseConnectionString('postgresql://app:a%2Fb c@h/rag', 'test').password).toBe('a/b c');
  });

  it('reads a raw # as part of the password, as libpq (which has no URL fragment) does', () => {
    expect(parseConnectionString('postgresql://special:Leak#pw@host/rag', 'test')).toMatchObject({ user: 'special', password: 'Leak#pw', host: 'host', dbname: 'rag' });
  });

  it('reads IPv6 hosts, percent-encoded and query socket directories, and libpq keywords in the query', () => {
    expect(parseConnectionString('postgresql://u@[::1]:5433/rag?sslmode=disable', 'test')).toMatchObject({ host: '::1', port: '5433', sslmode: 'disable' });
    expect(parseConnectionString('postgresql://%2Fvar%2Frun%2Fpostgresql/rag', 'test')).toMatchObject({ host: '/var/run/postgresql', dbname: 'rag' });
    expect(parseConnectionString('postgresql:///rag?host=/tmp/sock&port=5999&user=u', 'test')).toMatchObject({ host: '/tmp/sock', port: '5999', user: 'u', dbname: 'rag' });
    expect(parseConnectionString('postgresql://h/rag?sslmode=verify-full&sslrootcert=/ca.pem&sslpassword=k%20ey', 'test')).toMatchObject({
      sslmode: 'verify-full',
      sslrootcert: '/ca.pem',
      sslpassword: 'k ey',
    });
  });

  it('refuses %zz (libpq: invalid percent-encoded token) with one line that does not quote the password', () => {
    const message = errorOf(() => parseConnectionString('postgresql://app:s3cr%zzLeak@h/rag', 'DATABASE_URL'));
    expect(message).toMatch(/^DATABASE_URL: malformed connection string \(URL\): invalid percent-encoding/);
    expect(message).not.toContain('Leak');
    expect(message).not.toContain('\n');
  });

  it('refuses a URL whose password breaks the host part, naming the fix and quoting nothing of it', () => {
    const message = errorOf(() => parseConnectionString('postgresql://special:Le/ak@host/rag', '--database-url'));
    expect(message).toMatch(/^--database-url: malformed connection string \(URL; .*percent-encoded/);
    expect(message).not.toMatch(/Le|ak@/);
    const port = errorOf(() => parseConnectionString('postgresql://special:Leak@host:12ab/rag', 'DATA_SOURCE_NAME'));
    expect(port).toMatch(/^DATA_SOURCE_NAME: malformed connection string \(URL/);
    expect(port).not.toContain('Leak');
  });

  it('refuses unknown query parameters', () => {
    expect(errorOf(() => parseConnectionString('postgresql://h/rag?sslmod=require', 'x'))).toMatch(/unknown connection option "?.*no libpq keyword/);
    expect(errorOf(() => parseConnectionString('postgresql://h/rag?target_session_attrs=any', 'x'))).toMatch(/"target_session_attrs" is not supported/);
  });
});

describe('key=value form (libpq conninfo_parse)', () => {
  it('reads keywords, spaces around =, quoted values with escapes', () => {
    expect(parseConnectionString(`host=127.0.0.1 port = 5433 user=app password='p@:/%#s\\'Leak s' dbname=rag sslmode=disable`, 'x')).toEqual({
      host: '127.0.0.1',
      port: '5433',
      user: 'app',
      password: "p@:/%#s'Leak s",
      dbname: 'rag',
      sslmode: 'disable',
    });
    expect(parseConnectionString('host=/var/run/postgresql dbname=rag password=a\\ b', 'x')).toEqual({ host: '/var/run/postgresql', dbname: 'rag', password: 'a b' });
  });

  it('refuses what libpq refuses, naming the problem without quoting a word that may be secret', () => {
    const missing = errorOf(() => parseConnectionString('host=h password=p@ss Leaky dbname=rag', 'DATA_SOURCE_NAME'));
    expect(missing).toMatch(/^DATA_SOURCE_NAME: malformed connection string: missing "=" after a word that is no libpq keyword/);
    expect(missing).not.toContain('Leaky');
    const quote = errorOf(() => parseConnectionString("host=h password='Leak s", 'x'));
    expect(quote).toMatch(/unterminated quoted value of "password"/);
    expect(quote).not.toContain('Leak');
    expect(errorOf(() => parseConnectionString('hots=h', 'x'))).toMatch(/unknown connection option a word that is no libpq keyword/);
  });
});

describe('sources and their precedence', () => {
  const dir = mkdtempSync(join(tmpdir(), 'conn-test-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it('flag > DATABASE_URL > DATABASE_URL_FILE > DATA_SOURCE_NAME > DATA_SOURCE_NAME_FILE > DATA_SOURCE_URI > config file > POSTGRES_* > PG*', () => {
    const env: Record<string, string> = {
      DATABASE_URL: 'postgresql://a@h1/db1?sslmode=disable',
      DATABASE_URL_FILE: file('url', 'postgresql://a@h2/db2?sslmode=disable\n'),
      DATA_SOURCE_NAME: 'host=h3 dbname=db3 sslmode=disable',
      DATA_SOURCE_NAME_FILE: file('dsn', 'host=h4 dbname=db4 sslmode=disable'),
      DATA_SOURCE_URI: 'h5:5433/db5?sslmode=disable',
      DATA_SOURCE_USER: 'u5',
      POSTGRES_HOST: 'h7',
      PGHOST: 'h8',
      PGSSLMODE: 'disable',
    };
    // Each source, the host it names, and the variable that has to go for the next one to be used.
    const order: [string, string, string | undefined][] = [
      ['--database-url', 'h0', undefined],
      ['DATABASE_URL', 'h1', 'DATABASE_URL'],
      ['DATABASE_URL_FILE', 'h2', 'DATABASE_URL_FILE'],
      ['DATA_SOURCE_NAME', 'h3', 'DATA_SOURCE_NAME'],
      ['DATA_SOURCE_NAME_FILE', 'h4', 'DATA_SOURCE_NAME_FILE'],
      ['DATA_SOURCE_URI', 'h5', 'DATA_SOURCE_URI'],
      ['config file', 'h6', undefined],
      ['POSTGRES_*', 'h7', 'POSTGRES_HOST'],
      ['PG*', 'h8', undefined],
    ];
    const current = { ...env };
    for (const [i, [source, host, variable]] of order.entries()) {
      const flag = i === 0 ? 'postgresql://a@h0/db0?sslmode=disable' : undefined;
      const fileUrl = i <= 6 ? 'host=h6 sslmode=disable' : undefined;
      const settings = resolveConnection(flag, current, fileUrl);
      expect({ source: settings.source, host: settings.client.host }).toEqual({ source, host });
      if (variable) delete current[variable];
    }
  });

  it('DATA_SOURCE_URI takes user and password from DATA_SOURCE_USER/PASS, the _FILE variants winning (as postgres_exporter)', () => {
    const settings = resolveConnection(undefined, {
      DATA_SOURCE_URI: 'db.example:6543/rag?sslmode=disable',
      DATA_SOURCE_USER: 'ignored',
      DATA_SOURCE_USER_FILE: file('user', 'exporter\n'),
      DATA_SOURCE_PASS: PASSWORD,
    });
    expect({ ...settings.client, password: settings.client.password }).toMatchObject({ host: 'db.example', port: 6543, user: 'exporter', database: 'rag', password: PASSWORD });
    expect(settings.description).toBe('exporter@db.example:6543/rag');
    expect(JSON.stringify(settings)).not.toContain('Leak');
  });

  it('PG* variables fill what the string leaves out, as in libpq', () => {
    const settings = resolveConnection('host=h dbname=rag', { PGPORT: '6000', PGUSER: 'pguser', PGSSLMODE: 'disable' });
    expect(settings.client).toMatchObject({ host: 'h', port: 6000, user: 'pguser', database: 'rag', ssl: false });
  });

  it('redacts the parsed password from any text once it has been read, in every spelling', () => {
    resolveConnection(`postgresql://app:${encodeURIComponent('Zq9!x@y/Leak')}@h/rag?sslmode=disable`, {});
    expect(redactSecrets('error near Zq9!x@y/Leak and Zq9!x%40y%2FLeak')).toBe('error near *** and ***');
  });
});

describe('sslmode with libpq meaning (fixing up pg-connection-string, which reads bogus/prefer/require as verify-full)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tls-test-'));
  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nnot checked here\n-----END CERTIFICATE-----\n');
  const home = mkdtempSync(join(tmpdir(), 'home-'));

  it('disable: no TLS; prefer is the default; require without a root certificate does not verify', () => {
    expect(resolveTls({ sslmode: 'disable' }, {}, 'x', home)).toEqual({ mode: 'disable', files: {} });
    expect(resolveTls({}, {}, 'x', home).mode).toBe('prefer');
    expect(resolveTls({}, { PGSSLMODE: 'require' }, 'x', home).mode).toBe('require');
    for (const mode of ['allow', 'prefer', 'require']) {
      const tls = resolveTls({ sslmode: mode, host: 'h' }, {}, 'x', home);
      expect(tls.options?.rejectUnauthorized, mode).toBe(false);
    }
  });

  it('a root certificate makes every TLS mode check the chain; only verify-full checks the host name', () => {
    const require = resolveTls({ sslmode: 'require', host: 'h', sslrootcert: ca }, {}, 'x', home).options!;
    expect(require.rejectUnauthorized).toBe(true);
    expect(require.ca).toContain('BEGIN CERTIFICATE');
    expect(require.checkServerIdentity!('h', {} as never)).toBeUndefined();
    const verifyCa = resolveTls({ sslmode: 'verify-ca', host: 'h', sslrootcert: ca }, {}, 'x', home).options!;
    expect(verifyCa.checkServerIdentity!('h', {} as never)).toBeUndefined();
    const verifyFull = resolveTls({ sslmode: 'verify-full', host: 'db.example', sslrootcert: ca }, {}, 'x', home).options!;
    expect(verifyFull.servername).toBe('db.example');
    expect(verifyFull.checkServerIdentity!('db.example', { subject: { CN: 'other' }, subjectaltname: 'DNS:other' } as never)).toBeInstanceOf(Error);
  });

  it('verify-ca/verify-full without a root certificate, a bogus sslmode, and an unreadable file are exit-2 errors', () => {
    expect(errorOf(() => resolveTls({ sslmode: 'verify-full' }, {}, 'DATABASE_URL', home))).toMatch(/sslmode=verify-full needs a root certificate/);
    expect(errorOf(() => resolveConnection('postgresql://h/rag?sslmode=bogus', {}))).toMatch(/^--database-url: invalid sslmode "bogus" \(libpq accepts disable, allow, prefer, require, verify-ca, verify-full\)/);
    expect(errorOf(() => resolveTls({ sslmode: 'require', sslrootcert: join(dir, 'missing.pem') }, {}, 'x', home))).toMatch(/sslrootcert: cannot read .*missing\.pem: ENOENT/);
    expect(errorOf(() => resolveTls({ sslmode: 'require', sslcert: ca }, {}, 'x', home))).toMatch(/sslcert is set but sslkey is not/);
  });

  it('sslrootcert=system uses the system CAs; no TLS over a Unix-domain socket', () => {
    const system = resolveTls({ sslmode: 'verify-full', host: 'h', sslrootcert: 'system' }, {}, 'x', home);
    expect(system.options?.rejectUnauthorized).toBe(true);
    expect(system.options?.ca).toBeUndefined();
    expect(resolveTls({ sslmode: 'require', host: '/var/run/postgresql' }, {}, 'x', home).options).toBeUndefined();
  });
});
