import { existsSync, readFileSync } from 'node:fs';
import { connect as netConnect, isIP } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { checkServerIdentity, type ConnectionOptions } from 'node:tls';
import pg from 'pg';
import { ConfigError } from '../errors.js';
import type { ConnInfo } from './conninfo.js';
import { isAuthorizationRejected } from './errors.js';

/**
 * Database TLS with libpq's meaning of every parameter
 * (https://www.postgresql.org/docs/current/libpq-ssl.html), which neither pg nor pg-connection-string has:
 *
 * | sslmode     | TLS                              | certificate checked                  |
 * | disable     | never                            | -                                    |
 * | allow       | only when the server demands it  | only with a root certificate          |
 * | prefer      | when the server offers it (default) | only with a root certificate       |
 * | require     | always                           | only with a root certificate (= verify-ca) |
 * | verify-ca   | always                           | chain against sslrootcert            |
 * | verify-full | always                           | chain and host name                  |
 *
 * pg itself treats prefer/require/verify-ca as verify-full (and refuses a server without TLS under prefer);
 * pg-connection-string reads sslmode=bogus as verify-full. Here an unknown sslmode is exit 2.
 * As in libpq, no TLS over a Unix-domain socket; the PGSSLMODE, PGSSLROOTCERT, PGSSLCERT and PGSSLKEY
 * variables and the ~/.postgresql/ default files apply when the string does not say.
 */
export const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface TlsSettings {
  mode: SslMode;
  /** TLS options for pg when TLS is used (undefined for disable and Unix sockets). */
  options?: ConnectionOptions;
  /** Files in libpq's terms, for client programs such as pg_dump (PGSSLROOTCERT, ...). */
  files: { sslrootcert?: string; sslcert?: string; sslkey?: string };
}

type Env = Record<string, string | undefined>;

/**
 * `clientCertDefaults: false` leaves out ~/.postgresql/postgresql.crt and .key when the string names no
 * client certificate: a /probe target is a host a scraper names, and the exporter's own certificate is a
 * credential it must not present there (root.crt still applies: it only makes TLS stricter).
 */
export function resolveTls(info: ConnInfo, env: Env, where: string, home = homedir(), clientCertDefaults = true): TlsSettings {
  const raw = info.sslmode ?? env.PGSSLMODE ?? 'prefer';
  if (!(SSL_MODES as readonly string[]).includes(raw)) {
    throw new ConfigError(`${where}: invalid sslmode "${raw.slice(0, 40)}" (libpq accepts ${SSL_MODES.join(', ')})`);
  }
  const mode = raw as SslMode;
  const host = info.host ?? env.PGHOST;
  if (mode === 'disable' || (host?.startsWith('/') && !info.hostaddr)) return { mode, files: {} };

  const dotDir = join(home, '.postgresql');
  const explicitRoot = info.sslrootcert ?? env.PGSSLROOTCERT;
  const rootcert = explicitRoot ?? (existsSync(join(dotDir, 'root.crt')) ? join(dotDir, 'root.crt') : undefined);
  const explicitCert = info.sslcert ?? env.PGSSLCERT;
  const sslcert = explicitCert ?? (clientCertDefaults && existsSync(join(dotDir, 'postgresql.crt')) ? join(dotDir, 'postgresql.crt') : undefined);
  const explicitKey = info.sslkey ?? env.PGSSLKEY;
  const sslkey = explicitKey ?? (sslcert && (clientCertDefaults || explicitCert) && existsSync(join(dotDir, 'postgresql.key')) ? join(dotDir, 'postgresql.key') : undefined);

  if (mode.startsWith('verify') && !rootcert) {
    throw new ConfigError(
      `${where}: sslmode=${mode} needs a root certificate: set sslrootcert to a CA file (or "system" for the system's CAs); ${join(dotDir, 'root.crt')} does not exist`,
    );
  }
  if (sslcert && !sslkey) throw new ConfigError(`${where}: sslcert is set but sslkey is not (a client certificate needs its private key)`);

  const options: ConnectionOptions = {};
  // libpq checks the chain whenever it has a root certificate, in every mode that uses TLS.
  options.rejectUnauthorized = rootcert !== undefined;
  if (rootcert && rootcert !== 'system') options.ca = readPem(rootcert, 'sslrootcert', where);
  if (sslcert) options.cert = readPem(sslcert, 'sslcert', where);
  if (sslkey) options.key = readPem(sslkey, 'sslkey', where);
  if (info.sslpassword !== undefined) options.passphrase = info.sslpassword;
  const identity = info.host ?? info.hostaddr ?? env.PGHOST ?? 'localhost';
  if (mode === 'verify-full') {
    // pg sends no servername for an IP address, and tls then checks against "localhost": check the host itself.
    options.checkServerIdentity = (_servername, cert) => checkServerIdentity(identity, cert);
    if (isIP(identity) === 0) options.servername = identity;
  } else {
    options.checkServerIdentity = () => undefined;
  }
  return { mode, options, files: { sslrootcert: rootcert, sslcert, sslkey } };
}

