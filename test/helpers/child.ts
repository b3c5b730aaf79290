import type { ChildProcess } from 'node:child_process';

/**
 * Stops a child process and resolves once it has exited, with its exit code (null when a signal ended
 * it): SIGTERM, then SIGKILL after `graceMs` if it has not exited by then, so that a shutdown that hangs
 * cannot stall the hooks after it. A child that has already exited resolves at once.
 */
export function stopChild(child: ChildProcess, graceMs = 5_000): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    const killer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', (code) => {
      clearTimeout(killer);
      resolve(code);
    });
    child.kill('SIGTERM');
  });
}
