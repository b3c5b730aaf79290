import type { CollectContext, Collector, Labels, MetricFamily, MetricType, Sample } from '../collectors/collector.js';
import { goDurationMs, goFloat, goLabel, goUint, numberArray, strictNumber } from './column-values.js';
import { parseVersionRange, type CustomCollectorDefinition, type CustomMetric } from './definition.js';

/**
 * A custom SQL collector: one statement, its rows mapped to samples as the definition declares. In our
 * own dialect a result that does not match the declared columns fails the poll naming the column; in
 * postgres_exporter's, values it would skip are skipped (one log line per poll says which).
 */

/** A poll that failed because of what the statement returned, not because of the database. */
export class ResultMismatchError extends Error {
  constructor(collector: string, message: string) {
    super(`${collector}: ${message}`);
    this.name = 'ResultMismatchError';
  }
}

const FAMILY_TYPE: Record<CustomMetric['kind'], MetricType> = {
  gauge: 'gauge',
  counter: 'counter',
  histogram: 'histogram',
  info: 'gauge',
  mapped: 'gauge',
  duration: 'gauge',
  untyped: 'untyped',
};

const SERVER_VERSION_SQL = "SELECT current_setting('server_version_num')::int AS version";

export function customCollector(definition: CustomCollectorDefinition): Collector {
  const declared: MetricFamily[] = definition.metrics.map((m) => family(definition, m));
  /** postgres_exporter: undeclared numeric columns seen in the last result, published untyped. */
  let untyped: MetricFamily[] = [];
  const inRange = definition.runOnServer ? parseVersionRange(definition.runOnServer) : undefined;
  const gated = inRange !== undefined || definition.minServerVersionNum !== undefined || definition.maxServerVersionNum !== undefined;
  /** Asked once, and again after a failed poll (the server may have been upgraded in between). */
  let serverVersion: number | undefined;

  async function collect(ctx: CollectContext): Promise<Sample[]> {
    if (gated) {
      serverVersion ??= (await ctx.query<{ version: number }>(SERVER_VERSION_SQL))[0]!.version;
      const { minServerVersionNum: min, maxServerVersionNum: max } = definition;
      if ((min !== undefined && serverVersion < min) || (max !== undefined && serverVersion > max) || (inRange && !inRange(serverVersion))) {
        ctx.log.debug({ serverVersion }, 'server version outside the collector\'s range: nothing to collect');
        return [];
      }
    }
    const rows = await ctx.query(definition.sql);
    if (definition.dialect === 'custom') return customSamples(definition, rows);
    const { samples, problems, families } = postgresExporterSamples(definition, rows);
    untyped = families;
    if (problems.length > 0) ctx.log.info({ skipped: problems.length, first: problems.slice(0, 3) }, 'values skipped as postgres_exporter skips them');
    return samples;
  }

  return {
    name: definition.name,
    get families() {
      return untyped.length ? [...declared, ...untyped] : declared;
    },
    async collect(ctx) {
      try {
        const samples = await collect(ctx);
        checkUniqueSeries(definition.name, samples);
        return samples;
      } catch (err) {
        serverVersion = undefined;
        if (definition.onError === 'fail') throw err;
        ctx.log.info({ error: (err as Error).message }, 'custom collector failed; on_error: skip publishes nothing');
        return [];
      }
    },
  };
}

function family(definition: CustomCollectorDefinition, metric: CustomMetric): MetricFamily {
  return {
    name: metric.name,
    help: metric.help,
    type: FAMILY_TYPE[metric.kind],
    labelNames: [...definition.labels, ...(metric.labels ?? [])],
    ...(definition.dialect === 'postgres_exporter' ? { compatibility: 'postgres_exporter' as const } : {}),
  };
}

