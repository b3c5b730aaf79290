import { setMaxListeners } from 'node:events';
import type pg from 'pg';
import { NoDataError, type Collector, type Labels, type MetricFamily, type QueryFn, type Sample } from '../collectors/collector.js';
import { describeDatabaseError, isConnectionBroken, isTransientDatabaseError } from '../db/errors.js';
import type { Logger } from '../log.js';
import { countSeries, renderBodies, renderFamilies } from '../metrics/render.js';
import type { CollectorObserver } from '../metrics/self-metrics.js';

export interface CollectorSchedule {
  intervalMs: number;
  /** The time one poll may take: its deadline, and the statement_timeout of its statements. */
  timeoutMs: number;
  /** Most series one poll may publish (custom collectors); above it the poll fails and publishes nothing. */
  seriesLimit?: number;
}

export interface PollerOptions {
  collectors: readonly Collector[];
  schedule: (name: string) => CollectorSchedule;
  pool: pg.Pool;
  /** A one-connection pool for the collectors marked ownConnection (pg_up); without it they share `pool`. */
  ownPool?: pg.Pool;
  log: Logger;
  observer: CollectorObserver;
  /** Longest wait between attempts while the database is unreachable. */
  maxBackoffMs: number;
  /**
   * What a collector is, beyond its name (its options and schedule), so a reload keeps the collectors
   * whose fingerprint did not change, cache and timer included. Default: the name alone.
   */
  fingerprint?: (name: string) => string;
  /**
   * Labels added to every sample (a sample's own label of the same name wins): with auto-discovery,
   * the datname of the database this poller watches.
   */
  labels?: Labels;
  /**
   * A failure its owner handles (a watched database dropped since discovery): logged at debug, not as a
   * collector failure, when this returns true.
   */
  expectedFailure?: (err: unknown) => boolean;
}

/** One collector's last snapshot: its families as of that poll and the sample lines of each. */
export interface CollectorSnapshot {
  name: string;
  families: readonly MetricFamily[];
  bodies: ReadonlyMap<string, string>;
}

/** What a reload changed, by collector name. */
export interface ReconcileSummary {
  added: string[];
  changed: string[];
  removed: string[];
  unchanged: string[];
}

interface CollectorState {
  collector: Collector;
  /** The collector's logger, made once rather than per poll (100 collectors polling every second). */
  log: Logger;
  fingerprint: string;
  schedule: CollectorSchedule;
  /** Replaced or removed by a reload: its poll in flight finishes, but it is neither published nor rescheduled. */
  retired?: boolean;
  /** The last snapshot's families (a custom collector's can change from poll to poll) and sample lines. */
  families: readonly MetricFamily[];
  bodies: Map<string, string>;
  polled: boolean;
  consecutiveTransientFailures: number;
  timer?: NodeJS.Timeout;
  running?: Promise<void>;
}

/** A poll cut short because the exporter is stopping. */
class PollInterruptedError extends Error {
  constructor() {
    super('poll interrupted by shutdown');
    this.name = 'PollInterruptedError';
  }
}

/**
 * How long past its deadline a poll is waited for before it is abandoned. statement_timeout (the same
 * time as the deadline) cancels a statement on the server; the grace lets that cancellation come back
 * as the poll's own error (isStatementTimeout, with the statement's message) instead of this one.
 */
const ABANDON_GRACE_MS = 1000;

/**
 * lock_timeout of every poll's session: a collector whose statement needs a table that a migration or a
 * maintenance job holds ACCESS EXCLUSIVE gives up after this long (lock not available) instead of holding
 * a pooled connection until its statement_timeout while the other collectors wait for one.
 */
export const COLLECTOR_LOCK_TIMEOUT_MS = 1000;

