import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from './config/schema.js';
import type { ConnectionSettings } from './db/connection.js';
import { createPool } from './db/pool.js';
import { mountJobsRoute } from './http/jobs-route.js';
import { startHttpServer, type HttpOptions, type RunningHttpServer } from './http/server.js';
import type { WebConfig } from './http/web-config.js';
import type { Logger } from './log.js';
import { CONTENT_TYPE, createRegistry, exposition } from './metrics/registry.js';
import { ScrapeCache } from './metrics/scrape-cache.js';
import { registerSelfMetrics } from './metrics/self-metrics.js';
import { JobService } from './jobs/service.js';
import { Poller } from './poller/poller.js';
import { collectorSet, type CollectorSet } from './commands/collector-set.js';
import { Reloader, restartOnlyChanges } from './commands/reload.js';
import { mountReloadRoute } from './http/reload-route.js';
import { registerReloadMetrics } from './metrics/reload-metrics.js';
import { onReloadSignal } from './signals.js';

/** The running exporter: pool, poller, registry and HTTP server, wired once for serve and demo. */
export interface RunningExporter {
  url: string;
  address: string;
  registry: Registry;
  pool: pg.Pool;
  poller: Poller;
  stop(): Promise<void>;
}

export interface ExporterOptions {
  config: Config;
  connection: ConnectionSettings;
  log: Logger;
  webConfig?: WebConfig;
  /** Extra routes and their teardown. */
  extraRoutes?: HttpOptions['extraRoutes'];
  /** Run the maintenance scheduler (and, with a token, POST /jobs/<name>/run): serve without --no-jobs and jobs.enabled. */
  jobs?: boolean;
  /** Re-reads and validates the config (flags, environment, file): with it, SIGHUP and POST /-/reload reload. */
  readConfig?: () => Config;
}

export const EXPORTER_APPLICATION_NAME = 'pgvector-exporter';

export async function startExporter(options: ExporterOptions): Promise<RunningExporter> {
  const { config, connection, log } = options;
  const pool = createPool(
    connection,
    { applicationName: EXPORTER_APPLICATION_NAME, max: config.database.pool_max, connectTimeoutMs: config.database.connect_timeout },
    log,
  );
  // pg_up's own connection: a pool whose every connection waits on a lock must not read as "server down".
  const ownPool = createPool(
    connection,
    { applicationName: `${EXPORTER_APPLICATION_NAME} pg_up`, max: 1, connectTimeoutMs: config.database.connect_timeout },
    log,
  );
  const registry = createRegistry();
  // Job metric families are always registered (documented, stable); series only for scheduled jobs.
  const jobs = new JobService({ config, connection, log, registry });
  const jobsToken = options.jobs ? config.jobs.api_token : undefined;
  const reloadMetrics = registerReloadMetrics(registry);
  let collectors: CollectorSet;
  try {
    collectors = collectorSet(config, registry);
  } catch (err) {
    await Promise.all([pool.end(), ownPool.end()]);
    throw err;
  }
  const poller = new Poller({
    collectors: collectors.collectors,
    schedule: collectors.schedule,
    fingerprint: collectors.fingerprint,
    pool,
    ownPool,
    log,
    observer: registerSelfMetrics(registry),
    maxBackoffMs: config.database.reconnect_max_backoff,
  });
  let running = config;
  const reloader = new Reloader({
    log,
    observer: reloadMetrics,
    prepare: () => {
      const next = options.readConfig!();
      const nextCollectors = collectorSet(next, registry);
      return () => {
        const summary = poller.reconcile(nextCollectors.collectors, nextCollectors.schedule, nextCollectors.fingerprint);
        const restartOnly = restartOnlyChanges(running, next);
        running = next;
        log.info({ ...summary, ...(restartOnly.length ? { needsRestart: restartOnly } : {}) }, 'config reloaded');
      };
    },
  });
  const reloadToken = options.readConfig ? config.jobs.api_token : undefined;
  const stopReloadSignal = options.readConfig ? onReloadSignal(() => void reloader.reload()) : () => undefined;
  const scrapes = new ScrapeCache(() => exposition(registry, () => poller.render()));
  let http: RunningHttpServer;
  try {
    http = await startHttpServer({
      listenAddress: config.web.listen_address,
      telemetryPath: config.web.telemetry_path,
      metrics: () => scrapes.body(),
      contentType: CONTENT_TYPE,
      ready: () => poller.ready(),
      webConfig: options.webConfig,
      probesWithoutAuth: config.web.probes_without_auth,
      log,
      extraRoutes: options.extraRoutes,
      selfAuthenticatedRoutes: (app) => {
        if (jobsToken) mountJobsRoute(app, jobs.runner, jobsToken, log);
        if (reloadToken) mountReloadRoute(app, () => reloader.reload(), reloadToken, log);
      },
    });
  } catch (err) {
    stopReloadSignal();
    await jobs.stop();
    await Promise.all([pool.end(), ownPool.end()]);
    throw err;
  }
  poller.start();
  if (options.jobs) await jobs.start();
  log.info({ address: http.address, target: connection.description }, 'exporter listening');
  return {
    url: http.url,
    address: http.address,
    registry,
    pool,
    poller,
    async stop() {
      stopReloadSignal();
      await http.close();
      // A running job gets a short grace, then is cancelled; the poller stops meanwhile.
      await Promise.all([jobs.stop(), poller.stop()]);
      await Promise.all([pool.end(), ownPool.end()]).catch(() => undefined);
    },
  };
}

