import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { sleep } from '../src/sleep.js';
import { onCleanup } from './cleanup.js';

/**
 * The two exporters run as child processes (not shells), so /proc/<pid>/status is the exporter's
 * own resident memory.
 */
export interface ExporterProcess {
  name: string;
  url: string;
  child: ChildProcess;
  /** Last lines of stderr/stdout, for error messages. */
  output(): string;
  stop(): Promise<void>;
}

export interface SpawnSpec {
  name: string;
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  /** Base URL, e.g. http://127.0.0.1:9999 */
  url: string;
  /** Path polled until it answers 200 (e.g. /readyz, or /metrics for the peer). */
  readyPath: string;
}

export async function startExporterProcess(spec: SpawnSpec, readyTimeoutMs = 30_000): Promise<ExporterProcess> {
  const child = spawn(spec.command, spec.args, { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    if (lines.length > 40) lines.splice(0, lines.length - 40);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  const removeCleanup = onCleanup(spec.name, stop);
  const proc: ExporterProcess = {
    name: spec.name,
    url: spec.url,
    child,
    output: () => lines.join('\n'),
    stop: async () => {
      await stop();
      removeCleanup();
    },
  };
  try {
    await waitForOk(`${spec.url}${spec.readyPath}`, readyTimeoutMs, () => child.exitCode !== null);
  } catch (err) {
    await proc.stop();
    throw new Error(`${spec.name} did not become ready: ${(err as Error).message}\n${proc.output()}`);
  }
  return proc;
}

async function waitForOk(url: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    if (exited()) throw new Error('process exited');
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
      last = `HTTP ${res.status}`;
    } catch (err) {
      last = (err as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`${url}: ${last || 'timeout'}`);
}

/** User + system CPU time a process has used so far, in milliseconds (/proc/<pid>/stat, clock ticks of 10 ms). */
export function cpuMillis(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** VmRSS of a process, in bytes. */
export function residentBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]) * 1024;
}

/** VmRSS and its parts: RssAnon (the process's own heap and stacks) and RssFile (mapped files: mostly the node binary's pages, shared and reclaimable). */
export function residentSplit(pid: number): { bytes: number; anonBytes: number; fileBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { bytes: kb('VmRSS'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile') };
}
