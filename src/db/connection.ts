import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import pg from 'pg';
import { passwordFromFile } from './passfile.js';
import { ConfigError } from '../errors.js';
import { registerSecret } from '../log.js';
import { parseConnectionString, type ConnInfo } from './conninfo.js';
import { clientClass, resolveTls, type TlsSettings } from './tls.js';

/** Where the connection settings came from, in the order they are looked for. */
export type ConnectionSource =
  | '--database-url'
  | 'DATABASE_URL'
  | 'DATABASE_URL_FILE'
  | 'DATA_SOURCE_NAME'
  | 'DATA_SOURCE_NAME_FILE'
  | 'DATA_SOURCE_URI'
  | 'config file'
  | 'POSTGRES_*'
  | 'PG*'
  | 'probe target';

export interface ConnectionSettings {
  /** Settings for pg.Client / pg.Pool (TLS resolved with libpq's meaning); the password is not enumerable. */
  client: pg.ClientConfig;
  /** The pg.Client class to connect with: sslmode prefer and allow choose TLS per connection. */
  Client: typeof pg.Client;
  tls: TlsSettings;
  source: ConnectionSource;
  /** user@host:port/database, never the password: safe for logs and error messages. */
  description: string;
}

type Env = Record<string, string | undefined>;

/** Every environment variable resolveConnection reads; the packaging tests check deployments against it. */
export const CONNECTION_ENV_VARIABLES = [
  'DATABASE_URL',
  'DATABASE_URL_FILE',
  'DATA_SOURCE_NAME',
  'DATA_SOURCE_NAME_FILE',
  'DATA_SOURCE_URI',
  'DATA_SOURCE_URI_FILE',
  'DATA_SOURCE_USER',
  'DATA_SOURCE_USER_FILE',
  'DATA_SOURCE_PASS',
  'DATA_SOURCE_PASS_FILE',
  'POSTGRES_HOST',
  'POSTGRES_PORT',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'POSTGRES_PASSWORD',
  'POSTGRES_PASSWORD_FILE',
  'PGHOST',
  'PGHOSTADDR',
  'PGPORT',
  'PGUSER',
  'PGPASSWORD',
  'PGDATABASE',
  'PGSSLMODE',
  'PGSSLROOTCERT',
  'PGSSLCERT',
  'PGSSLKEY',
  'PGCONNECT_TIMEOUT',
  'PGOPTIONS',
] as const;

/**
 * Resolves the connection; the first of these that is set wins (README, "Connecting"):
 * 1. --database-url; 2. DATABASE_URL, else DATABASE_URL_FILE; 3. DATA_SOURCE_NAME, else DATA_SOURCE_NAME_FILE
 * (postgres_exporter's variable); 4. DATA_SOURCE_URI (or _FILE) with DATA_SOURCE_USER / DATA_SOURCE_PASS
 * (a _FILE variant wins over the plain one, as in postgres_exporter); 5. database_url in the config file;
 * 6. POSTGRES_HOST/PORT/DB/USER/PASSWORD (or POSTGRES_PASSWORD_FILE); 7. libpq's PG* variables.
 * Each string may be a postgresql:// URL or a libpq key=value string; PG* variables fill what it leaves out.
 */
export function resolveConnection(
  databaseUrlFlag: string | undefined,
  env: Env = process.env,
  fileUrl?: string,
  fileWhere = 'config file database_url',
): ConnectionSettings {
  if (databaseUrlFlag) return fromString(databaseUrlFlag, '--database-url', '--database-url', env);
  if (env.DATABASE_URL) return fromString(env.DATABASE_URL, 'DATABASE_URL', 'DATABASE_URL', env);
  const secretUrl = readSecretFile(env, 'DATABASE_URL_FILE');
  if (secretUrl) return fromString(secretUrl, 'DATABASE_URL_FILE', `DATABASE_URL_FILE (${env.DATABASE_URL_FILE})`, env);
  if (env.DATA_SOURCE_NAME) return fromString(env.DATA_SOURCE_NAME, 'DATA_SOURCE_NAME', 'DATA_SOURCE_NAME', env);
  const dsnFile = readSecretFile(env, 'DATA_SOURCE_NAME_FILE');
  if (dsnFile) return fromString(dsnFile, 'DATA_SOURCE_NAME_FILE', `DATA_SOURCE_NAME_FILE (${env.DATA_SOURCE_NAME_FILE})`, env);
  const uri = readSecretFile(env, 'DATA_SOURCE_URI_FILE') ?? env.DATA_SOURCE_URI;
  if (uri) return fromDataSourceUri(uri, env);
  if (fileUrl) return fromString(fileUrl, 'config file', fileWhere, env);
  if (env.POSTGRES_HOST || env.POSTGRES_DB || env.POSTGRES_USER) return fromPostgresVariables(env);
  return settings({}, 'PG*', 'PG* variables', env);
}

function readSecretFile(env: Env, variable: string): string | undefined {
  const path = env[variable];
  if (!path) return undefined;
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`${variable}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

function fromString(text: string, source: ConnectionSource, where: string, env: Env): ConnectionSettings {
  return settings(parseConnectionString(text, where), source, where, env);
}

/** postgres_exporter builds postgresql://USER:PASS@ + DATA_SOURCE_URI; the URI itself holds no credentials. */
function fromDataSourceUri(uri: string, env: Env): ConnectionSettings {
  const where = env.DATA_SOURCE_URI_FILE ? `DATA_SOURCE_URI_FILE (${env.DATA_SOURCE_URI_FILE})` : 'DATA_SOURCE_URI';
  const info = parseConnectionString(/^postgres(ql)?:\/\//i.test(uri) ? uri : `postgresql://${uri}`, where);
  const user = readSecretFile(env, 'DATA_SOURCE_USER_FILE') ?? env.DATA_SOURCE_USER;
  const password = readSecretFile(env, 'DATA_SOURCE_PASS_FILE') ?? env.DATA_SOURCE_PASS;
  if (user) info.user = user;
  if (password) info.password = password;
  return settings(info, 'DATA_SOURCE_URI', where, env);
}