/** The pool had no free connection within its connect timeout: said as such, not as a network fault. */
export class PoolWaitError extends Error {
  constructor(max: number, holders: string[]) {
    super(
      `no free connection in the exporter's pool within its connect timeout (database.pool_max ${max}, held by: ${holders.join(', ') || 'nobody'}); the database itself was not asked`,
    );
    this.name = 'PoolWaitError';
  }
}

/** A poll still running after its deadline and the grace: its connection is destroyed so the server cancels the work. */
class DeadlineExceededError extends Error {
  constructor(ms: number) {
    super(`poll exceeded its ${ms} ms budget`);
    this.name = 'DeadlineExceededError';
  }
}

/** A snapshot with more series than its collector may publish: refused whole rather than flooding Prometheus. */
export class SeriesLimitError extends Error {
  constructor(series: number, limit: number) {
    super(`the poll returned ${series} series, above the collector's series limit of ${limit}: nothing published (raise series_limit or aggregate in SQL)`);
    this.name = 'SeriesLimitError';
  }
}

/**
 * Runs each collector on its own interval, on the exporter's pool, under its own statement_timeout and
 * deadline, and keeps the rendered text of its last snapshot. /metrics reads only that cache, so
 * scrapes never touch the database, and one failing or slow collector never blocks the others.
 */
export class Poller {
  private states: CollectorState[];
  private stopped = true;
  /** The last reported state of each optional feature of the database. */
  private readonly features = new Map<string, boolean>();
  /** Ready once, ready for good: a reload that adds a collector does not take the exporter out of rotation. */
  private wasReady = false;
  /** Aborted by stop(): in-flight polls give up their connections at once instead of delaying shutdown. */
  private stopping = new AbortController();
  /** Server pids of the connections polls hold right now, so stop() can cancel their statements. */
  private readonly activeBackends = new Set<number>();
  /** Which collector holds each checked-out pooled connection, for PoolWaitError. */
  private readonly holders = new Map<object, string>();
  /** whenReady() callers waiting for the first poll of every collector. */
  private readyWaiters: (() => void)[] = [];
  /** whenPolled() callers waiting for the first poll of one collector. */
  private readonly polledWaiters = new Map<string, ((published: readonly Sample[]) => void)[]>();
  /**
   * The statement_timeout/lock_timeout a pooled connection was last given (session settings, kept by
   * the connection): a poll sets them only when its collector's differ, not in a round trip per poll.
   */
  private readonly sessionTimeouts = new WeakMap<object, string>();

  constructor(private readonly options: PollerOptions) {
    const fingerprint = options.fingerprint ?? ((name: string) => name);
    this.states = options.collectors.map((collector) => this.newState(collector, fingerprint(collector.name), options.schedule(collector.name)));
  }

  private newState(collector: Collector, fingerprint: string, schedule: CollectorSchedule): CollectorState {
    return { collector, log: this.options.log.child({ collector: collector.name }), fingerprint, schedule, families: [], bodies: new Map(), polled: false, consecutiveTransientFailures: 0 };
  }

  /**
   * Swaps in a new set of collectors (a config reload). A collector whose name and fingerprint are
   * unchanged keeps running as it was: its cached snapshot, its timer, its backoff. A changed one is
   * replaced and polled at once; a removed one stops, and its series and self-metrics go.
   */
  reconcile(collectors: readonly Collector[], schedule: (name: string) => CollectorSchedule, fingerprint: (name: string) => string): ReconcileSummary {
    const previous = new Map(this.states.map((s) => [s.collector.name, s]));
    const summary: ReconcileSummary = { added: [], changed: [], removed: [], unchanged: [] };
    const next: CollectorState[] = [];
    const fresh: CollectorState[] = [];
    for (const collector of collectors) {
      const old = previous.get(collector.name);
      const print = fingerprint(collector.name);
      previous.delete(collector.name);
      if (old && old.fingerprint === print) {
        next.push(old);
        summary.unchanged.push(collector.name);
        continue;
      }
      if (old) this.retire(old);
      const state = this.newState(collector, print, schedule(collector.name));
      next.push(state);
      fresh.push(state);
      (old ? summary.changed : summary.added).push(collector.name);
    }
    for (const [name, old] of previous) {
      this.retire(old);
      this.options.observer.forget?.(name);
      summary.removed.push(name);
    }
    this.states = next;
    if (!this.stopped) for (const state of fresh) this.schedule(state, 0);
    return summary;
  }

