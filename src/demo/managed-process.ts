import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';

/**
 * A long-running helper process of the demo (the exporter, Prometheus, Alertmanager). It runs in a
 * process group of its own, so a terminal's Ctrl-C reaches only the demo, which stops its helpers in
 * order; its output goes to a log file in the demo's temp directory.
 */
export interface ManagedProcess {
  name: string;
  pid: number;
  logFile: string;
  /** Resolves with the exit code (or signal name) when the process exits. */
  exited: Promise<number | string>;
  isRunning(): boolean;
  /** SIGTERM to the group, SIGKILL after the grace period. */
  stop(graceMs?: number): Promise<void>;
  /** For a process 'exit' handler, where nothing asynchronous runs: SIGKILL to the group. */
  killNow(): void;
  logTail(lines?: number): string;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  logFile: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function startProcess(options: StartOptions): ManagedProcess {
  const out = openSync(options.logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(options.command, options.args, {
      detached: true,
      stdio: ['ignore', out, out],
      env: options.env ?? process.env,
      cwd: options.cwd,
    });
  } finally {
    closeSync(out);
  }
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.once('error', (err) => {
      running = false;
      resolve(err.message);
    });
    child.once('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? 'unknown');
    });
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    if (!running || child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      /* already gone */
    }
  };
  return {
    name: options.name,
    pid: child.pid ?? -1,
    logFile: options.logFile,
    exited,
    isRunning: () => running,
    async stop(graceMs = 8000) {
      signalGroup('SIGTERM');
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    killNow: () => signalGroup('SIGKILL'),
    logTail: (lines = 15) => tail(options.logFile, lines),
  };
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Polls `url` until it answers 2xx. Fails early when the process exits, with its log's tail, so a
 * helper that cannot start is reported with its own words.
 */
export async function waitForHttp(url: string, processToWatch: ManagedProcess | undefined, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (Date.now() < deadline) {
    signal?.throwIfAborted();
    if (processToWatch && !processToWatch.isRunning()) {
      throw new Error(`${processToWatch.name} exited (${await processToWatch.exited}):\n${processToWatch.logTail()}`);
    }
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (response.ok) return;
      lastError = `HTTP ${response.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`${processToWatch?.name ?? url} not ready after ${Math.round(timeoutMs / 1000)} s (${lastError})${processToWatch ? `:\n${processToWatch.logTail()}` : ''}`);
}
