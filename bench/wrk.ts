import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onCleanup } from './cleanup.js';

/**
 * One run of wrk (Debian's `wrk`, installed by scripts/setup-system.sh): `concurrency` keep-alive
 * connections requesting `url` back to back for `seconds`, on one thread. A C client spends a
 * fraction of the CPU a Node client does per request, so on a 2-core machine the exporter, not the
 * load generator, is what gets measured. Latencies are wrk's own, every one (its raw histogram).
 */
export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  /** Non-2xx/3xx answers plus socket errors (connect, read, write, timeout). */
  errors: number;
  /** Every latency wrk recorded, as [microseconds, count] pairs: runs are pooled by merging these. */
  histogram: [number, number][];
}

/**
 * With `pauseMs`, each connection waits that long after an answer before its next request (wrk's
 * delay() hook): scrapers at a pace, as Prometheus scrapes, rather than back to back; the latency of
 * each request is still measured from its send, by wrk.
 */
export function runWrk(url: string, concurrency: number, seconds: number, headers: Record<string, string> = {}, pauseMs?: number): Promise<WrkResult> {
  const args = ['-t1', `-c${concurrency}`, `-d${seconds}s`, '--timeout', '10s', '-s', script(pauseMs), ...Object.entries(headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]), url];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(new Error(missing ? 'wrk is not installed: run scripts/setup-system.sh' : `wrk failed: ${stderr.trim() || err.message}`));
        return;
      }
      try {
        resolve(parseWrk(stdout));
      } catch (parseError) {
        reject(parseError as Error);
      }
    });
  });
}

export function parseWrk(out: string): WrkResult {
  const requests = /^\s*(\d+) requests in /m.exec(out);
  const rate = /^Requests\/sec:\s+([\d.]+)/m.exec(out);
  if (!requests || !rate) throw new Error(`wrk printed no request count:\n${out}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((s, n) => s + Number(n), 0) : 0;
  const histogram = [...out.matchAll(/^H (\d+) (\d+)$/gm)].map((m): [number, number] => [Number(m[1]), Number(m[2])]);
  return { requestsPerSecond: Number(rate[1]), requests: Number(requests[1]), errors: non2xx + socketErrors, histogram };
}

/** The p-th percentile (nearest rank) of several runs' latencies pooled, in milliseconds. */
export function pooledPercentileMs(runs: readonly WrkResult[], p: number): number {
  const counts = new Map<number, number>();
  for (const run of runs) for (const [us, n] of run.histogram) counts.set(us, (counts.get(us) ?? 0) + n);
  const sorted = [...counts].sort((a, b) => a[0] - b[0]);
  const total = sorted.reduce((sum, [, n]) => sum + n, 0);
  if (total === 0) return NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * total));
  let seen = 0;
  for (const [us, n] of sorted) {
    seen += n;
    if (seen >= rank) return us / 1000;
  }
  return sorted.at(-1)![0] / 1000;
}

let scriptDir: string | undefined;

/** wrk's Lua hooks: an optional pause after each answer (delay()), and every latency printed at the end. */
function script(pauseMs: number | undefined): string {
  if (!scriptDir) {
    const dir = mkdtempSync(join(tmpdir(), 'pgvector-exporter-wrk-'));
    scriptDir = dir;
    onCleanup('wrk scripts', () => rmSync(dir, { recursive: true, force: true }));
  }
  const file = join(scriptDir, `wrk-${pauseMs ?? 0}.lua`);
  const pace = pauseMs === undefined ? '' : `function delay()\n  return ${Math.round(pauseMs)}\nend\n`;
  const dump = 'done = function(summary, latency, requests)\n  for i = 1, #latency do\n    local v, c = latency(i)\n    io.write(string.format("H %d %d\\n", v, c))\n  end\nend\n';
  writeFileSync(file, pace + dump);
  return file;
}