  private retire(state: CollectorState): void {
    state.retired = true;
    clearTimeout(state.timer);
  }

  /** Starts polling; the first polls after `delayMs` (spreading many pollers' first polls). */
  start(delayMs = 0): void {
    this.stopped = false;
    this.stopping = new AbortController();
    // Every in-flight poll listens on this one signal; with many (custom) collectors that is more than
    // Node's default of 10 listeners, which is not a leak here.
    setMaxListeners(0, this.stopping.signal);
    for (const state of this.states) this.schedule(state, delayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const state of this.states) clearTimeout(state.timer);
    const interrupted = [...this.activeBackends];
    this.stopping.abort();
    await Promise.allSettled(this.states.map((s) => s.running));
    await this.cancelOnServer(interrupted);
  }

  /**
   * A closed connection does not stop the server's work on it (a backend notices only when it next
   * talks to the client), so the statements of interrupted polls are cancelled explicitly.
   */
  private async cancelOnServer(pids: number[]): Promise<void> {
    if (pids.length === 0) return;
    await this.options.pool
      .query('SELECT pg_cancel_backend(pid) FROM unnest($1::int[]) AS pid', [pids])
      .catch((err: unknown) => this.options.log.debug({ error: describeDatabaseError(err) }, 'cancelling interrupted polls failed'));
  }

  /** True once every collector has finished its first poll, successful or not. */
  ready(): boolean {
    this.wasReady ||= this.states.every((s) => s.polled);
    return this.wasReady;
  }

  /** Resolves once every collector has finished its first poll (at once when that has happened). */
  whenReady(): Promise<void> {
    if (this.ready()) return Promise.resolve();
    return new Promise((resolve) => this.readyWaiters.push(resolve));
  }

  /**
   * The samples the named collector's next poll publishes, once it has finished (its failure samples, or
   * none, when it fails; never, for a name the poller does not run). Asked before start(): the first poll.
   */
  nextPoll(name: string): Promise<readonly Sample[]> {
    return new Promise((resolve) => this.polledWaiters.set(name, [...(this.polledWaiters.get(name) ?? []), resolve]));
  }


  /** The cached exposition text of every collector. */
  render(): string {
    return this.states.map((s) => renderFamilies(s.families, s.bodies)).join('');
  }

  /** Every collector's last snapshot, in order, for merging the snapshots of several pollers into one text. */
  snapshots(): CollectorSnapshot[] {
    return this.states.map((s) => ({ name: s.collector.name, families: s.families, bodies: s.bodies }));
  }

  /** Polls every collector once now (tests, and `serve --once` style tooling). */
  async pollAll(): Promise<void> {
    await Promise.all(this.states.map((s) => this.poll(s)));
  }

  private schedule(state: CollectorState, delayMs: number): void {
    if (this.stopped || state.retired) return;
    state.timer = setTimeout(() => {
      state.running = this.poll(state).finally(() => {
        state.running = undefined;
        this.schedule(state, this.nextDelay(state));
      });
    }, delayMs);
    state.timer.unref?.();
  }

  /** The collector's interval, shortened with exponential backoff while the database is unreachable. */
  private nextDelay(state: CollectorState): number {
    const { intervalMs } = state.schedule;
    if (state.consecutiveTransientFailures === 0) return intervalMs;
    const backoff = Math.min(1000 * 2 ** (state.consecutiveTransientFailures - 1), this.options.maxBackoffMs);
    return Math.min(intervalMs, backoff);
  }

