import type { Logger } from './log.js';

/**
 * Calls `onSignal` on the first SIGTERM or SIGINT; from then on a second signal, or a shutdown that
 * takes longer than the grace period, exits at once so an orchestrator is never kept waiting.
 * Returns a function that stops listening (a command that finished by itself calls it).
 */
export function onShutdownSignal(log: Logger, onSignal: (signal: NodeJS.Signals) => void, graceMs = 5000): () => void {
  let timer: NodeJS.Timeout | undefined;
  const force = (signal: NodeJS.Signals | 'timeout') => {
    log.warn({ signal }, 'shutdown did not finish in time; exiting');
    process.exit(1);
  };
  const first = (signal: NodeJS.Signals) => {
    process.off('SIGTERM', first);
    process.off('SIGINT', first);
    log.info({ signal }, 'shutting down');
    process.once('SIGTERM', force);
    process.once('SIGINT', force);
    timer = setTimeout(() => force(signal), graceMs).unref();
    onSignal(signal);
  };
  process.on('SIGTERM', first);
  process.on('SIGINT', first);
  return () => {
    clearTimeout(timer);
    for (const listener of [first, force]) {
      process.off('SIGTERM', listener);
      process.off('SIGINT', listener);
    }
  };
}

/** Resolves on the first SIGTERM or SIGINT (see onShutdownSignal for the second one and the grace period). */
export function waitForShutdownSignal(log: Logger, graceMs = 5000): Promise<NodeJS.Signals> {
  return new Promise((resolve) => onShutdownSignal(log, resolve, graceMs));
}

/** Calls `onReload` on every SIGHUP (re-read the config); returns a function that stops listening. */
export function onReloadSignal(onReload: () => void): () => void {
  const listener = () => onReload();
  process.on('SIGHUP', listener);
  return () => process.off('SIGHUP', listener);
}