/** Two rows with the same label values would be one series twice: invalid exposition. */
function checkUniqueSeries(collector: string, samples: Sample[]): void {
  const seen = new Set<string>();
  for (const sample of samples) {
    const key = `${sample.family}\u0000${JSON.stringify(sample.labels ?? {})}`;
    if (seen.has(key)) throw new ResultMismatchError(collector, `two rows have the same label values for ${sample.family}: add a label column that tells them apart`);
    seen.add(key);
  }
}

/** Every column our dialect expects in the result. */
function expectedColumns(definition: CustomCollectorDefinition): Map<string, string> {
  const columns = new Map<string, string>();
  for (const label of definition.labels) columns.set(label, `label of ${definition.name}`);
  for (const metric of definition.metrics) {
    if (metric.kind === 'histogram') for (const s of ['', '_bucket', '_sum', '_count']) columns.set(`${metric.column!}${s}`, `${metric.name} (${metric.declaredAt})`);
    else if (metric.column) columns.set(metric.column, `${metric.name} (${metric.declaredAt})`);
    for (const label of metric.labels ?? []) columns.set(label, `label of ${metric.name} (${metric.declaredAt})`);
  }
  return columns;
}

function customSamples(definition: CustomCollectorDefinition, rows: Record<string, unknown>[]): Sample[] {
  const fail = (message: string) => new ResultMismatchError(definition.name, message);
  if (rows.length === 0) return [];
  const expected = expectedColumns(definition);
  const present = Object.keys(rows[0]!);
  for (const [column, by] of expected) {
    if (!present.includes(column)) throw fail(`column "${column}" (${by}) is not in the result (its columns: ${present.join(', ')})`);
  }
  for (const column of present) {
    if (!expected.has(column)) throw fail(`column "${column}" of the result is not declared (declare it as a label or a metric, or leave it out of the SELECT)`);
  }
  const samples: Sample[] = [];
  rows.forEach((row, index) => {
    const labels: Labels = {};
    for (const label of definition.labels) labels[label] = goLabel(row[label]);
    const number = (column: string) => {
      const value = strictNumber(row[column]);
      if (value === undefined) throw fail(`column "${column}" holds a value that is not a number (row ${index + 1})`);
      return value;
    };
    for (const metric of definition.metrics) {
      if (metric.kind === 'info') {
        const own: Labels = { ...labels };
        for (const label of metric.labels ?? []) own[label] = goLabel(row[label]);
        samples.push({ family: metric.name, labels: own, value: 1 });
      } else if (metric.kind === 'histogram') {
        const c = metric.column!;
        const bounds = numberArray(row[c], strictNumber as (v: unknown) => number | undefined);
        const counts = numberArray(row[`${c}_bucket`], strictNumber as (v: unknown) => number | undefined);
        if (!bounds || bounds.some((b) => b === null || Number.isNaN(b))) throw fail(`column "${c}" must be an array of bucket upper bounds (row ${index + 1})`);
        if (!counts || counts.length !== bounds.length) throw fail(`column "${c}_bucket" must be an array of cumulative counts, one per bound of "${c}" (row ${index + 1})`);
        const sum = number(`${c}_sum`);
        const count = number(`${c}_count`);
        if (sum === null || count === null) continue;
        const order = bounds.map((b, i) => i).sort((a, b) => bounds[a]! - bounds[b]!);
        samples.push({ family: metric.name, labels, buckets: order.map((i) => bounds[i]!), bucketCounts: order.map((i) => counts[i]!), count, sum });
      } else {
        const value = number(metric.column!);
        if (value !== null) samples.push({ family: metric.name, labels, value });
      }
    }
  });
  return samples;
}

