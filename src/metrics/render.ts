import { isHistogramSample, type Labels, type MetricFamily, type Sample } from '../collectors/collector.js';

/*
 * Renders collector snapshots in the Prometheus text exposition format (0.0.4), once per poll,
 * so /metrics only concatenates strings and never touches the database.
 */

/** The sample lines of each family that has samples, by family name, without the HELP and TYPE lines. */
export function renderBodies(families: readonly MetricFamily[], samples: readonly Sample[]): Map<string, string> {
  const byFamily = new Map<string, Sample[]>();
  for (const sample of samples) {
    const list = byFamily.get(sample.family);
    if (list) list.push(sample);
    else byFamily.set(sample.family, [sample]);
  }
  const bodies = new Map<string, string>();
  for (const family of families) {
    const familySamples = byFamily.get(family.name);
    if (!familySamples || familySamples.length === 0) continue;
    const out: string[] = [];
    for (const sample of familySamples) {
      if (isHistogramSample(sample)) out.push(...renderHistogram(family.name, sample.buckets ?? family.buckets ?? [], sample.labels, sample.bucketCounts, sample.count, sample.sum));
      else out.push(`${family.name}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
    }
    bodies.set(family.name, `${out.join('\n')}\n`);
  }
  return bodies;
}

const headers = new WeakMap<MetricFamily, string>();

/** The HELP and TYPE lines of a family, escaped once per family object rather than at every render. */
export function familyHeader(family: MetricFamily): string {
  let header = headers.get(family);
  if (header === undefined) {
    header = `# HELP ${family.name} ${escapeHelp(family.help)}\n# TYPE ${family.name} ${family.type}\n`;
    headers.set(family, header);
  }
  return header;
}

/** Families in order, each with its header once and the sample lines of one or several snapshots. */
export function renderFamilies(families: readonly MetricFamily[], ...bodies: ReadonlyMap<string, string>[]): string {
  let out = '';
  for (const family of families) {
    let lines = '';
    for (const b of bodies) lines += b.get(family.name) ?? '';
    if (lines) out += familyHeader(family) + lines;
  }
  return out;
}

function renderHistogram(name: string, bounds: readonly number[], labels: Labels | undefined, counts: number[], count: number, sum: number): string[] {
  const lines = bounds.map((le, i) => `${name}_bucket${formatLabels({ ...labels, le: formatValue(le) })} ${formatValue(counts[i] ?? 0)}`);
  lines.push(`${name}_bucket${formatLabels({ ...labels, le: '+Inf' })} ${formatValue(count)}`);
  lines.push(`${name}_sum${formatLabels(labels)} ${formatValue(sum)}`);
  lines.push(`${name}_count${formatLabels(labels)} ${formatValue(count)}`);
  return lines;
}

/** Series one snapshot writes: one per sample, a histogram's per bucket plus +Inf, _sum and _count. */
export function countSeries(families: readonly MetricFamily[], samples: readonly Sample[]): number {
  const bucketsOf = new Map(families.map((f) => [f.name, f.buckets?.length ?? 0]));
  let series = 0;
  for (const sample of samples) series += isHistogramSample(sample) ? (sample.buckets?.length ?? bucketsOf.get(sample.family) ?? 0) + 3 : 1;
  return series;
}

export function formatLabels(labels: Labels | undefined): string {
  if (!labels) return '';
  const entries = Object.entries(labels);
  if (entries.length === 0) return '';
  return `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