  private async poll(state: CollectorState): Promise<void> {
    const { collector, log } = state;
    const started = process.hrtime.bigint();
    let ok = false;
    let published: readonly Sample[] = [];
    try {
      const samples = this.labelled(await this.collectWithDeadline(collector, state.schedule, log));
      const { seriesLimit } = state.schedule;
      if (seriesLimit !== undefined) {
        const series = countSeries(collector.families, samples);
        if (series > seriesLimit) throw new SeriesLimitError(series, seriesLimit);
      }
      state.families = collector.families;
      state.bodies = renderBodies(state.families, samples);
      published = samples;
      state.consecutiveTransientFailures = 0;
      ok = true;
    } catch (err) {
      // "No data" (an empty table, nothing to measure) is not an outage: no series, but a successful poll.
      if (err instanceof NoDataError) ok = true;
      published = this.recordFailure(state, err, log);
    } finally {
      state.polled = true;
      if (this.readyWaiters.length > 0 && this.ready()) for (const resolve of this.readyWaiters.splice(0)) resolve();
      const waiting = this.polledWaiters.get(collector.name);
      if (waiting) {
        this.polledWaiters.delete(collector.name);
        for (const resolve of waiting) resolve(published);
      }
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (!state.retired) this.options.observer.observe(collector.name, seconds, ok);
    }
  }

  private labelled(samples: Sample[]): Sample[] {
    const { labels } = this.options;
    if (!labels) return samples;
    return samples.map((sample) => ({ ...sample, labels: { ...labels, ...sample.labels } }));
  }

  /** Logs a failed poll and returns the samples it publishes instead (none, or the collector's failureSamples). */
  private recordFailure(state: CollectorState, err: unknown, log: Logger): readonly Sample[] {
    let published: readonly Sample[] = [];
    if (!state.collector.keepOnFailure) {
      const instead = state.collector.failureSamples?.();
      if (instead && !(err instanceof PollInterruptedError)) {
        state.families = state.collector.families;
        published = this.labelled(instead);
        state.bodies = renderBodies(state.families, published);
      } else {
        state.bodies = new Map();
      }
    }
    if (err instanceof NoDataError) {
      log.debug({ reason: err.message }, 'no data');
      return published;
    }
    if (err instanceof PollInterruptedError) {
      log.debug('poll interrupted by shutdown');
      return published;
    }
    if (isTransientDatabaseError(err) || err instanceof DeadlineExceededError) state.consecutiveTransientFailures += 1;
    if (this.options.expectedFailure?.(err)) {
      log.debug({ error: describeDatabaseError(err) }, 'collector failed (expected)');
      return published;
    }
    log.warn({ error: describeDatabaseError(err) }, 'collector failed');
    return published;
  }

