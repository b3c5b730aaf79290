import { createHash } from 'node:crypto';
import type pg from 'pg';
import { Registry } from 'prom-client';
import { reportsDown } from '../collectors/connectivity.js';
import { ConfigError } from '../errors.js';
import type { ConnectionSettings } from '../db/connection.js';
import { createPool, type PoolOptions } from '../db/pool.js';
import { probeTargetConnection, type TargetCredentials } from '../db/probe-target.js';
import { ProbeRefusal, type ProbeHandler, type ProbeRequest } from '../http/probe-route.js';
import type { Logger } from '../log.js';
import type { ProbeObserver } from '../metrics/probe-metrics.js';
import { exposition } from '../metrics/registry.js';
import { ScrapeCache, type ScrapeBody } from '../metrics/scrape-cache.js';
import { registerSelfMetrics } from '../metrics/self-metrics.js';
import { Poller } from '../poller/poller.js';
import type { CollectorSet } from './collector-set.js';

/**
 * The targets of GET /probe (postgres_exporter's multi-target pattern): each target (its connection
 * string and auth module) gets its own pool, pg_up connection, poller and cache, opened on its first
 * probe. That first probe waits for the first poll of every collector, but never past the scraper's
 * timeout; later probes answer from the cache, like /metrics. A target nobody probed for idleTimeoutMs
 * is closed (poller stopped, pools ended, forgotten); at most maxTargets are live at once, and a probe
 * of one more is refused with 503, so a flood of distinct targets cannot exhaust memory or connections.
 * Jobs never run on probe targets; the exporter's process metrics stay on /metrics.
 */
export interface ProbeTargetsOptions {
  /** Credentials and options by auth module name (config auth_modules). */
  authModules: Record<string, TargetCredentials>;
  maxTargets: number;
  idleTimeoutMs: number;
  /** How long a first probe waits for the first poll when the scraper sends no timeout. */
  defaultScrapeTimeoutMs: number;
  pool: PoolOptions;
  ownPool: PoolOptions;
  maxBackoffMs: number;
  /** A fresh set of the enabled collectors of the loaded config, no file read (collectors keep state per database: one set per target). */
  collectors: () => CollectorSet;
  log: Logger;
  observer: ProbeObserver;
}

interface LiveTarget {
  description: string;
  pool: pg.Pool;
  ownPool: pg.Pool;
  poller: Poller;
  /** The target's own self-metrics (collector durations, successes, features): part of its probe answer. */
  registry: Registry;
  /** The answer, as /metrics's: rendered (pollers' cache and self-metrics) and gzipped at most once a second. */
  scrapes: ScrapeCache;
  /** The first poll of every collector, or sooner the first poll of connectivity when it finds the server down. */
  firstPoll: Promise<void>;
  lastProbedAt: number;
  /** Probes being answered now: a target is never closed under one (its first poll may outlast the idle timeout). */
  inFlight: number;
}

/**
 * When a first probe can answer: once every collector has polled, or once connectivity has found the
 * server down (pg_up 0): the other collectors can only fail too, and a dead target must answer fast.
 */
function firstAnswer(poller: Poller): Promise<void> {
  const down = poller.nextPoll('connectivity').then((samples) => (reportsDown(samples) ? undefined : new Promise<void>(() => undefined)));
  return Promise.race([poller.whenReady(), down]);
}

/** Time left for writing the answer: a first probe stops waiting this long before the scraper gives up. */
const ANSWER_MARGIN_MS = 500;

export class ProbeTargets implements ProbeHandler {
  private readonly targets = new Map<string, LiveTarget>();
  private readonly sweeper: NodeJS.Timeout;
  private stopped = false;
  private lastRefusalLog = 0;

  constructor(private readonly options: ProbeTargetsOptions) {
    // Checked a few times per idle timeout, so a target is closed at most ~1.25 idle timeouts after its last probe.
    this.sweeper = setInterval(() => void this.closeIdle(), Math.max(250, Math.min(options.idleTimeoutMs / 4, 30_000)));
    this.sweeper.unref();
  }

  /** Live targets right now. */
  get size(): number {
    return this.targets.size;
  }

  async probe(request: ProbeRequest): Promise<ScrapeBody> {
    if (this.stopped) throw new ProbeRefusal(503, 'the exporter is stopping');
    const { key, settings } = this.resolve(request);
    let target = this.targets.get(key);
    if (!target) target = this.open(key, settings);
    const live = target;
    live.inFlight += 1;
    try {
      const waitMs = Math.max((request.scrapeTimeoutMs ?? this.options.defaultScrapeTimeoutMs) - ANSWER_MARGIN_MS, 100);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([live.firstPoll, new Promise<void>((resolve) => (timer = setTimeout(resolve, waitMs)))]);
      clearTimeout(timer);
      return await live.scrapes.body();
    } finally {
      live.inFlight -= 1;
      live.lastProbedAt = Date.now();
    }
  }

