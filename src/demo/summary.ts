import { histogramBuckets, parseMetricsText, quantileBetween, select, type Buckets, type TextSample } from '../metrics/exposition-text.js';
import type { WorkloadStats } from './workload.js';

/**
 * The demo's live summary, read the way an operator would read it: latency, pool and health from the
 * exporter's /metrics, alerts from Prometheus' API. Percentiles are over the interval since the
 * previous summary, not since start, so a burst of slow queries shows up at once.
 */
export interface Scrape {
  at: number;
  samples: TextSample[];
  buckets: Map<string, Buckets>;
}

export interface AlertState {
  name: string;
  state: 'firing' | 'pending' | string;
}

export const LATENCY_FAMILY = 'rag_query_duration_seconds';
const SHOWN_TYPES = ['vector_search', 'hybrid_search', 'insert'];

export function readScrape(text: string, at = Date.now()): Scrape {
  const samples = parseMetricsText(text);
  const buckets = new Map<string, Buckets>();
  for (const s of select(samples, `${LATENCY_FAMILY}_count`)) {
    const type = s.labels.query_type ?? '';
    buckets.set(type, histogramBuckets(samples, LATENCY_FAMILY, { query_type: type }));
  }
  return { at, samples, buckets };
}

function value(samples: TextSample[], name: string, labels: Record<string, string> = {}): number | undefined {
  return select(samples, name, labels)[0]?.value;
}

const percent = (ratio: number | undefined) => (ratio === undefined ? '?' : `${Math.round(ratio * 100)}%`);

function latencyLine(now: Scrape, previous: Scrape | undefined): string {
  const seconds = previous ? (now.at - previous.at) / 1000 : undefined;
  const parts = SHOWN_TYPES.map((type) => {
    const after = now.buckets.get(type);
    if (!after) return `${type} -`;
    const before = previous?.buckets.get(type);
    const p95 = quantileBetween(0.95, before, after);
    const count = (after.get(Infinity) ?? 0) - (before?.get(Infinity) ?? 0);
    const rate = seconds ? ` ${(count / seconds).toFixed(1)}/s` : '';
    return `${type} ${p95 === undefined ? '-' : `${Math.round(p95 * 1000)} ms`}${rate}`;
  });
  return `p95 ${previous ? 'since last' : 'since start'}: ${parts.join(', ')}`;
}

function indexLine(samples: TextSample[]): string {
  const index = { indexrelname: 'idx_embeddings_vector' };
  const present = value(samples, 'pg_index_expected_present', index);
  const valid = value(samples, 'pg_index_valid', index);
  const recall = select(samples, 'pgvector_index_recall_ratio')[0]?.value;
  const state = present === undefined ? 'not yet collected' : present === 0 ? 'MISSING' : valid === 0 ? 'INVALID' : 'present and valid';
  return `vector index ${state}${recall === undefined ? '' : `, recall@10 ${recall.toFixed(3)}`}`;
}

function healthLine(samples: TextSample[]): string {
  const current = select(samples, 'rag_health_check_status').filter((s) => s.value === 1);
  if (current.length === 0) return 'health: not yet collected';
  const bad = current.filter((s) => s.labels.status !== 'HEALTHY').map((s) => `${s.labels.component} ${s.labels.status}`);
  return bad.length === 0 ? `health: all ${current.length} components HEALTHY` : `health: ${bad.join(', ')}`;
}

function alertLine(alerts: AlertState[] | undefined): string {
  if (!alerts) return 'alerts: (no Prometheus)';
  const firing = alerts.filter((a) => a.state === 'firing').map((a) => a.name);
  const pending = alerts.filter((a) => a.state === 'pending').map((a) => a.name);
  const unique = (names: string[]) => [...new Set(names)].join(', ');
  return `alerts: ${firing.length ? `FIRING ${unique(firing)}` : 'none firing'}${pending.length ? `; pending ${unique(pending)}` : ''}`;
}

export function summaryLines(now: Scrape, previous: Scrape | undefined, alerts: AlertState[] | undefined, workload: WorkloadStats): string[] {
  const up = value(now.samples, 'pg_up');
  const app = value(now.samples, 'rag_app_pool_utilization_ratio');
  const server = value(now.samples, 'pg_connections_utilization_ratio');
  const workloadNote = `workload: ${workload.failed} failed, ${workload.slow} slow${workload.dropped ? `, ${workload.dropped} dropped` : ''}`;
  return [
    latencyLine(now, previous),
    `pg_up ${up ?? '?'} | pool: rag-search ${percent(app)}, server ${percent(server)} | ${indexLine(now.samples)} | ${workloadNote}`,
    `${healthLine(now.samples)} | ${alertLine(alerts)}`,
  ];
}

/** Active alerts from Prometheus' /api/v1/alerts; undefined when it cannot be asked. */
export async function fetchAlerts(prometheusUrl: string): Promise<AlertState[] | undefined> {
  try {
    const response = await fetch(`${prometheusUrl}/api/v1/alerts`, { signal: AbortSignal.timeout(3000) });
    const body = (await response.json()) as { data?: { alerts?: { labels: Record<string, string>; state: string }[] } };
    return (body.data?.alerts ?? []).map((a) => ({ name: a.labels.alertname ?? '?', state: a.state }));
  } catch {
    return undefined;
  }
}