  /**
   * One poll: the collector gets a context with its deadline and a signal (aborted at the deadline or
   * on stop()), and its statements run on one pooled connection under statement_timeout. A poll still
   * running ABANDON_GRACE_MS after its deadline, or when the exporter stops, is abandoned: its
   * connection is destroyed, not returned to the pool.
   */
  private async collectWithDeadline(collector: Collector, { timeoutMs }: CollectorSchedule, log: Logger) {
    const limitMs = timeoutMs + ABANDON_GRACE_MS;
    const deadline = Date.now() + timeoutMs;
    let client: pg.PoolClient | undefined;
    let broken = false;
    let finished = false;
    let pid: number | undefined;
    // pg-pool listens for 'error' only on idle clients; a checked-out client whose server goes away
    // (restart, pg_terminate_backend) emits 'error' itself, and without a listener that kills the process.
    const onClientError = () => {
      broken = true;
    };
    const query: QueryFn = async (sql, params) => {
      if (!client) {
        const pool = collector.ownConnection && this.options.ownPool ? this.options.ownPool : this.options.pool;
        const connected = await pool.connect().catch((err: unknown) => {
          // pg-pool words a wait for a free slot like a network timeout ("timeout exceeded when trying to connect").
          const max = (pool as unknown as { options: { max: number } }).options.max;
          if (pool.totalCount >= max && /timeout exceeded when trying to connect/i.test((err as Error).message)) {
            throw new PoolWaitError(max, [...this.holders.values()]);
          }
          throw err;
        });
        if (finished) {
          // The poll was abandoned while connecting: this late connection belongs to nobody.
          connected.release(true);
          throw new DeadlineExceededError(limitMs);
        }
        client = connected;
        this.holders.set(client, collector.name);
        client.on('error', onClientError);
        pid = (client as unknown as { processID?: number }).processID;
        if (pid) this.activeBackends.add(pid);
        const timeouts = [String(timeoutMs), String(Math.min(timeoutMs, COLLECTOR_LOCK_TIMEOUT_MS))];
        if (this.sessionTimeouts.get(client) !== timeouts.join()) {
          await client.query("SELECT set_config('statement_timeout', $1, false), set_config('lock_timeout', $2, false)", timeouts);
          this.sessionTimeouts.set(client, timeouts.join());
        }
      }
      try {
        return (await client.query(sql, params)).rows;
      } catch (err) {
        // A broken connection must not go back to the pool; a statement error leaves it usable.
        if (isConnectionBroken(err)) broken = true;
        throw err;
      }
    };
    // The collector's signal: aborted at the deadline or on stop(). (A controller per poll rather than
    // AbortSignal.any(): that leaks listeners on the long-lived stop signal in Node 20.)
    const { signal: stopping } = this.stopping;
    const pollSignal = new AbortController();
    const deadlineTimer = setTimeout(() => pollSignal.abort(new DeadlineExceededError(timeoutMs)), timeoutMs);
    let overrunTimer: NodeJS.Timeout | undefined;
    const overrun = new Promise<never>((_, reject) => {
      overrunTimer = setTimeout(() => reject(new DeadlineExceededError(limitMs)), limitMs);
    });
    let onStop: (() => void) | undefined;
    const interrupted = new Promise<never>((_, reject) => {
      onStop = () => {
        pollSignal.abort(new PollInterruptedError());
        reject(new PollInterruptedError());
      };
      if (stopping.aborted) onStop();
      else stopping.addEventListener('abort', onStop, { once: true });
    });
    try {
      const reportFeature = (feature: string, enabled: boolean, reason?: string) => this.reportFeature(feature, enabled, reason);
      // The signal is made on first use: most collectors never look at it, and making one per poll was a
      // measurable share of 100 custom collectors' polling (bench:custom).
      const ctx = {
        query,
        log,
        poolStats: () => this.poolStats(),
        deadline,
        get signal() {
          return pollSignal.signal;
        },
        reportFeature,
      };
      return await Promise.race([collector.collect(ctx), overrun, interrupted]);
    } catch (err) {
      if (err instanceof DeadlineExceededError || err instanceof PollInterruptedError) broken = true;
      throw err;
    } finally {
      finished = true;
      clearTimeout(deadlineTimer);
      clearTimeout(overrunTimer);
      stopping.removeEventListener('abort', onStop!);
      if (pid) this.activeBackends.delete(pid);
      client?.off('error', onClientError);
      if (client) this.holders.delete(client);
      client?.release(broken ? true : undefined);
    }
  }

  /** Publishes a feature's state; one info line when it changes (the first absence included), none per poll. */
  private reportFeature(feature: string, enabled: boolean, reason?: string): void {
    const before = this.features.get(feature);
    this.features.set(feature, enabled);
    this.options.observer.feature(feature, enabled);
    if (before === enabled) return;
    if (!enabled) this.options.log.info({ feature, reason }, 'not in this database: not collected');
    else if (before === false) this.options.log.info({ feature }, 'now in this database: collected');
  }

  private poolStats() {
    const { pool } = this.options;
    return { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
  }
}
