import type { Express } from 'express';
import type { Logger } from '../log.js';
import { bearerCheck } from './bearer-token.js';

/**
 * POST /-/reload (Prometheus' convention): re-reads the config and the collector files, as SIGHUP does.
 * Mounted only with a token (the jobs endpoint's, jobs.api_token / JOBS_API_TOKEN), ahead of basic auth:
 *   401 missing or wrong token, 200 reloaded, 500 rejected (the message says why; the old config keeps serving).
 */
export function mountReloadRoute(app: Express, reload: () => Promise<{ ok: boolean; error?: string }>, token: string, log: Logger): void {
  const authorized = bearerCheck(token);
  app.post('/-/reload', async (req, res) => {
    if (!authorized(req)) {
      log.warn({ remote: req.socket.remoteAddress, authorization: req.headers.authorization ? 'wrong' : 'missing' }, 'POST /-/reload rejected: missing or wrong bearer token');
      res.status(401).set('WWW-Authenticate', 'Bearer realm="pgvector-exporter"').type('text/plain').send('missing or wrong bearer token\n');
      return;
    }
    const result = await reload();
    if (result.ok) res.type('text/plain').send('reloaded\n');
    else res.status(500).type('text/plain').send(`failed to reload config: ${result.error ?? 'unknown error'}\n`);
  });
}
