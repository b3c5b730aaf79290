import type pg from 'pg';
import type { Collector } from '../collectors/collector.js';
import { databaseSelector } from '../db/database-selector.js';
import { describeDatabaseError, isDatabaseMissing } from '../db/errors.js';
import type { Logger } from '../log.js';
import { familyHeader } from '../metrics/render.js';
import type { CollectorObserver } from '../metrics/self-metrics.js';
import { Poller, type CollectorSchedule, type ReconcileSummary } from './poller.js';

/**
 * Every database of a server (--auto-discover-databases, postgres_exporter's flag): pg_database is read
 * on the primary connection every `intervalMs`; each database that allows connections, is not a
 * template and passes the include/exclude patterns (the primary connection's own database always: postgres_exporter
 * always scrapes its DSN's database) gets a pool of one connection (under the global
 * ConnectionBudget) and a Poller of the database-scoped collectors, whose samples carry its datname. A
 * database that appears is watched from the next discovery; one that is dropped (or excluded) has its
 * poller stopped, its pool ended and its series removed, with one info line.
 */

/** Between the first polls of databases found together: 50 databases start within 5 s. */
const FIRST_POLL_SPACING_MS = 100;

/** The databases discovery looks at: those a session may connect to, templates left out (as postgres_exporter). */
export const DISCOVERY_SQL = `
SELECT datname, datname = current_database() AS primary
  FROM pg_database
 WHERE datallowconn AND NOT datistemplate
 ORDER BY datname`;

/** The collectors of one watched database: a new set for each (collectors keep state between polls). */
export interface DatabaseCollectors {
  collectors: Collector[];
  schedule: (name: string) => CollectorSchedule;
  fingerprint: (name: string) => string;
}

export interface WatchedDatabasesOptions {
  /** The primary connection's pool: discovery reads pg_database there. */
  primary: pg.Pool;
  include: readonly string[];
  exclude: readonly string[];
  intervalMs: number;
  /** A pool (of one connection, under the global budget) on a database. */
  openPool: (datname: string) => pg.Pool;
  collectors: () => DatabaseCollectors;
  observer: (datname: string) => CollectorObserver & { forgetAll(): void };
  log: Logger;
  maxBackoffMs: number;
}

interface Watched {
  pool: pg.Pool;
  poller: Poller;
  forget: () => void;
}

export class WatchedDatabases {
  private readonly watched = new Map<string, Watched>();
  private readonly selected: (name: string) => boolean;
  private timer?: NodeJS.Timeout;
  private stopped = true;
  private discovering?: Promise<void>;
  private discovered = false;
  private wasReady = false;
  private collectors: () => DatabaseCollectors;

  constructor(private readonly options: WatchedDatabasesOptions) {
    this.selected = databaseSelector(options.include, options.exclude);
    this.collectors = options.collectors;
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.discovering;
    await Promise.all([...this.watched.keys()].map((datname) => this.unwatch(datname)));
  }

  /** The databases watched now, sorted. */
  databases(): string[] {
    return [...this.watched.keys()].sort();
  }

  /** Ready once discovery has run and every database it found has been polled once; ready for good after. */
  ready(): boolean {
    this.wasReady ||= this.discovered && [...this.watched.values()].every((w) => w.poller.ready());
    return this.wasReady;
  }

  /** A reload: every watched database's poller takes the new collectors; new databases get them too. */
  reconcile(collectors: () => DatabaseCollectors): ReconcileSummary | undefined {
    this.collectors = collectors;
    let summary: ReconcileSummary | undefined;
    for (const { poller } of this.watched.values()) {
      const next = collectors();
      summary = poller.reconcile(next.collectors, next.schedule, next.fingerprint);
    }
    return summary;
  }

