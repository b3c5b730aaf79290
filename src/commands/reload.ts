import type { Config } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { ReloadObserver } from '../metrics/reload-metrics.js';

/**
 * Reload without a restart (SIGHUP, POST /-/reload): `prepare` re-reads and validates everything and
 * returns the change to apply; only when all of it is valid is anything changed. A rejected config
 * leaves the running one serving, and pgvector_exporter_config_last_reload_successful says 0.
 * Reloads run one at a time.
 */
export class Reloader {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly options: {
      prepare: () => () => void;
      log: Logger;
      observer: ReloadObserver;
    },
  ) {}

  reload(): Promise<{ ok: boolean; error?: string }> {
    const run = this.queue.then(() => this.reloadNow());
    this.queue = run;
    return run;
  }

  private reloadNow(): { ok: boolean; error?: string } {
    const { log, observer } = this.options;
    let apply: () => void;
    try {
      apply = this.options.prepare();
    } catch (err) {
      observer.failed();
      const error = (err as Error).message;
      log.error({ error }, 'config reload rejected; the previous config keeps serving');
      return { ok: false, error };
    }
    apply();
    observer.succeeded();
    return { ok: true };
  }
}

/** Settings a reload does not apply (the pool, the HTTP server, the scheduler run as started). */
const RESTART_ONLY = ['database_url', 'database', 'auto_discover', 'web', 'jobs', 'log_level', 'instance_name', 'auth_modules', 'probe'] as const;

/** The restart-only settings that differ between two configs, for one log line. */
export function restartOnlyChanges(before: Config, after: Config): string[] {
  return RESTART_ONLY.filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
}
