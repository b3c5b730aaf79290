import type { Express, Request } from 'express';
import type { Logger } from '../log.js';
import type { ScrapeBody } from '../metrics/scrape-cache.js';
import { sendScrapeBody } from './scrape-response.js';

/**
 * GET /probe?target=...[&auth_module=NAME]: postgres_exporter's multi-target endpoint
 * (https://prometheus.io/docs/guides/multi-target-exporter/). Mounted behind the web config's basic auth
 * and TLS, like /metrics. The answer is the target's own metrics (pg_up and the enabled collectors),
 * never the exporter's process metrics, which stay on /metrics.
 *   200 the metrics (pg_up 0 for a target that does not answer, as upstream: the scrape itself succeeds),
 *   400 no target, a malformed one, or an unknown auth module (one line saying which),
 *   503 too many live targets (probe.max_targets).
 * Neither the log nor an answer ever quotes the target: it may carry a password.
 */
export interface ProbeRequest {
  target: string;
  authModule?: string;
  /** The scraper's timeout (X-Prometheus-Scrape-Timeout-Seconds), when it sent one. */
  scrapeTimeoutMs?: number;
}

export interface ProbeHandler {
  /** The target's answer, rendered and gzipped at most once per ScrapeCache window however many scrapers ask. */
  probe(request: ProbeRequest): Promise<ScrapeBody>;
}

/** A probe turned away before any database was asked: the status and the one line the scraper sees. */
export class ProbeRefusal extends Error {
  constructor(
    readonly status: 400 | 503,
    message: string,
  ) {
    super(message);
    this.name = 'ProbeRefusal';
  }
}

export function mountProbeRoute(app: Express, handler: ProbeHandler, contentType: string, log: Logger): void {
  app.get('/probe', async (req, res) => {
    try {
      const target = single(req, 'target');
      if (!target) throw new ProbeRefusal(400, 'the target parameter is missing (GET /probe?target=host:port/dbname[&auth_module=NAME])');
      const authModule = single(req, 'auth_module') || undefined;
      sendScrapeBody(req, res, await handler.probe({ target, authModule, scrapeTimeoutMs: scrapeTimeout(req) }), contentType);
    } catch (err) {
      if (err instanceof ProbeRefusal) {
        res.status(err.status).type('text/plain').send(`${err.message}\n`);
        return;
      }
      log.error({ error: (err as Error).message }, 'probe failed');
      res.status(500).type('text/plain').send('probe failed\n');
    }
  });
}

/** One value of a query parameter; a repeated one (?target=a&target=b) is refused rather than guessed. */
function single(req: Request, name: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ProbeRefusal(400, `the ${name} parameter must be given once`);
  return value;
}

/** Prometheus sends its scrape_timeout in seconds; anything else is ignored (the configured default applies). */
function scrapeTimeout(req: Request): number | undefined {
  const header = req.headers['x-prometheus-scrape-timeout-seconds'];
  const seconds = typeof header === 'string' ? Number(header) : NaN;
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}
