import { startExporter } from '../exporter.js';
import { loadWebConfig } from '../http/web-config.js';
import { waitForShutdownSignal } from '../signals.js';
import type { Command } from './command.js';
import { commandContext, readConfig } from './context.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'poll the database and serve Prometheus metrics (GET /metrics, /healthz, /readyz)',
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
