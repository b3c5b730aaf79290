/**
 * A custom SQL collector as both file formats describe it (our own collector file and postgres_exporter's
 * queries.yaml), validated and in plain options: what the collector factory (./collector.ts) turns into
 * the Collector contract. Nothing here reads files or config.
 */

/** How a result column becomes samples. */
export type CustomMetricKind =
  /** The column's value, as a gauge. */
  | 'gauge'
  /** The column's value, as a counter. */
  | 'counter'
  /** Columns `<c>` (upper bounds array), `<c>_bucket` (cumulative counts array), `<c>_sum`, `<c>_count`. */
  | 'histogram'
  /** Constant 1, labelled with the collector's label columns and the metric's own. */
  | 'info'
  /** postgres_exporter MAPPEDMETRIC: the column's text looked up in `mapping`, as a gauge. */
  | 'mapped'
  /** postgres_exporter DURATION: a Go duration string (`1h2m3s`) in milliseconds, as a gauge. */
  | 'duration'
  /** postgres_exporter: a result column no metric declares, published untyped when it reads as a number. */
  | 'untyped';

export interface CustomMetric {
  kind: CustomMetricKind;
  /** The family name. */
  name: string;
  help: string;
  /** The result column the value comes from (histogram: the bounds column; info: none). */
  column?: string;
  /** info: label columns of this metric only, after the collector's. */
  labels?: readonly string[];
  /** mapped: text -> value. */
  mapping?: Readonly<Record<string, number>>;
  /** Where it was declared, `file:line`, for error messages. */
  declaredAt: string;
}

export type CustomDialect =
  /** Our own file: a result must match the declared columns exactly, or the poll fails naming the column. */
  | 'custom'
  /** postgres_exporter's queries.yaml: its conversions and leniency (a bad value skips that sample). */
  | 'postgres_exporter';

export interface CustomCollectorDefinition {
  /** The collector's name: the `collector` label of the self-metrics. */
  name: string;
  dialect: CustomDialect;
  /** `file:line` of its declaration. */
  declaredAt: string;
  sql: string;
  /** Label columns, in order. */
  labels: readonly string[];
  /** postgres_exporter: result columns dropped without a word (DISCARD, and a histogram's `_bucket`/`_sum`/`_count`). */
  ignoredColumns?: readonly string[];
  /** postgres_exporter: the namespace; an undeclared numeric column `c` is published untyped as `<namespace>_c`. */
  namespace?: string;
  metrics: readonly CustomMetric[];
  /** Poll interval and statement timeout; undefined = the defaults of custom collectors. */
  intervalMs?: number;
  /** postgres_exporter `cache_seconds`: never poll more often than this. */
  minIntervalMs?: number;
  timeoutMs?: number;
  /** Inclusive bounds on server_version_num (e.g. 130000); outside them the collector publishes nothing. */
  minServerVersionNum?: number;
  maxServerVersionNum?: number;
  /** postgres_exporter `runonserver`: a semantic-version range of the server (see parseVersionRange). */
  runOnServer?: string;
  /** `primary`: only on the primary database of the exporter; `all`: on every database it watches. */
  databases: 'primary' | 'all';
  /** `fail`: a failed poll is a collector failure (the ExporterCollectorFailing alert); `skip`: logged, nothing published. */
  onError: 'fail' | 'skip';
  /** Most series one poll may publish; undefined = the default limit. */
  seriesLimit?: number;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A valid Prometheus metric name (the text format's rule). */
export function isMetricName(name: string): boolean {
  return METRIC_NAME.test(name);
}

/** A valid Prometheus label name; names starting with `__` are reserved for Prometheus. */
export function isLabelName(name: string): boolean {
  return LABEL_NAME.test(name) && !name.startsWith('__');
}

/** Every series name a family writes: a histogram also writes `_bucket`, `_sum` and `_count`. */
export function seriesNames(metric: Pick<CustomMetric, 'kind' | 'name'>): string[] {
  return metric.kind === 'histogram' ? [metric.name, `${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`] : [metric.name];
}

/**
 * A PostgreSQL version as written by people (`13`, `9.6`, `15.2`, `9.6.24`) or as server_version_num
 * (`130000`), as server_version_num. `upper` makes a partial version cover all its releases: `16` -> 169999.
 */
export function serverVersionNum(text: string, upper = false): number | undefined {
  if (/^\d{5,6}$/.test(text)) return Number(text);
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(text);
  if (!m) return undefined;
  const major = Number(m[1]);
  const fill = upper ? 99 : 0;
  if (major >= 10) {
    if (m[3] !== undefined) return undefined;
    return major * 10000 + (m[2] !== undefined ? Number(m[2]) : upper ? 9999 : 0);
  }
  if (m[2] === undefined) return major * 10000 + (upper ? 9999 : 0);
  return major * 10000 + Number(m[2]) * 100 + (m[3] !== undefined ? Number(m[3]) : fill);
}

/** server_version_num as a semantic version: 150004 -> 15.4.0, 90624 -> 9.6.24. */
export function semverOfServer(versionNum: number): [number, number, number] {
  const major = Math.floor(versionNum / 10000);
  if (major >= 10) return [major, versionNum % 10000, 0];
  return [major, Math.floor(versionNum / 100) % 100, versionNum % 100];
}

type Comparator = { op: '<' | '<=' | '>' | '>=' | '=' | '!='; version: [number, number, number] };

/**
 * A semantic-version range as postgres_exporter writes `runonserver` (blang/semver: `>=10.0.0 <13.0.0`,
 * `||` between alternatives), as a predicate on server_version_num; undefined when it does not parse.
 */
export function parseVersionRange(text: string): ((versionNum: number) => boolean) | undefined {
  const alternatives: Comparator[][] = [];
  for (const part of text.split('||')) {
    const comparators: Comparator[] = [];
    for (const token of part.trim().split(/\s+/).filter(Boolean)) {
      const m = /^(>=|<=|>|<|==|=|!=|!)?v?(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(token);
      if (!m) return undefined;
      const op = (m[1] === '==' || m[1] === undefined ? '=' : m[1] === '!' ? '!=' : m[1]) as Comparator['op'];
      comparators.push({ op, version: [Number(m[2]), Number(m[3] ?? 0), Number(m[4] ?? 0)] });
    }
    if (comparators.length === 0) return undefined;
    alternatives.push(comparators);
  }
  return (versionNum) => {
    const v = semverOfServer(versionNum);
    return alternatives.some((cs) => cs.every((c) => compareOp(compareVersions(v, c.version), c.op)));
  };
}

function compareVersions(a: [number, number, number], b: [number, number, number]): number {
  for (let i = 0; i < 3; i += 1) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  return 0;
}

function compareOp(cmp: number, op: Comparator['op']): boolean {
  switch (op) {
    case '<':
      return cmp < 0;
    case '<=':
      return cmp <= 0;
    case '>':
      return cmp > 0;
    case '>=':
      return cmp >= 0;
    case '=':
      return cmp === 0;
    case '!=':
      return cmp !== 0;
  }
}
