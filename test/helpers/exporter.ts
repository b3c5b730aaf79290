import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { stopChild } from './child.js';
import { CLI } from './cli.js';
import { createTestDatabase, type TestDatabase } from './database.js';

export { sampleValue } from '../../src/metrics/exposition-text.js';

/** A `pgvector-exporter serve` child process, as Prometheus would see it. */
export interface ServeProcess {
  url: string;
  child: ChildProcess;
  /** Everything the process wrote to stderr (its JSON log) so far. */
  logs: () => string;
  metrics: () => Promise<string>;
  /** SIGTERM, then resolves with the exit code and how long the exit took. */
  stop: () => Promise<{ code: number | null; ms: number }>;
}

let configDir: string | undefined;

/** Writes a YAML config into a temp dir (under the run's temp root, removed at teardown) and returns its path. */
export function writeConfig(yaml: string, name = 'config.yaml'): string {
  configDir ??= mkdtempSync(join(tmpdir(), 'pgve-config-'));
  const path = join(mkdtempSync(join(configDir, 'c-')), name);
  writeFileSync(path, yaml);
  return path;
}

/** Fast intervals for every collector, so tests see changes within a second or two. */
export const FAST_COLLECTORS_YAML = `
collectors:
  connectivity: { interval: 300ms, timeout: 2s }
  database: { interval: 300ms, timeout: 2s }
  replication: { interval: 300ms, timeout: 2s }
  connections: { interval: 300ms, timeout: 2s }
  tables: { interval: 300ms, timeout: 2s }
  indexes: { interval: 300ms, timeout: 2s }
  health: { interval: 300ms, timeout: 5s }
  query_log: { interval: 300ms, timeout: 2s }
  embeddings: { interval: 300ms, timeout: 5s }
  statements: { interval: 300ms, timeout: 2s }
jobs:
  enabled: false
`;

/** How long stop() waits after SIGTERM before SIGKILL: far beyond serve's own shutdown (a job's grace included). */
const STOP_GRACE_MS = 30_000;

/**
 * Starts `serve` on a free loopback port and resolves once it listens. `options.tls`: the web config it is
 * given serves TLS, so its url is https (said by the test, not guessed from --web.config.file: a web config
 * may hold basic auth only, and WEB_CONFIG_FILE names one without the flag).
 */
export async function startServe(args: string[], env: Record<string, string | undefined> = {}, options: { tls?: boolean } = {}): Promise<ServeProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', '--web.listen-address', '127.0.0.1:0', ...args], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logs = '';
  child.stdout!.on('data', (d: Buffer) => (logs += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (logs += d.toString()));
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      // The caller gets no handle to a process that never listened: it is stopped here.
      child.kill('SIGKILL');
      reject(new Error(`serve did not start listening:\n${logs}`));
    }, 20_000);
    const check = () => {
      // JSON records or logfmt lines (--log.format=logfmt).
      const match = /"address":"([^"]+)"[^\n]*"msg":"exporter listening"/.exec(logs) ?? /msg="exporter listening"[^\n]* address=(\S+)/.exec(logs);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stderr!.on('data', check);
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${logs}`));
    });
  });
  const scheme = options.tls ? 'https' : 'http';
  const url = `${scheme}://${address}`;
  return {
    url,
    child,
    logs: () => logs,
    metrics: async () => (await fetch(`${url}/metrics`)).text(),
    stop: async () => {
      const started = Date.now();
      // A shutdown that hangs is killed (its code then reads null, failing a test that expects 0) rather
      // than stalling the afterAll hooks, and the cleanup after them, for good.
      const code = await stopChild(child, STOP_GRACE_MS);
      return { code, ms: Date.now() - started };
    },
  };
}

/** Polls fn until it returns a truthy value or the deadline passes (then throws with the last value). */
export async function eventually<T>(fn: () => Promise<T>, what: string, timeoutMs = 20_000, everyMs = 200): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${String(last instanceof Error ? last.message : last)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * A describe block's `serve` (fast collectors) on a fresh test database: started before its tests,
 * stopped and the database dropped after them, even when a test fails.
 */
export function useServeOnTestDatabase(onStart: (started: { db: TestDatabase; serve: ServeProcess }) => void): void {
  let db: TestDatabase | undefined;
  let serve: ServeProcess | undefined;
  beforeAll(async () => {
    db = await createTestDatabase();
    serve = await startServe(['--database-url', db.url, '--config', writeConfig(FAST_COLLECTORS_YAML)]);
    onStart({ db, serve });
  });
  afterAll(async () => {
    await serve?.stop();
    await db?.drop();
  });
}
