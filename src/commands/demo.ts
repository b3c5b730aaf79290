import { loadConfig } from '../config/load.js';
import { parseDuration, parseInteger, parseNumber } from '../config/values.js';
import { DEFAULT_DEMO_DOCUMENTS } from '../demo/corpus.js';
import { runDemo, type DemoOptions } from '../demo/session.js';
import { Teardown } from '../demo/teardown.js';
import { DEFAULT_SLOW_SHARE } from '../demo/workload.js';
import { ConfigError } from '../errors.js';
import { createLogger } from '../log.js';
import { waitForShutdownSignal } from '../signals.js';
import type { Command, ParsedArgs } from './command.js';

/** Flags in, a DemoOptions out; every bad value is a ConfigError naming the flag. */
function demoOptions(args: ParsedArgs): { options: DemoOptions; durationMs?: number } {
  const v = args.values;
  // The demo serves plain HTTP on its telemetry path and reads it back for the summary.
  for (const unsupported of ['web.config.file', 'web.telemetry-path']) {
    if (v[unsupported] !== undefined) throw new ConfigError(`flag --${unsupported}: not supported by demo (it serves plain HTTP on /metrics)`);
  }
  const flag = <T>(name: string, parse: (raw: unknown) => T, fallback: T): T => {
    if (v[name] === undefined) return fallback;
    try {
      return parse(v[name]);
    } catch (err) {
      throw new ConfigError(`flag --${name}: ${(err as Error).message}`);
    }
  };
  // The config file and environment still apply to what the demo shares with serve (the service's
  // application_name and pool size), so the workload looks like the service the exporter expects.
  const config = loadConfig({ flags: v, env: process.env, file: (v.config as string | undefined) ?? process.env.CONFIG_FILE });
  return {
    options: {
      databaseUrl: v['database-url'] as string | undefined,
      force: v.force === true,
      documents: flag('documents', (raw) => parseInteger(raw, 1, 1_000_000), DEFAULT_DEMO_DOCUMENTS),
      rate: flag('rate', (raw) => parseNumber(raw, 0, 10_000), 20),
      slowShare: flag('slow-share', (raw) => parseNumber(raw, 0, 1), DEFAULT_SLOW_SHARE),
      listenAddress: v['web.listen-address'] as string | undefined,
      exporterLogLevel: config.log_level,
      prometheus: v['no-prometheus'] !== true,
      summaryIntervalMs: flag('summary-interval', parseDuration, 10_000),
      applicationName: config.app.application_name,
      appPoolMax: Math.min(config.app.pool_max, 20),
    },
    durationMs: flag('duration', parseDuration, undefined as number | undefined),
  };
}

export const demoCommand: Command = {
  usage:
    'pgvector-exporter demo [--documents N] [--rate QPS] [--duration 5m] [--no-prometheus] [--database-url URL [--force]]\n' +
    '  (only --database-url names a database to drive: DATABASE_URL and PG* variables are ignored, so the demo never writes into a database by accident)',
  options: {
    documents: { type: 'string', help: `chunks to seed (default ${DEFAULT_DEMO_DOCUMENTS}: load and index in about a minute on 2 cores)` },
    rate: { type: 'string', help: 'workload operations per second (default 20)' },
    'slow-share': { type: 'string', help: `share of operations made slow with pg_sleep (default ${DEFAULT_SLOW_SHARE}; e.g. 0.2 makes the latency alerts fire)` },
    duration: { type: 'string', help: 'stop by itself after this long (e.g. 5m); default: until Ctrl-C' },
    'summary-interval': { type: 'string', help: 'how often the live summary is printed (default 10s)' },
    'no-prometheus': { type: 'boolean', help: 'do not start Prometheus and Alertmanager' },
    force: { type: 'boolean', help: 'with --database-url: seed and drive a database whose tables already hold data' },
  },
  async run(args) {
    const { options, durationMs } = demoOptions(args);
    if (options.force && !options.databaseUrl) throw new ConfigError('flag --force: only meaningful with --database-url');
    const log = createLogger('warn');
    const out = (line: string) => process.stdout.write(`${line}\n`);
    const warn = (line: string) => process.stderr.write(`demo: ${line}\n`);
    const teardown = new Teardown();
    const exitGuard = () => teardown.runSync();
    process.on('exit', exitGuard);
    const controller = new AbortController();
    // A second Ctrl-C, or a stop that hangs, exits at once; the exit guard still cleans up synchronously.
    void waitForShutdownSignal(log, 30_000).then((signal) => {
      out(`\n${signal}: stopping the demo`);
      controller.abort();
    });
    const timer = durationMs ? setTimeout(() => (out('--duration reached: stopping the demo'), controller.abort()), durationMs) : undefined;
    try {
      await runDemo(options, teardown, controller.signal, { out, warn, stdout: process.stdout, log });
      return 0;
    } catch (err) {
      if (controller.signal.aborted) return 0;
      throw err;
    } finally {
      clearTimeout(timer);
      await teardown.run((name, err) => warn(`stopping ${name}: ${err.message}`));
      process.off('exit', exitGuard);
      out('demo stopped; temporary data removed');
      // Everything is stopped; a stray keep-alive socket must not keep the command from exiting.
      setTimeout(() => process.exit(), 3000).unref();
    }
  },
};
