import { Counter, Gauge, type Registry } from 'prom-client';

/** The exporter's view of its own collectors, published uniformly for every collector. */
export interface CollectorObserver {
  observe(collector: string, durationSeconds: number, ok: boolean): void;
  /** An optional part of the database (collectors/features.ts) found present (true) or absent. */
  feature(feature: string, enabled: boolean): void;
  /** A collector removed by a reload: its series go. */
  forget?(collector: string): void;
}

/** The self-metrics, and with auto-discovery an observer per watched database whose series carry its datname. */
export interface SelfMetrics extends CollectorObserver {
  forDatabase(datname: string): CollectorObserver & { forgetAll(): void };
}

export function registerSelfMetrics(registry: Registry): SelfMetrics {
  const duration = new Gauge({
    name: 'pgvector_exporter_collector_duration_seconds',
    help: 'Duration of the last poll of each collector, in seconds.',
    labelNames: ['collector', 'datname'],
    registers: [registry],
  });
  const success = new Gauge({
    name: 'pgvector_exporter_collector_success',
    help: 'Whether the last poll of each collector succeeded (1) or failed (0).',
    labelNames: ['collector', 'datname'],
    registers: [registry],
  });
  const lastSuccess = new Gauge({
    name: 'pgvector_exporter_collector_last_success_timestamp_seconds',
    help: 'Unix time of the last successful poll of each collector (0 = never): tells how old its series are.',
    labelNames: ['collector', 'datname'],
    registers: [registry],
  });
  const polls = new Counter({
    name: 'pgvector_exporter_collector_polls_total',
    help: 'Polls of each collector, by result (success, failure).',
    labelNames: ['collector', 'result', 'datname'],
    registers: [registry],
  });
  const features = new Gauge({
    name: 'pgvector_exporter_feature_enabled',
    help: 'Whether an optional part of the database is present and readable, so its metrics are collected (1), or absent or not granted, so they are not (0, never a failed poll): health_check, query_log, embeddings, embedding_failures, recall, expected_indexes, pg_stat_statements, pg_monitor.',
    labelNames: ['feature', 'datname'],
    registers: [registry],
  });
  // postgres_exporter's name, used by its mixin's PostgresHasExporterErrors: here 1 while the last poll of
  // any enabled collector failed (there: the last scrape). "No data" polls count as successes.
  const lastScrapeError = new Gauge({
    name: 'pg_exporter_last_scrape_error',
    help: 'Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success): 1 while the last poll of any collector failed.',
    registers: [registry],
  });
  lastScrapeError.set(0);
  // Keyed by datname and collector: a collector failing in any watched database counts.
  const failing = new Set<string>();
  const everSucceeded = new Set<string>();
  /** The observer of one database ({} = the primary connection, whose series carry no datname). */
  const observer = (base: { datname?: string }, seen?: { collectors: Set<string>; features: Set<string> }): CollectorObserver => {
    const key = (collector: string) => `${base.datname ?? ''}\u0000${collector}`;
    return {
      forget(collector) {
        for (const gauge of [duration, success, lastSuccess]) gauge.remove({ ...base, collector });
        for (const result of ['success', 'failure']) polls.remove({ ...base, collector, result });
        everSucceeded.delete(key(collector));
        failing.delete(key(collector));
        seen?.collectors.delete(collector);
        lastScrapeError.set(failing.size > 0 ? 1 : 0);
      },
      feature(feature, enabled) {
        seen?.features.add(feature);
        features.set({ ...base, feature }, enabled ? 1 : 0);
      },
      observe(collector, durationSeconds, ok) {
        seen?.collectors.add(collector);
        const labels = { ...base, collector };
        duration.set(labels, durationSeconds);
        success.set(labels, ok ? 1 : 0);
        polls.inc({ ...labels, result: ok ? 'success' : 'failure' });
        if (ok) failing.delete(key(collector));
        else failing.add(key(collector));
        lastScrapeError.set(failing.size > 0 ? 1 : 0);
        if (ok) {
          everSucceeded.add(key(collector));
          lastSuccess.set(labels, Date.now() / 1000);
        } else if (!everSucceeded.has(key(collector))) {
          lastSuccess.set(labels, 0);
        }
      },
    };
  };
  return {
    ...observer({}),
    forDatabase(datname) {
      const seen = { collectors: new Set<string>(), features: new Set<string>() };
      const inner = observer({ datname }, seen);
      return {
        ...inner,
        // A database no longer watched: every series of its own goes.
        forgetAll() {
          for (const collector of [...seen.collectors]) inner.forget!(collector);
          for (const feature of seen.features) features.remove({ datname, feature });
        },
      };
    },
  };
}
