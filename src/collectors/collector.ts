import type { Logger } from '../log.js';
import type { Feature } from './features.js';

/**
 * The contract every collector implements. Collectors return plain samples; they never import
 * prom-client, express or node-cron. The poller runs each on its own interval, under its own
 * statement_timeout and deadline (CollectContext), and swaps in the complete new snapshot it returns.
 */
export type Labels = Record<string, string>;

/** `untyped` only for postgres_exporter's queries.yaml, which publishes undeclared numeric columns that way. */
export type MetricType = 'gauge' | 'counter' | 'histogram' | 'untyped';

export interface MetricFamily {
  /** Full metric name, base units in the name (`_seconds`, `_bytes`, `_ratio`), `_total` on counters. */
  name: string;
  help: string;
  type: MetricType;
  labelNames: readonly string[];
  /** Histogram upper bounds in seconds (without +Inf). */
  buckets?: readonly number[];
  /**
   * Named, typed and labelled exactly as prometheus-community/postgres_exporter publishes it, so community
   * dashboards and alerts keep working. Such families keep that exporter's conventions (counters without
   * `_total`, `pg_stat_activity_count`), so promtool's naming lints are not applied to them.
   */
  compatibility?: 'postgres_exporter';
}

/** The names of the families that follow postgres_exporter rather than this project's naming rules. */
export function postgresExporterFamilies(families: readonly MetricFamily[]): Set<string> {
  return new Set(families.filter((f) => f.compatibility === 'postgres_exporter').map((f) => f.name));
}

export interface GaugeSample {
  family: string;
  labels?: Labels;
  value: number;
}

export interface HistogramSample {
  family: string;
  labels?: Labels;
  /** Cumulative counts, one per bucket (aligned with `buckets`, else MetricFamily.buckets), +Inf is `count`. */
  bucketCounts: number[];
  /** Upper bounds of this sample's own buckets, ascending, when they come with the data (custom SQL collectors). */
  buckets?: readonly number[];
  count: number;
  sum: number;
}

export type Sample = GaugeSample | HistogramSample;

/** Runs one statement on the collector's connection, under its statement_timeout. */
export type QueryFn = <R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params?: unknown[]) => Promise<R[]>;

export interface PoolStats {
  total: number;
  idle: number;
  waiting: number;
}

export interface CollectContext {
  query: QueryFn;
  log: Logger;
  /** The exporter's own pg pool, for the connectivity collector. */
  poolStats: () => PoolStats;
  /**
   * When this poll's time is up (Date.now() scale). Each statement also runs under a statement_timeout
   * of the whole poll's time; a collector that runs several statements starts no new one past it.
   */
  deadline: number;
  /** Aborted when the deadline passes or the exporter stops: start no new work. */
  signal: AbortSignal;
  /**
   * An optional part of the database (collectors/features.ts) is there (true) or not: published as
   * pgvector_exporter_feature_enabled, logged once per change with the reason. Not a failure.
   */
  reportFeature: (feature: Feature, enabled: boolean, reason?: string) => void;
}

export interface Collector {
  /** One of COLLECTOR_NAMES; also the `collector` label of the self-metrics. */
  readonly name: string;
  readonly families: readonly MetricFamily[];
  /**
   * Keep the last snapshot when a poll fails, instead of dropping it. Only for process-cumulative
   * counters (the query-log histogram), whose values stay true while the database is unreachable.
   */
  readonly keepOnFailure?: boolean;
  /**
   * Poll on a dedicated connection of its own, never on the shared pool (pg_up): what it measures is
   * the server, which a pool held by other, blocked collectors must not make look down.
   */
  readonly ownConnection?: boolean;
  /**
   * What a failed poll publishes instead of nothing (pg_up 0): a poll abandoned at its deadline (a
   * connection that takes longer to open than the collector's timeout) still says the server is down.
   */
  readonly failureSamples?: () => Sample[];
  collect(ctx: CollectContext): Promise<Sample[]>;
}

/** A collector with nothing to report (e.g. an empty table to sample): logged at debug, a successful poll without series. */
export class NoDataError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NoDataError';
  }
}

export function isHistogramSample(sample: Sample): sample is HistogramSample {
  return 'bucketCounts' in sample;
}
