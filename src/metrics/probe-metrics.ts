import { Counter, Gauge, type Registry } from 'prom-client';

/** Why a probe was refused before any database was asked. */
export const PROBE_REFUSAL_REASONS = ['bad_request', 'unknown_auth_module', 'too_many_targets'] as const;
export type ProbeRefusalReason = (typeof PROBE_REFUSAL_REASONS)[number];

/** The exporter's view of its /probe targets, on its own /metrics (never in a probe's answer). */
export interface ProbeObserver {
  live(count: number): void;
  opened(): void;
  closed(): void;
  refused(reason: ProbeRefusalReason): void;
}

export function registerProbeMetrics(registry: Registry): ProbeObserver {
  const targets = new Gauge({
    name: 'pgvector_exporter_probe_targets',
    help: 'Targets of /probe polled right now, each with its own pool, poller and cache (at most probe.max_targets).',
    registers: [registry],
  });
  const opened = new Counter({
    name: 'pgvector_exporter_probe_targets_opened_total',
    help: 'Targets of /probe opened (pool and poller started) on their first probe.',
    registers: [registry],
  });
  const closed = new Counter({
    name: 'pgvector_exporter_probe_targets_closed_total',
    help: 'Targets of /probe closed after probe.idle_timeout without a probe (pool ended, poller stopped).',
    registers: [registry],
  });
  const refused = new Counter({
    name: 'pgvector_exporter_probe_refused_total',
    help: 'Probes refused before any database was asked, by reason (bad_request 400, unknown_auth_module 400, too_many_targets 503).',
    labelNames: ['reason'],
    registers: [registry],
  });
  targets.set(0);
  for (const reason of PROBE_REFUSAL_REASONS) refused.inc({ reason }, 0);
  return {
    live: (count) => targets.set(count),
    opened: () => opened.inc(),
    closed: () => closed.inc(),
    refused: (reason) => refused.inc({ reason }),
  };
}
