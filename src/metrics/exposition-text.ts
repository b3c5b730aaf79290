/**
 * A minimal reader of the Prometheus text exposition format: the one parser the demo's live summary,
 * the tests and the benchmarks use to read back a /metrics page. Not used by the exporter itself.
 */
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
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    // One pass, so an escaped backslash before an `n` stays a backslash and an `n`.
    for (const [, key, value] of (match[2] ?? '').matchAll(LABEL)) {
      labels[key!] = value!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The `# TYPE` of each family, by family name, in the order of the text. */
export function familyTypes(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
  return types;
}

/** Samples of one family whose labels include every given label. */
export function select(samples: readonly TextSample[], name: string, labels: Record<string, string> = {}): TextSample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The sum of the values of the samples select() finds (0 when none). */
export function sumOf(samples: readonly TextSample[], name: string, labels: Record<string, string> = {}): number {
  return select(samples, name, labels).reduce((total, s) => total + s.value, 0);
}

/** The value of the first sample of a family whose labels include every given label, or undefined. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  return select(parseMetricsText(text), name, labels)[0]?.value;
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
