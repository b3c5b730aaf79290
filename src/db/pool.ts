import pg from 'pg';
import type { Logger } from '../log.js';
import type { ConnectionSettings } from './connection.js';
import { describeDatabaseError } from './errors.js';

export interface PoolOptions {
  applicationName: string;
  max: number;
  connectTimeoutMs: number;
  /** Default statement_timeout for every session of the pool; 0 = none. */
  statementTimeoutMs?: number;
  idleTimeoutMs?: number;
}

/**
 * A pg pool whose idle-client errors are logged instead of crashing the process
 * (an 'error' event without a listener throws; see pg-pool's idle client handling).
 */
export function createPool(settings: ConnectionSettings, options: PoolOptions, log: Logger): pg.Pool {
  const pool = new pg.Pool({
    ...settings.client,
    password: settings.client.password,
    application_name: options.applicationName,
    max: options.max,
    Client: settings.Client,
    // connect_timeout in the connection string (libpq's keyword) wins over the config's default.
    connectionTimeoutMillis: settings.client.connectionTimeoutMillis ?? options.connectTimeoutMs,
    idleTimeoutMillis: options.idleTimeoutMs ?? 30_000,
    statement_timeout: options.statementTimeoutMs || undefined,
    allowExitOnIdle: false,
  });
  pool.on('error', (err) => {
    log.warn({ target: settings.description, error: describeDatabaseError(err) }, 'idle database connection failed');
  });
  return pool;
}

/** Opens one connection, runs fn, and always closes it. */
export async function withClient<T>(
  settings: ConnectionSettings,
  applicationName: string,
  fn: (client: pg.Client) => Promise<T>,
  connectTimeoutMs = 10_000,
): Promise<T> {
  const client = new settings.Client({
    ...settings.client,
    password: settings.client.password,
    application_name: applicationName,
    connectionTimeoutMillis: settings.client.connectionTimeoutMillis ?? connectTimeoutMs,
  });
  client.on('error', () => {
    /* reported by the failing query; an unhandled 'error' event would crash the process */
  });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}
