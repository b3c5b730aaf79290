import type { Node as YamlNode } from 'yaml';
import { isMetricName, parseVersionRange, type CustomCollectorDefinition, type CustomMetric } from './definition.js';
import { YamlFile } from './yaml-file.js';

/**
 * postgres_exporter's `--extend.query-path` file (queries.yaml), read as postgres_exporter 0.11 reads it
 * (cmd/postgres_exporter/queries.go parseUserQueries, postgres_exporter.go makeDescMap):
 *
 *   <namespace>:
 *     query: SELECT ...
 *     master: true          # only on the primary database (postgres_exporter: the first DSN)
 *     cache_seconds: 30     # never run more often than this
 *     runonserver: ">=10.0.0"
 *     metrics:
 *       - <column>: { usage: LABEL | COUNTER | GAUGE | MAPPEDMETRIC | DURATION | HISTOGRAM | DISCARD, description: ..., metric_mapping: {...} }
 *
 * Each metric column becomes `<namespace>_<column>` (DURATION: `<namespace>_<column>_milliseconds`), labelled
 * with every LABEL column; a HISTOGRAM column `<c>` holds the bucket upper bounds and `<c>_bucket`, `<c>_sum`,
 * `<c>_count` the rest. Where we are stricter than postgres_exporter (which ignores what it does not know), a
 * typo stops the exporter with file:line:key rather than silently dropping a metric: an unknown key or usage,
 * a column declared twice, a name that is not a valid Prometheus name.
 */

const NAMESPACE_KEYS = ['query', 'metrics', 'master', 'cache_seconds', 'runonserver'] as const;
const COLUMN_KEYS = ['usage', 'description', 'metric_mapping', 'pg_version'] as const;
const USAGES = ['LABEL', 'DISCARD', 'COUNTER', 'GAUGE', 'MAPPEDMETRIC', 'DURATION', 'HISTOGRAM'] as const;
type Usage = (typeof USAGES)[number];

export function readQueriesYaml(path: string): CustomCollectorDefinition[] {
  const text = YamlFile.text(path);
  let file: YamlFile;
  try {
    file = new YamlFile(path, text);
  } catch (err) {
    // go-yaml accepts a double-quoted query whose continuation lines are not indented (upstream's own
    // exporter/tests/user_queries_ok.yaml has one); YAML 1.2 does not. Indenting them changes no line number.
    const lenient = indentQuotedContinuations(text);
    if (lenient === text) throw err;
    try {
      file = new YamlFile(path, lenient);
    } catch {
      throw err;
    }
  }
  return parseQueriesYaml(file);
}

/** Indents the continuation lines of `key: "...` double-quoted values under their key. */
export function indentQuotedContinuations(text: string): string {
  const lines = text.split('\n');
  let indent: number | undefined;
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i]!;
    if (indent !== undefined) {
      const lead = /^ */.exec(line)![0].length;
      if (line.trim() !== '' && lead < indent) lines[i] = ' '.repeat(indent - lead) + line;
      if (closesQuote(line, 0)) indent = undefined;
      continue;
    }
    const open = /^( *)(?:- )?[^\s"#][^"#]*:\s+"/.exec(line);
    if (open && !closesQuote(line, open[0].length)) indent = open[1]!.length + 2;
  }
  return lines.join('\n');
}

/** True when the double-quoted scalar running from `from` ends on this line (an unescaped "). */
function closesQuote(line: string, from: number): boolean {
  for (let i = from; i < line.length; i += 1) {
    if (line[i] === '\\') i += 1;
    else if (line[i] === '"') return true;
  }
  return false;
}

export function parseQueriesYaml(file: YamlFile): CustomCollectorDefinition[] {
  if (file.isNull(file.root)) return [];
  return file.entries(file.root, '(file)').map(({ name, keyNode, value }) => parseNamespace(file, name, keyNode, value));
}

