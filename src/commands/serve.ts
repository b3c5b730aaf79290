import type pg from 'pg';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { ConnectionSettings } from '../db/connection.js';
import { createPool } from '../db/pool.js';
import { mountJobsRoute } from '../http/jobs-route.js';
import { mountProbeRoute } from '../http/probe-route.js';
import { mountReloadRoute } from '../http/reload-route.js';
import { startHttpServer, type RunningHttpServer } from '../http/server.js';
import { loadWebConfig, type WebConfig } from '../http/web-config.js';
import { JobService } from '../jobs/service.js';
import { registerSecret, type Logger } from '../log.js';
import { CONTENT_TYPE, createRegistry, exposition } from '../metrics/registry.js';
import { registerProbeMetrics } from '../metrics/probe-metrics.js';
import { registerReloadMetrics } from '../metrics/reload-metrics.js';
import { ScrapeCache } from '../metrics/scrape-cache.js';
import { registerSelfMetrics } from '../metrics/self-metrics.js';
import { Poller } from '../poller/poller.js';
import { onReloadSignal, waitForShutdownSignal } from '../signals.js';
import { autoDiscoverOptions, exporterPoolOptions, httpSettings, pgUpPoolOptions, jobRunnerSettings, jobSchedules, probeTargetsSettings } from './assembly.js';
import { loadCollectors, type CollectorSet, type LoadedCollectors } from './collector-set.js';
import type { Command } from './command.js';
import { watchedDatabases } from './databases.js';
import { commandContext, readConfig } from './context.js';
import { ProbeTargets } from './probe-targets.js';
import { Reloader, restartOnlyChanges } from './reload.js';

/**
 * `serve`, and its composition root: the config becomes options (assembly.ts), and the pool, poller,
 * registry, job service and HTTP server are built from them here and nowhere else.
 */
export const serveCommand: Command = {
  usage: 'pgvector-exporter serve [--database-url URL] [--web.listen-address HOST:PORT] [--config FILE]',
  options: {
    'no-jobs': { type: 'boolean', help: 'do not run the maintenance scheduler (e.g. the sidecar of a read-only replica)' },
  },
  async run(args) {
    const { config, connection, log } = commandContext(args);
    // Validated before anything starts, like the config: a bad web config is exit 2, not a half-started server.
    const webConfig = config.web.config_file ? loadWebConfig(config.web.config_file) : undefined;
    const jobs = config.jobs.enabled && args.values['no-jobs'] !== true;
    // SIGHUP and POST /-/reload read the config again from the same flags, environment and file.
    const reread = () => readConfig(args);
    const exporter = await startExporter({ config, connection, log, webConfig, jobs, readConfig: reread });
    await waitForShutdownSignal(log);
    await exporter.stop();
    log.info('stopped');
    return 0;
  },
};

/** The running exporter: pool, poller, registry and HTTP server. */
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
  /** Run the maintenance scheduler (and, with a token, POST /jobs/<name>/run): serve without --no-jobs and jobs.enabled. */
  jobs?: boolean;
  /** Re-reads and validates the config (flags, environment, file): with it, SIGHUP and POST /-/reload reload. */
  readConfig?: () => Config;
}

export async function startExporter(options: ExporterOptions): Promise<RunningExporter> {
  const { config, connection, log } = options;
  const pool = createPool(connection, exporterPoolOptions(config), log);
  // pg_up's own connection: a pool whose every connection waits on a lock must not read as "server down".
  const ownPool = createPool(connection, pgUpPoolOptions(config), log);
  const registry = createRegistry();
  // Job metric families are always registered (documented, stable); series only for scheduled jobs.
  const jobs = new JobService({ runner: jobRunnerSettings(config), schedules: jobSchedules(config), connection, log, registry });
  const jobsToken = options.jobs ? config.jobs.api_token : undefined;
  const reloadMetrics = registerReloadMetrics(registry);
  // With auto-discovery, the primary connection runs the server-scoped collectors and every watched
  // database (the primary's included) the database-scoped ones (commands/databases.ts).
  const scope = autoDiscoverOptions(config) ? 'server' : 'every';
  const selfMetrics = registerSelfMetrics(registry);
  // The collector files are read once per loaded config (here, then on each reload); every poller's set is built from that.
  let loaded: LoadedCollectors;
  let collectors: CollectorSet;
  try {
    loaded = loadCollectors(config, registry);
    collectors = loaded.set(scope);
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
    observer: selfMetrics,
    maxBackoffMs: config.database.reconnect_max_backoff,
  });
  const databases = watchedDatabases({ config, connection, primary: pool, collectors: () => loaded.set('database'), selfMetrics, log });
  let running = config;
  // The auth modules' passwords are redacted from every log line, as the exporter's own is (defence in depth:
  // no record is meant to carry one).
  for (const module of Object.values(config.auth_modules ?? {})) registerSecret(module.password);
  // GET /probe's targets: each with a pool and poller of its own, built on its first probe from the running config.
  const probeTargets = new ProbeTargets({
    ...probeTargetsSettings(config),
    collectors: () => loaded.set(),
    log,
    observer: registerProbeMetrics(registry),
  });
  const reloader = new Reloader({
    log,
    observer: reloadMetrics,
    prepare: () => {
      const next = options.readConfig!();
      // Read and validated here, before anything changes; each watched database and probe target then builds its own set from it.
      const nextLoaded = loadCollectors(next, registry);
      const nextCollectors = nextLoaded.set(scope);
      return () => {
        const summary = poller.reconcile(nextCollectors.collectors, nextCollectors.schedule, nextCollectors.fingerprint);
        loaded = nextLoaded;
        databases?.reconcile(() => nextLoaded.set('database'));
        const restartOnly = restartOnlyChanges(running, next);
        running = next;
        probeTargets.reconcile();
        log.info({ ...summary, ...(restartOnly.length ? { needsRestart: restartOnly } : {}) }, 'config reloaded');
      };
    },
  });
  const reloadToken = options.readConfig ? config.jobs.api_token : undefined;
  const stopReloadSignal = options.readConfig ? onReloadSignal(() => void reloader.reload()) : () => undefined;
  // Rendered ahead while Prometheus scrapes (any scrape in the last 10 minutes): a scrape never waits for a render.
  const scrapes = new ScrapeCache(() => exposition(registry, () => poller.render() + (databases?.render() ?? '')), { keepFreshMs: 10 * 60_000 });
  let http: RunningHttpServer;
  try {
    http = await startHttpServer({
      ...httpSettings(config),
      metrics: () => scrapes.body(),
      contentType: CONTENT_TYPE,
      ready: () => poller.ready() && (databases?.ready() ?? true),
      webConfig: options.webConfig,
      log,
      authenticatedRoutes: (app) => mountProbeRoute(app, probeTargets, CONTENT_TYPE, log),
      selfAuthenticatedRoutes: (app) => {
        if (jobsToken) mountJobsRoute(app, jobs.runner, jobsToken, log);
        if (reloadToken) mountReloadRoute(app, () => reloader.reload(), reloadToken, log);
      },
    });
  } catch (err) {
    stopReloadSignal();
    await Promise.all([jobs.stop(), probeTargets.stop()]);
    await Promise.all([pool.end(), ownPool.end()]);
    throw err;
  }
  poller.start();
  databases?.start();
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
      scrapes.stop();
      await http.close();
      // A running job gets a short grace, then is cancelled; the poller stops meanwhile.
      await Promise.all([jobs.stop(), poller.stop(), databases?.stop(), probeTargets.stop()]);
      await Promise.all([pool.end(), ownPool.end()]).catch(() => undefined);
    },
  };
}