  /**
   * Every watched database's last snapshots as one exposition text: each family's HELP and TYPE once,
   * then its samples database by database (a family may not be split in the text format).
   */
  render(): string {
    const snapshots = this.databases().map((datname) => this.watched.get(datname)!.poller.snapshots());
    const first = snapshots[0];
    if (!first) return '';
    let out = '';
    for (let i = 0; i < first.length; i++) {
      const families = new Map<string, (typeof first)[number]['families'][number]>();
      for (const snapshot of snapshots) for (const family of snapshot[i]?.families ?? []) if (!families.has(family.name)) families.set(family.name, family);
      for (const family of families.values()) {
        let lines = '';
        for (const snapshot of snapshots) lines += snapshot[i]?.bodies.get(family.name) ?? '';
        if (lines) out += familyHeader(family) + lines;
      }
    }
    return out;
  }

  /** Reads pg_database now (also after a poll found its database gone); concurrent calls share one run. */
  discover(): Promise<void> {
    // After stop() (a poll that found its database gone can ask late): the primary pool is being ended.
    if (this.stopped) return Promise.resolve();
    this.discovering ??= this.discoverOnce()
      // Never an unhandled rejection (it would end the process): one line, and the next discovery tries again.
      .catch((err: unknown) => this.options.log.error({ error: (err as Error).message }, 'database discovery failed'))
      .finally(() => {
        this.discovering = undefined;
      });
    return this.discovering;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.discover().finally(() => this.schedule(this.options.intervalMs));
    }, delayMs);
    this.timer.unref?.();
  }

  private async discoverOnce(): Promise<void> {
    const { log } = this.options;
    let names: string[];
    let primary: string | undefined;
    try {
      const { rows } = await this.options.primary.query<{ datname: string; primary: boolean }>(DISCOVERY_SQL);
      names = rows.map((r) => r.datname);
      primary = rows.find((r) => r.primary)?.datname;
    } catch (err) {
      // The watched databases keep being polled; the next discovery tries again.
      log.warn({ error: describeDatabaseError(err) }, 'database discovery failed');
      return;
    }
    if (this.stopped) return;
    const wanted = new Set(names.filter((name) => name === primary || this.selected(name)));
    const gone = [...this.watched.keys()].filter((name) => !wanted.has(name));
    for (const datname of gone) {
      log.info({ datname, reason: names.includes(datname) ? 'excluded' : 'dropped' }, 'database no longer watched');
      await this.unwatch(datname);
    }
    // Many new databases at once (the first discovery) start their first polls FIRST_POLL_SPACING_MS
    // apart (within one interval) rather than all asking the connection budget at the same moment.
    const fresh = [...wanted].filter((datname) => !this.watched.has(datname));
    const spacing = Math.min(FIRST_POLL_SPACING_MS, this.options.intervalMs / Math.max(1, fresh.length));
    fresh.forEach((datname, i) => {
      if (this.stopped) return;
      try {
        this.watch(datname, Math.floor(i * spacing));
      } catch (err) {
        // One database that cannot be watched does not keep the others of this discovery from being watched.
        log.error({ datname, error: (err as Error).message }, 'database not watched (the next discovery tries again)');
      }
    });
    if (!this.discovered) log.info({ databases: wanted.size }, 'watching every database');
    this.discovered = true;
  }

  private watch(datname: string, delayMs: number): void {
    const { log } = this.options;
    // Built from the collector files as read at start or at the last reload: never read again here.
    const set = this.collectors();
    const pool = this.options.openPool(datname);
    const observer = this.options.observer(datname);
    const poller = new Poller({
      collectors: set.collectors,
      schedule: set.schedule,
      fingerprint: set.fingerprint,
      pool,
      log: log.child({ datname }),
      observer,
      maxBackoffMs: this.options.maxBackoffMs,
      labels: { datname },
      // Dropped since discovery: discover again now, which forgets it with one line, instead of a warning per collector.
      expectedFailure: (err) => {
        if (!isDatabaseMissing(err)) return false;
        void this.discover();
        return true;
      },
    });
    this.watched.set(datname, { pool, poller, forget: () => observer.forgetAll() });
    poller.start(delayMs);
    log.debug({ datname }, 'database watched');
  }

  private async unwatch(datname: string): Promise<void> {
    const watched = this.watched.get(datname);
    if (!watched) return;
    this.watched.delete(datname);
    await watched.poller.stop();
    await watched.pool.end().catch(() => undefined);
    watched.forget();
  }
}