function parseNamespace(file: YamlFile, namespace: string, keyNode: YamlNode, node: YamlNode | null): CustomCollectorDefinition {
  if (!isMetricName(namespace)) throw file.error(keyNode, namespace, 'is not a valid Prometheus metric name prefix');
  const entries = file.entries(node, namespace);
  file.checkKeys(entries, NAMESPACE_KEYS, `${namespace}.`);
  const get = (name: string) => entries.find((e) => e.name === name && !file.isNull(e.value));
  const queryEntry = get('query');
  if (!queryEntry) throw file.error(keyNode, `${namespace}.query`, 'missing (required)');
  const definition: CustomCollectorDefinition = {
    name: namespace,
    dialect: 'postgres_exporter',
    declaredAt: file.where(keyNode),
    sql: file.string(queryEntry.value, `${namespace}.query`),
    labels: [],
    metrics: [],
    ignoredColumns: [],
    namespace,
    databases: 'all',
    onError: 'fail',
  };
  const master = get('master');
  if (master) {
    const value = file.value(master.value);
    if (typeof value !== 'boolean') throw file.error(master.value, `${namespace}.master`, `"${String(value)}" is not true or false`);
    if (value) definition.databases = 'primary';
  }
  const cache = get('cache_seconds');
  if (cache) {
    const value = file.value(cache.value);
    if (!Number.isInteger(value) || (value as number) < 0) throw file.error(cache.value, `${namespace}.cache_seconds`, `"${String(value)}" is not a whole number of seconds`);
    if ((value as number) > 0) definition.minIntervalMs = (value as number) * 1000;
  }
  const runOnServer = get('runonserver');
  if (runOnServer) {
    const range = file.string(runOnServer.value, `${namespace}.runonserver`);
    if (!parseVersionRange(range)) throw file.error(runOnServer.value, `${namespace}.runonserver`, `"${range}" is not a version range (e.g. ">=10.0.0 <13.0.0")`);
    definition.runOnServer = range;
  }
  const metricsEntry = get('metrics');
  if (!metricsEntry) throw file.error(keyNode, `${namespace}.metrics`, 'missing (required)');
  const labels: string[] = [];
  const metrics: CustomMetric[] = [];
  const ignored: string[] = [];
  const seen = new Set<string>();
  file.items(metricsEntry.value, `${namespace}.metrics`).forEach((item, i) => {
    for (const { name: column, keyNode: columnKey, value } of file.entries(item, `${namespace}.metrics[${i}]`)) {
      const key = `${namespace}.metrics[${i}].${column}`;
      if (seen.has(column)) throw file.error(columnKey, key, `column "${column}" is declared twice`);
      seen.add(column);
      const options = file.entries(value, key);
      file.checkKeys(options, COLUMN_KEYS, `${key}.`);
      const option = (name: string) => options.find((o) => o.name === name && !file.isNull(o.value));
      const usageEntry = option('usage');
      if (!usageEntry) throw file.error(columnKey, `${key}.usage`, `missing (one of ${USAGES.join(', ')})`);
      const usage = file.string(usageEntry.value, `${key}.usage`) as Usage;
      if (!USAGES.includes(usage)) throw file.error(usageEntry.value, `${key}.usage`, `"${usage}" is not one of ${USAGES.join(', ')}`);
      const descriptionEntry = option('description');
      const help = descriptionEntry ? file.string(descriptionEntry.value, `${key}.description`) : '';
      const declaredAt = file.where(columnKey);
      const name = usage === 'DURATION' ? `${namespace}_${column}_milliseconds` : `${namespace}_${column}`;
      if (usage !== 'LABEL' && usage !== 'DISCARD' && !isMetricName(name)) throw file.error(columnKey, key, `"${name}" is not a valid Prometheus metric name`);
      switch (usage) {
        case 'LABEL':
          if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(column) || column.startsWith('__')) throw file.error(columnKey, key, `"${column}" is not a valid Prometheus label name`);
          labels.push(column);
          break;
        case 'DISCARD':
          ignored.push(column);
          break;
        case 'COUNTER':
          metrics.push({ kind: 'counter', name, help, column, declaredAt });
          break;
        case 'GAUGE':
          metrics.push({ kind: 'gauge', name, help, column, declaredAt });
          break;
        case 'DURATION':
          metrics.push({ kind: 'duration', name, help, column, declaredAt });
          break;
        case 'MAPPEDMETRIC':
          metrics.push({ kind: 'mapped', name, help, column, mapping: metricMapping(file, option('metric_mapping')?.value, `${key}.metric_mapping`), declaredAt });
          break;
        case 'HISTOGRAM':
          metrics.push({ kind: 'histogram', name, help, column, declaredAt });
          ignored.push(`${column}_bucket`, `${column}_sum`, `${column}_count`);
          break;
      }
    }
  });
  if (labels.includes('le') && metrics.some((m) => m.kind === 'histogram')) throw file.error(metricsEntry.keyNode, `${namespace}.metrics`, 'a HISTOGRAM reserves the label "le"');
  // postgres_exporter lets a histogram's `_sum` column also be declared on its own, and which one wins
  // depends on Go's map order; here it is a column declared twice.
  for (const histogram of metrics.filter((m) => m.kind === 'histogram')) {
    for (const suffix of ['_bucket', '_sum', '_count']) {
      const column = `${histogram.column!}${suffix}`;
      if (seen.has(column)) {
        throw file.error(metricsEntry.keyNode, `${namespace}.metrics`, `column "${column}" is declared twice (it is also the ${suffix.slice(1)} column of the HISTOGRAM ${histogram.column!})`);
      }
    }
  }
  const families = new Set<string>();
  for (const metric of metrics) {
    if (families.has(metric.name)) throw file.error(metricsEntry.keyNode, `${namespace}.metrics`, `metric "${metric.name}" is produced twice`);
    families.add(metric.name);
  }
  return { ...definition, labels, metrics, ignoredColumns: ignored };
}

function metricMapping(file: YamlFile, node: YamlNode | null | undefined, key: string): Record<string, number> {
  if (!node) return {};
  const mapping: Record<string, number> = {};
  for (const { name, value } of file.entries(node, key)) {
    const number = file.value(value);
    if (typeof number !== 'number') throw file.error(value, `${key}.${name}`, `"${String(number)}" is not a number`);
    mapping[name] = number;
  }
  return mapping;
}