function fromPostgresVariables(env: Env): ConnectionSettings {
  const info: ConnInfo = {
    host: env.POSTGRES_HOST || undefined,
    port: env.POSTGRES_PORT || undefined,
    dbname: env.POSTGRES_DB || undefined,
    user: env.POSTGRES_USER || undefined,
    password: env.POSTGRES_PASSWORD ?? readSecretFile(env, 'POSTGRES_PASSWORD_FILE'),
  };
  return settings(info, 'POSTGRES_*', 'POSTGRES_* variables', env);
}

/**
 * A /probe target's settings from its libpq keywords: no environment (the exporter's own PGPASSWORD must
 * never be offered to a host that a scraper names), and its password is not registered for redaction
 * (a flood of distinct targets must not grow that list; no log record carries a target's password).
 */
export function probeTargetSettings(info: ConnInfo, where: string): ConnectionSettings {
  if (!info.host && !info.hostaddr) throw new ConfigError(`${where}: no host (give host:port[/dbname], a URL or host=...)`);
  const result = settings(info, 'probe target', where, {});
  // pg itself fills whatever the config leaves unset from the process's PG* variables and ~/.pgpass: every
  // field is set here, libpq's defaults included, and the password always (a function counts as given to
  // pg, so neither PGPASSWORD nor a wildcard pgpass line reaches a host a scraper names).
  const client = result.client;
  client.port ??= 5432;
  client.user ??= userInfo().username;
  client.database ??= client.user;
  // pg treats an empty string as unset, so "no password" is a function answering "".
  if (!info.password) Object.defineProperty(client, 'password', { value: () => '', enumerable: false, writable: true, configurable: true });
  return result;
}

/** libpq's keywords -> pg's settings; what the string leaves out comes from libpq's PG* variables, as in libpq. */
function settings(info: ConnInfo, source: ConnectionSource, where: string, env: Env): ConnectionSettings {
  // A /probe target is a host a scraper names: its password is not registered for redaction (a flood of
  // distinct targets must not grow that list) and the exporter's own default client certificate is not offered.
  const ownConnection = source !== 'probe target';
  const host = info.hostaddr ?? info.host ?? env.PGHOSTADDR ?? env.PGHOST;
  if (host?.includes(',')) throw new ConfigError(`${where}: several hosts are not supported; give one host (one exporter per server)`);
  const portText = info.port ?? env.PGPORT;
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65535)) {
    throw new ConfigError(`${where}: port "${portText!.slice(0, 12)}" is not a port number`);
  }
  const timeoutText = info.connect_timeout ?? env.PGCONNECT_TIMEOUT;
  if (timeoutText !== undefined && !/^\d+$/.test(timeoutText)) throw new ConfigError(`${where}: connect_timeout "${timeoutText.slice(0, 12)}" is not a number of seconds`);
  const password = info.password ?? env.PGPASSWORD;
  if (password && ownConnection) registerSecret(password);
  if (info.sslpassword && ownConnection) registerSecret(info.sslpassword);
  const tls = resolveTls({ ...info, host: info.host ?? env.PGHOST, hostaddr: info.hostaddr ?? env.PGHOSTADDR }, env, where, undefined, ownConnection);
  const client: pg.ClientConfig = {
    host,
    port,
    user: info.user ?? env.PGUSER,
    database: info.dbname ?? env.PGDATABASE,
    ssl: tls.options ?? false,
  };
  if (timeoutText !== undefined && Number(timeoutText) > 0) client.connectionTimeoutMillis = Math.max(2, Number(timeoutText)) * 1000;
  const options = info.options ?? env.PGOPTIONS;
  if (options) client.options = options;
  const user = client.user ?? process.env.USER ?? 'postgres';
  // passfile= as in libpq: only when no password is given (pg itself reads PGPASSFILE and ~/.pgpass).
  const fromFile = password === undefined && info.passfile ? passwordFromFile(info.passfile) : undefined;
  // pg accepts a password function; keeping it out of enumerable fields keeps it out of accidental dumps.
  const secret = password ?? fromFile;
  if (secret !== undefined) Object.defineProperty(client, 'password', { value: secret, enumerable: false, writable: true, configurable: true });
  const description = `${user}@${host ?? 'localhost'}:${port ?? 5432}/${client.database ?? user}`;
  return { client, Client: clientClass(tls), tls, source, description };
}

/** The same server, role, password and TLS, on another database (auto-discovery's per-database pools). */
export function onDatabase(settings: ConnectionSettings, database: string): ConnectionSettings {
  const client: pg.ClientConfig = { ...settings.client, database };
  // The spread leaves out the non-enumerable password: carried over the same way.
  if (settings.client.password !== undefined) Object.defineProperty(client, 'password', { value: settings.client.password, enumerable: false, writable: true, configurable: true });
  const description = settings.description.replace(/\/[^/]*$/, `/${database}`);
  return { ...settings, client, description };
}
