import type { Logger } from './log.js';

/**
 * Waits for SIGTERM or SIGINT, then runs the shutdown; a second signal, or a shutdown that takes
 * longer than the grace period, exits at once so an orchestrator is never kept waiting.
 */
export function waitForShutdownSignal(log: Logger, graceMs = 5000): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      log.info({ signal }, 'shutting down');
      const force = () => {
        log.warn({ signal }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      };
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      setTimeout(force, graceMs).unref();
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** Calls `onReload` on every SIGHUP (re-read the config); returns a function that stops listening. */
export function onReloadSignal(onReload: () => void): () => void {
  const listener = () => onReload();
  process.on('SIGHUP', listener);
  return () => process.off('SIGHUP', listener);
}