function readPem(path: string, key: string, where: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${where}: ${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/** The first byte a server answers an SSLRequest with: 'S' (will do TLS) or 'N'. */
function serverOffersTls(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host, port });
    socket.setTimeout(timeoutMs || 10_000, () => socket.destroy(new Error('timeout expired')));
    socket.once('connect', () => socket.write(Buffer.from([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])));
    socket.once('data', (answer: Buffer) => {
      socket.destroy();
      resolve(answer[0] === 0x53);
    });
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('Connection terminated unexpectedly')));
  });
}

type ConnectCallback = ((err: Error) => void) | ((err: null, c: pg.Client) => void);

/**
 * The pg.Client class for these settings. prefer and allow decide per connection whether to use TLS,
 * as libpq does: prefer asks the server (SSLRequest) and goes plain when it says no; allow connects
 * plainly and uses TLS when pg_hba.conf refuses an unencrypted connection. The answer is kept until a
 * connection fails, so the server is asked once, not before every connection.
 */
export function clientClass(tls: TlsSettings): typeof pg.Client {
  if ((tls.mode !== 'prefer' && tls.mode !== 'allow') || !tls.options) return pg.Client;
  const options = tls.options!;
  let decided: ConnectionOptions | false | undefined;
  const decide = async (client: pg.Client): Promise<ConnectionOptions | false> => {
    if (decided !== undefined) return decided;
    const config = client as unknown as { host: string; port: number; connectionParameters: pg.ClientConfig; _connectionTimeoutMillis?: number };
    if (tls.mode === 'prefer') {
      // A pool's connect timeout reaches the client as _connectionTimeoutMillis (pg.Client's own field), not
      // in connectionParameters: without it a server that never answers held the question for 10 s.
      const timeoutMs = config.connectionParameters.connectionTimeoutMillis || config._connectionTimeoutMillis || 10_000;
      decided = (await serverOffersTls(config.host, config.port, timeoutMs)) ? options : false;
      return decided;
    }
    const probe = new pg.Client({ ...config.connectionParameters, password: client.password, ssl: false });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      decided = false;
    } catch (err) {
      // 28000 with "no encryption": pg_hba.conf has only hostssl lines for this client.
      if (!isAuthorizationRejected(err)) throw err;
      decided = options;
    } finally {
      await probe.end().catch(() => undefined);
    }
    return decided;
  };
  class NegotiatingClient extends pg.Client {
    override connect(): Promise<pg.Client>;
    override connect(callback: ConnectCallback): void;
    override connect(callback?: ConnectCallback): Promise<pg.Client> | void {
      const ready = decide(this).then((ssl) => {
        // Both are read when the socket opens; set before it does.
        const self = this as unknown as { ssl: ConnectionOptions | false; connection: { ssl: ConnectionOptions | false } };
        self.ssl = ssl;
        self.connection.ssl = ssl;
      });
      const forget = (err: unknown) => {
        decided = undefined;
        throw err;
      };
      if (!callback) return ready.then(() => super.connect()).catch(forget);
      ready.then(
        () =>
          super.connect(((err: Error | null) => {
            if (err) decided = undefined;
            (callback as (err: Error | null, c?: pg.Client) => void)(err, this);
          }) as (err: Error) => void),
        (err: Error) => {
          decided = undefined;
          (callback as (err: Error) => void)(err);
        },
      );
    }
  }
  return NegotiatingClient as unknown as typeof pg.Client;
}
