import { Agent, request } from 'node:http';

/** One GET with a keep-alive agent; resolves with the body once fully read. */
export function get(url: string, agent: Agent, timeoutMs = 30_000, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, timeout: timeoutMs, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export interface LoadResult {
  concurrency: number;
  /** Latency of each successful request, in milliseconds. */
  latenciesMs: number[];
  errors: number;
  seconds: number;
}

export interface LoadHooks {
  /** Called when every scraper has its connection open and warmed up, right before measuring. */
  onStart?: () => void;
  /** Called when the measured requests are done. */
  onEnd?: () => void;
  /** Request headers, e.g. Prometheus' Accept-Encoding: gzip (the body is then read compressed, not inflated). */
  headers?: Record<string, string>;
}

/**
 * `concurrency` scrapers each request /metrics back to back until `requests` have been sent in total
 * or `maxSeconds` have passed (a slow exporter is measured on fewer requests rather than stalling the run).
 *
 * Each scraper first opens its keep-alive connection with two unmeasured requests, and measuring
 * starts when all have: Prometheus keeps its connections open, and 50 connections opened at once
 * make their first requests wait behind the others' (a few hundred ms even against a bare
 * node:http server here), which is connection set-up, not scraping.
 */
export async function runLoad(url: string, concurrency: number, requests: number, maxSeconds: number, hooks: LoadHooks = {}): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latenciesMs: number[] = [];
  let errors = 0;
  let sent = 0;
  // Warm-up failures are not counted: a failing exporter fails the measured requests too.
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = 0; i < 2; i++) await get(url, agent, 30_000, hooks.headers).catch(() => undefined);
    }),
  );
  hooks.onStart?.();
  const started = performance.now();
  const deadline = started + maxSeconds * 1000;
  const worker = async () => {
    while (sent < requests && performance.now() < deadline) {
      sent += 1;
      const t0 = performance.now();
      try {
        const res = await get(url, agent, 30_000, hooks.headers);
        if (res.status === 200) latenciesMs.push(performance.now() - t0);
        else errors += 1;
      } catch {
        errors += 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
    hooks.onEnd?.();
  } finally {
    agent.destroy();
  }
  return { concurrency, latenciesMs, errors, seconds: (performance.now() - started) / 1000 };
}

/** Series in an exposition: non-empty lines that are not comments. */
export function seriesCount(text: string): number {
  return text.split('\n').filter((line) => line.length > 0 && !line.startsWith('#')).length;
}

/** Scrapes url every intervalMs for durationMs (a Prometheus stand-in for the database-time window). */
export async function scrapeEvery(url: string, intervalMs: number, durationMs: number): Promise<{ scrapes: number; errors: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let scrapes = 0;
  let errors = 0;
  const started = performance.now();
  try {
    for (let next = started; next < started + durationMs; next += intervalMs) {
      const wait = next - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      try {
        const res = await get(url, agent);
        if (res.status === 200) scrapes += 1;
        else errors += 1;
      } catch {
        errors += 1;
      }
    }
  } finally {
    agent.destroy();
  }
  return { scrapes, errors };
}
