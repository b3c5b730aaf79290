import type pg from 'pg';
import type { Registry } from 'prom-client';
import { enabledCollectors } from './collectors/index.js';
import { COLLECTOR_NAMES, type CollectorName, type Config } from './config/schema.js';
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
import { Poller, type CollectorSchedule } from './poller/poller.js';
import { customCollector } from './custom/collector.js';
import type { CustomCollectorDefinition } from './custom/definition.js';
import { loadCustomCollectors, type OwnedNames } from './custom/load.js';
import type { Collector } from './collectors/collector.js';

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
}

export const EXPORTER_APPLICATION_NAME = 'pgvector-exporter';

export async function startExporter(options: ExporterOptions): Promise<RunningExporter> {
  const { config, connection, log } = options;
  const pool = createPool(
    connection,
    { applicationName: EXPORTER_APPLICATION_NAME, max: config.database.pool_max, connectTimeoutMs: config.database.connect_timeout },
    log,
  );
  const registry = createRegistry();
  // Job metric families are always registered (documented, stable); series only for scheduled jobs.
  const jobs = new JobService({ config, connection, log, registry });
  const jobsToken = options.jobs ? config.jobs.api_token : undefined;
  const builtIn = enabledCollectors(config);
  let definitions: CustomCollectorDefinition[];
  try {
    definitions = loadCustomCollectors(
      { files: config.custom_collectors.files, queryPath: config.extend.query_path },
      ownedNames(builtIn, registry),
    );
  } catch (err) {
    await pool.end();
    throw err;
  }
  const customSchedules = new Map(definitions.map((d) => [d.name, customSchedule(d, config)]));
  const poller = new Poller({
    collectors: [...builtIn, ...definitions.map(customCollector)],
    schedule: (name) => {
      const custom = customSchedules.get(name);
      if (custom) return custom;
      const c = config.collectors[name as CollectorName];
      return { intervalMs: c.interval, timeoutMs: c.timeout };
    },
    pool,
    log,
    observer: registerSelfMetrics(registry),
    maxBackoffMs: config.database.reconnect_max_backoff,
  });
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
      selfAuthenticatedRoutes: jobsToken ? (app) => mountJobsRoute(app, jobs.runner, jobsToken, log) : undefined,
    });
  } catch (err) {
    await jobs.stop();
    await pool.end();
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
      await http.close();
      // A running job gets a short grace, then is cancelled; the poller stops meanwhile.
      await Promise.all([jobs.stop(), poller.stop()]);
      await pool.end().catch(() => undefined);
    },
  };
}

/** The names custom collectors may not take: every family the exporter publishes already, and the built-in collectors. */
function ownedNames(builtIn: readonly Collector[], registry: Registry): OwnedNames {
  const families = new Map<string, string>();
  for (const collector of builtIn) {
    for (const family of collector.families) {
      const owner = `the built-in collector "${collector.name}" (collectors.${collector.name}.enabled: false turns it off)`;
      for (const name of family.type === 'histogram' ? [family.name, `${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`] : [family.name]) {
        families.set(name, owner);
      }
    }
  }
  for (const metric of registry.getMetricsAsArray()) families.set(metric.name, 'the exporter itself');
  return { families, collectors: new Set(COLLECTOR_NAMES) };
}

function customSchedule(definition: CustomCollectorDefinition, config: Config): CollectorSchedule {
  return {
    intervalMs: Math.max(definition.intervalMs ?? config.custom_collectors.interval, definition.minIntervalMs ?? 0),
    timeoutMs: definition.timeoutMs ?? config.custom_collectors.timeout,
    seriesLimit: definition.seriesLimit ?? config.custom_collectors.series_limit,
  };
}
