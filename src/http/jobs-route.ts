import type { Express, Request } from 'express';
import type { JobName } from '../jobs/index.js';
import type { RunRequest, RunResult } from '../jobs/runner.js';
import type { Logger } from '../log.js';
import { bearerCheck } from './bearer-token.js';

/**
 * POST /jobs/<name>/run: one run now, same lock and maintenance_log as a scheduled run. Mounted only
 * when a token is configured (JOBS_API_TOKEN / jobs.api_token): without one the route does not exist.
 * It authenticates itself with `Authorization: Bearer <token>`, so it is mounted ahead of the web
 * config's basic auth (both would need the one Authorization header).
 *   401 missing or wrong token (logged without the token), 404 unknown job,
 *   409 the job is running already (here or on another replica) or was otherwise skipped,
 *   200 success, 500 failure; the body is the run's result as JSON.
 * ?dry_run=true plans only; ?force=true as `jobs run --force`. The response waits for the run to end.
 */
export interface JobTrigger {
  has(name: string): name is JobName;
  run(name: JobName, request: RunRequest): Promise<RunResult>;
}

export function mountJobsRoute(app: Express, runner: JobTrigger, token: string, log: Logger): void {
  const authorized = bearerCheck(token);
  app.post('/jobs/:name/run', async (req, res) => {
    const name = req.params.name!;
    if (!authorized(req)) {
      // Never the token itself, nor the header: only whether one was sent.
      log.warn({ job: name, remote: req.socket.remoteAddress, authorization: req.headers.authorization ? 'wrong' : 'missing' }, 'POST /jobs rejected: missing or wrong bearer token');
      res.status(401).set('WWW-Authenticate', 'Bearer realm="pgvector-exporter jobs"').json({ error: 'missing or wrong bearer token' });
      return;
    }
    if (!runner.has(name)) {
      res.status(404).json({ error: `unknown job "${name}"` });
      return;
    }
    const result = await runner.run(name, { trigger: 'http', dryRun: flag(req, 'dry_run'), force: flag(req, 'force') });
    const status = result.result === 'success' ? 200 : result.result === 'failure' ? 500 : 409;
    res.status(status).json(toJson(result));
  });
}

function flag(req: Request, name: string): boolean {
  const value = req.query[name];
  return value === 'true' || value === '1' || value === '';
}

function toJson(result: RunResult) {
  return {
    job: result.job,
    result: result.result,
    message: result.message,
    skip_reason: result.skipReason,
    dry_run: result.dryRun,
    statements: result.statements,
    started_at: result.startedAt.toISOString(),
    finished_at: result.finishedAt.toISOString(),
    duration_seconds: result.durationSeconds,
    maintenance_log_id: result.logId,
    details: result.details,
  };
}
