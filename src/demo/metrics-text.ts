/** A minimal reader of the Prometheus text format, enough for the demo's live summary. */
export interface TextSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseMetricsText(text: string): TextSample[] {
  const samples: TextSample[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) {
      labels[key!] = value!.replace(/\\n/g, '\n').replace(/\\(.)/g, '$1');
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** Samples of one family whose labels include every given label. */
export function select(samples: TextSample[], name: string, labels: Record<string, string> = {}): TextSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** Cumulative bucket counts of one histogram series, by upper bound. */
export type Buckets = Map<number, number>;

export function histogramBuckets(samples: TextSample[], family: string, labels: Record<string, string>): Buckets {
  const buckets: Buckets = new Map();
  for (const s of select(samples, `${family}_bucket`, labels)) {
    buckets.set(s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), s.value);
  }
  return buckets;
}

/**
 * The q-quantile of the observations between two scrapes of a cumulative histogram, interpolated
 * linearly inside the bucket as PromQL's histogram_quantile() does. undefined when nothing happened.
 */
export function quantileBetween(q: number, before: Buckets | undefined, after: Buckets): number | undefined {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((b) => (after.get(b) ?? 0) - (before?.get(b) ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return undefined;
  const rank = q * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! >= rank) {
      const upper = bounds[i]!;
      const lower = i === 0 ? 0 : bounds[i - 1]!;
      // Beyond the last finite bucket, the best estimate is its bound, as in histogram_quantile().
      if (upper === Infinity) return lower;
      const below = i === 0 ? 0 : counts[i - 1]!;
      const inBucket = counts[i]! - below;
      return inBucket > 0 ? lower + ((upper - lower) * (rank - below)) / inBucket : upper;
    }
  }
  return bounds.at(-2);
}
