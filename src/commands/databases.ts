import type pg from 'pg';
import type { Config } from '../config/schema.js';
import { ConnectionBudget, limitPool, sessionTerminator } from '../db/connection-budget.js';
import { onDatabase, type ConnectionSettings } from '../db/connection.js';
import { createPool } from '../db/pool.js';
import type { Logger } from '../log.js';
import type { SelfMetrics } from '../metrics/self-metrics.js';
import { WatchedDatabases } from '../poller/watched-databases.js';
import { autoDiscoverOptions, collectorSchedules } from './assembly.js';
import type { CollectorSet } from './collector-set.js';

/**
 * With --auto-discover-databases, the per-database side of serve: one pool of one connection per watched
 * database, all under one ConnectionBudget (auto_discover.max_connections), each with a poller of the
 * database-scoped collectors. Undefined when auto-discovery is off: serve is then exactly as before.
 */
export function watchedDatabases(options: {
  config: Config;
  connection: ConnectionSettings;
  primary: pg.Pool;
  /** A fresh set of the database-scoped collectors of the loaded config (no file read). */
  collectors: () => CollectorSet;
  selfMetrics: SelfMetrics;
  log: Logger;
}): WatchedDatabases | undefined {
  const { config, connection, log } = options;
  const discovery = autoDiscoverOptions(config);
  if (!discovery) return undefined;
  const budget = new ConnectionBudget(discovery.maxConnections);
  // Under the cap a poll waits for a share as long as the longest poll may last, not just a connect timeout.
  const waitMs = Math.max(discovery.pool.connectTimeoutMs, ...Object.values(collectorSchedules(config)).map((s) => s.timeoutMs));
  // A destroyed connection's backend is ended through the primary pool (outside the cap) before its share goes on.
  const endSession = sessionTerminator(options.primary, discovery.pool.applicationName, discovery.pool.connectTimeoutMs);
  return new WatchedDatabases({
    primary: options.primary,
    include: discovery.include,
    exclude: discovery.exclude,
    intervalMs: discovery.intervalMs,
    openPool: (datname) => limitPool(createPool(onDatabase(connection, datname), discovery.pool, log), budget, waitMs, endSession),
    collectors: options.collectors,
    observer: (datname) => options.selfMetrics.forDatabase(datname),
    log,
    maxBackoffMs: config.database.reconnect_max_backoff,
  });
}