/** queryNamespaceMapping of postgres_exporter 0.11 (cmd/postgres_exporter/namespace.go), row by row. */
function postgresExporterSamples(definition: CustomCollectorDefinition, rows: Record<string, unknown>[]) {
  const fail = (message: string) => new ResultMismatchError(definition.name, message);
  const byColumn = new Map(definition.metrics.map((m) => [m.column!, m]));
  const skip = new Set([...definition.labels, ...(definition.ignoredColumns ?? [])]);
  const samples: Sample[] = [];
  const problems: string[] = [];
  const untyped = new Map<string, MetricFamily>();
  for (const row of rows) {
    const columns = Object.keys(row);
    const labels: Labels = {};
    for (const label of definition.labels) labels[label] = goLabel(row[label]);
    for (const column of columns) {
      if (skip.has(column)) continue;
      const metric = byColumn.get(column);
      const value = row[column];
      if (!metric) {
        // An undeclared column: published untyped when it reads as a number, as postgres_exporter does.
        const v = goFloat(value);
        if (v === undefined) {
          problems.push(`column "${column}": not a number, discarded`);
          continue;
        }
        const name = `${definition.namespace!}_${column}`;
        if (!untyped.has(name)) {
          untyped.set(name, { name, help: `Unknown metric from ${definition.namespace!}`, type: 'untyped', labelNames: definition.labels, compatibility: 'postgres_exporter' });
        }
        samples.push({ family: name, labels, value: v });
        continue;
      }
      if (metric.kind === 'histogram') {
        const bounds = numberArray(value, goFloat);
        if (!bounds) throw fail(`column "${column}" (${metric.declaredAt}): the HISTOGRAM's bucket bounds are not an array of numbers`);
        if (!columns.includes(`${column}_bucket`)) {
          problems.push(`missing column "${column}_bucket"`);
          continue;
        }
        const counts = numberArray(row[`${column}_bucket`], (v) => {
          const n = goFloat(v);
          return n !== undefined && Number.isInteger(n) ? n : undefined;
        });
        if (!counts) throw fail(`column "${column}_bucket" (${metric.declaredAt}): the HISTOGRAM's bucket counts are not an array of integers`);
        if (!columns.includes(`${column}_sum`)) {
          problems.push(`missing column "${column}_sum"`);
          continue;
        }
        const sum = goFloat(row[`${column}_sum`]);
        if (sum === undefined) {
          problems.push(`column "${column}_sum": not a number`);
          continue;
        }
        if (!columns.includes(`${column}_count`)) {
          problems.push(`missing column "${column}_count"`);
          continue;
        }
        const count = goUint(row[`${column}_count`]);
        if (count === undefined) {
          problems.push(`column "${column}_count": not a whole number`);
          continue;
        }
        // prometheus.MustNewConstHistogram: a map from bound to count (a repeated bound keeps the last), sorted.
        const buckets = new Map<number, number>();
        bounds.forEach((bound, i) => {
          if (i < counts.length && Number.isFinite(bound)) buckets.set(bound, counts[i]!);
        });
        const sorted = [...buckets.keys()].sort((a, b) => a - b);
        samples.push({ family: metric.name, labels, buckets: sorted, bucketCounts: sorted.map((b) => buckets.get(b)!), count, sum });
        continue;
      }
      const v = convert(metric, value);
      if (v === undefined) {
        problems.push(`column "${column}": value not usable as ${metric.kind}`);
        continue;
      }
      samples.push({ family: metric.name, labels, value: v });
    }
  }
  return { samples, problems, families: [...untyped.values()] };
}

/**
 * postgres_exporter (0.11 and still at the time of writing) never applies its MAPPEDMETRIC and DURATION
 * conversions: queryNamespaceMapping reads every value column with dbToFloat64. So a value that reads
 * as a number is published as that number, exactly as there; only where postgres_exporter publishes
 * nothing (text) do we apply what the usage promises: the metric_mapping, or a Go duration in ms.
 */
function convert(metric: CustomMetric, value: unknown): number | undefined {
  const number = goFloat(value);
  if (number !== undefined) return number;
  if (metric.kind === 'mapped') return typeof value === 'string' && metric.mapping && Object.hasOwn(metric.mapping, value) ? metric.mapping[value] : undefined;
  if (metric.kind === 'duration') return goDurationMs(value);
  return undefined;
}