  private resolve(request: ProbeRequest): { key: string; settings: ConnectionSettings } {
    let credentials: TargetCredentials | undefined;
    if (request.authModule !== undefined) {
      credentials = Object.hasOwn(this.options.authModules, request.authModule) ? this.options.authModules[request.authModule] : undefined;
      if (!credentials) {
        this.options.observer.refused('unknown_auth_module');
        const known = Object.keys(this.options.authModules);
        const name = JSON.stringify(request.authModule.slice(0, 64));
        throw new ProbeRefusal(400, `auth_module ${name} not found (configured in auth_modules: ${known.length ? known.join(', ') : 'none'})`);
      }
    }
    let settings: ConnectionSettings;
    try {
      settings = probeTargetConnection(request.target, credentials);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      this.options.observer.refused('bad_request');
      // The parser's messages name "target" and never quote it (it may hold a password).
      throw new ProbeRefusal(400, err.message);
    }
    // The map key holds no secret in the clear: a digest of what the target and module are.
    const key = createHash('sha256').update(`${request.authModule ?? ''}\0${request.target}`).digest('hex');
    return { key, settings };
  }

  private open(key: string, settings: ConnectionSettings): LiveTarget {
    if (this.targets.size >= this.options.maxTargets) {
      this.options.observer.refused('too_many_targets');
      const message = `too many probe targets: ${this.targets.size} are live, the most probe.max_targets allows; a target is closed after probe.idle_timeout without a probe`;
      if (Date.now() - this.lastRefusalLog > 10_000) {
        this.lastRefusalLog = Date.now();
        this.options.log.warn({ live: this.targets.size, max: this.options.maxTargets }, 'probe refused: too many targets');
      }
      throw new ProbeRefusal(503, message);
    }
    const log = this.options.log.child({ target: settings.description });
    const set = this.options.collectors();
    const pool = createPool(settings, this.options.pool, log);
    const ownPool = createPool(settings, this.options.ownPool, log);
    const registry = new Registry();
    const poller = new Poller({
      collectors: set.collectors,
      schedule: set.schedule,
      fingerprint: set.fingerprint,
      pool,
      ownPool,
      log,
      observer: registerSelfMetrics(registry),
      maxBackoffMs: this.options.maxBackoffMs,
    });
    // Asked before start(): the first poll's outcome.
    const firstPoll = firstAnswer(poller);
    poller.start();
    const target: LiveTarget = {
      description: settings.description,
      pool,
      ownPool,
      poller,
      registry,
      scrapes: new ScrapeCache(() => exposition(registry, () => poller.render())),
      firstPoll,
      lastProbedAt: Date.now(),
      inFlight: 0,
    };
    this.targets.set(key, target);
    this.options.observer.opened();
    this.options.observer.live(this.targets.size);
    log.info({ live: this.targets.size }, 'probe target opened');
    return target;
  }

  /** A reload: every live target's poller takes the new collector set (unchanged collectors keep running). */
  reconcile(): void {
    for (const target of this.targets.values()) {
      const set = this.options.collectors();
      target.poller.reconcile(set.collectors, set.schedule, set.fingerprint);
    }
  }

  /** Closes the targets not probed for idleTimeoutMs. */
  async closeIdle(now = Date.now()): Promise<void> {
    const idle = [...this.targets].filter(([, t]) => t.inFlight === 0 && now - t.lastProbedAt >= this.options.idleTimeoutMs);
    await Promise.all(idle.map(([key, target]) => this.close(key, target, 'idle')));
  }

  private async close(key: string, target: LiveTarget, why: 'idle' | 'stop'): Promise<void> {
    if (this.targets.get(key) !== target) return;
    this.targets.delete(key);
    this.options.observer.live(this.targets.size);
    if (why === 'idle') this.options.observer.closed();
    await target.poller.stop();
    await Promise.all([target.pool.end(), target.ownPool.end()]).catch(() => undefined);
    target.registry.clear();
    if (why === 'idle') this.options.log.info({ target: target.description, live: this.targets.size }, 'probe target closed: not probed for probe.idle_timeout');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    await Promise.all([...this.targets].map(([key, target]) => this.close(key, target, 'stop')));
  }
}
