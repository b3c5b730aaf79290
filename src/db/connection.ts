import { readFileSync } from 'node:fs';
import pg from 'pg';
import { ConfigError } from '../errors.js';
import { redactSecrets } from '../log.js';

/** Where the connection settings came from, in the order they are looked for. */
export type ConnectionSource = '--database-url' | 'DATABASE_URL' | 'DATABASE_URL_FILE' | 'config file' | 'POSTGRES_*' | 'PG*';

export interface ConnectionSettings {
  /** Settings for pg.Client / pg.Pool; empty fields fall through to libpq's PG* variables inside pg. */
  client: pg.ClientConfig;
  source: ConnectionSource;
  /** user@host:port/database, never the password: safe for logs and error messages. */
  description: string;
}

type Env = Record<string, string | undefined>;

/** Every environment variable resolveConnection reads; the packaging tests check deployments against it. */
export const CONNECTION_ENV_VARIABLES = [
  'DATABASE_URL',
  'DATABASE_URL_FILE',
  'POSTGRES_HOST',
  'POSTGRES_PORT',
  'POSTGRES_DB',
  'POSTGRES_USER',
  'POSTGRES_PASSWORD',
  'POSTGRES_PASSWORD_FILE',
  'PGHOST',
  'PGPORT',
  'PGUSER',
  'PGPASSWORD',
  'PGDATABASE',
] as const;

/**
 * Resolves the connection: --database-url, then DATABASE_URL (or DATABASE_URL_FILE), then the config file's database_url, then
 * POSTGRES_HOST/PORT/DB/USER/PASSWORD (or POSTGRES_PASSWORD_FILE), then libpq's PG* variables.
 */
export function resolveConnection(
  databaseUrlFlag: string | undefined,
  env: Env = process.env,
  fileUrl?: string,
): ConnectionSettings {
  if (databaseUrlFlag) return fromUrl(databaseUrlFlag, '--database-url');
  if (env.DATABASE_URL) return fromUrl(env.DATABASE_URL, 'DATABASE_URL');
  const secretUrl = readSecretFile(env, 'DATABASE_URL_FILE');
  if (secretUrl) return fromUrl(secretUrl, 'DATABASE_URL_FILE');
  if (fileUrl) return fromUrl(fileUrl, 'config file');
  if (env.POSTGRES_HOST || env.POSTGRES_DB || env.POSTGRES_USER) return fromPostgresVariables(env);
  return fromLibpqVariables(env);
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

function fromUrl(url: string, source: ConnectionSource): ConnectionSettings {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${source}: malformed connection string "${redactSecrets(url)}" (expected postgresql://user:password@host:5432/database)`);
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new ConfigError(`${source}: unsupported scheme "${parsed.protocol}" in "${redactSecrets(url)}" (expected postgresql://)`);
  }
  const port = parsed.port ? Number(parsed.port) : undefined;
  const socketHost = parsed.searchParams.get('host') ?? undefined;
  const client: pg.ClientConfig = {
    host: socketHost ?? (decodeURIComponent(parsed.hostname) || undefined),
    port,
    user: parsed.username ? decodeURIComponent(parsed.username) : undefined,
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    database: parsed.pathname.length > 1 ? decodeURIComponent(parsed.pathname.slice(1)) : undefined,
  };
  const sslmode = parsed.searchParams.get('sslmode');
  if (sslmode && sslmode !== 'disable') {
    client.ssl = sslmode === 'require' || sslmode === 'prefer' || sslmode === 'allow' ? { rejectUnauthorized: false } : true;
  }
  return withDescription(client, source);
}

function fromPostgresVariables(env: Env): ConnectionSettings {
  const port = env.POSTGRES_PORT ? Number(env.POSTGRES_PORT) : undefined;
  if (port !== undefined && (!Number.isInteger(port) || port <= 0 || port > 65535)) {
    throw new ConfigError(`POSTGRES_PORT: "${env.POSTGRES_PORT}" is not a port number`);
  }
  const client: pg.ClientConfig = {
    host: env.POSTGRES_HOST,
    port,
    database: env.POSTGRES_DB,
    user: env.POSTGRES_USER,
    password: env.POSTGRES_PASSWORD ?? readSecretFile(env, 'POSTGRES_PASSWORD_FILE'),
  };
  return withDescription(client, 'POSTGRES_*');
}

function fromLibpqVariables(env: Env): ConnectionSettings {
  // pg reads PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE itself; spelled out here only for the description.
  const client: pg.ClientConfig = {
    host: env.PGHOST,
    port: env.PGPORT ? Number(env.PGPORT) : undefined,
    user: env.PGUSER,
    database: env.PGDATABASE,
    password: env.PGPASSWORD,
  };
  return withDescription(client, 'PG*');
}

function withDescription(client: pg.ClientConfig, source: ConnectionSource): ConnectionSettings {
  const user = client.user ?? process.env.USER ?? 'postgres';
  const host = client.host ?? 'localhost';
  const port = client.port ?? 5432;
  const database = client.database ?? user;
  // pg accepts a password function; keeping it out of enumerable fields keeps it out of accidental dumps.
  const password = client.password;
  if (typeof password === 'string') {
    Object.defineProperty(client, 'password', { value: password, enumerable: false, writable: true, configurable: true });
  }
  return { client, source, description: `${user}@${host}:${port}/${database}` };
}
