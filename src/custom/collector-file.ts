import type { Node as YamlNode } from 'yaml';
import { parseDuration } from '../config/values.js';
import { isLabelName, isMetricName, serverVersionNum, type CustomCollectorDefinition, type CustomMetric, type CustomMetricKind } from './definition.js';
import { YamlFile } from './yaml-file.js';

/**
 * Our own collector file (docs/custom-collectors.md): a list of collectors, each one SQL statement with
 * its label columns and metric columns. Everything a file can get wrong is caught here, at start (exit 2)
 * or on reload (rejected whole), with file:line and the key.
 */

const ROOT_KEYS = ['collectors'] as const;
const COLLECTOR_KEYS = [
  'name',
  'query',
  'labels',
  'metrics',
  'interval',
  'timeout',
  'min_server_version',
  'max_server_version',
  'databases',
  'on_error',
  'series_limit',
] as const;
const METRIC_KEYS = ['name', 'type', 'column', 'help', 'labels'] as const;
const METRIC_TYPES = ['gauge', 'counter', 'histogram', 'info'] as const satisfies readonly CustomMetricKind[];
const COLLECTOR_NAME = /^[a-z_][a-z0-9_]*$/;

export function readCollectorFile(path: string): CustomCollectorDefinition[] {
  return parseCollectorFile(YamlFile.read(path));
}

export function parseCollectorFile(file: YamlFile): CustomCollectorDefinition[] {
  if (file.isNull(file.root)) return [];
  const root = file.entries(file.root, '(file)');
  file.checkKeys(root, ROOT_KEYS, '');
  const list = root.find((e) => e.name === 'collectors');
  if (!list || file.isNull(list.value)) return [];
  return file.items(list.value, 'collectors').map((node, i) => parseCollector(file, node, `collectors[${i}]`));
}

function parseCollector(file: YamlFile, node: YamlNode, position: string): CustomCollectorDefinition {
  const entries = file.entries(node, position);
  // Errors name the collector by its name when it has a readable one: collectors[rag_sources].interval.
  const named = entries.find((e) => e.name === 'name')?.value;
  const key = named && typeof file.value(named) === 'string' ? `collectors[${String(file.value(named))}]` : position;
  file.checkKeys(entries, COLLECTOR_KEYS, `${key}.`);
  const get = (name: string) => entries.find((e) => e.name === name);
  const required = (name: string) => {
    const entry = get(name);
    if (!entry || file.isNull(entry.value)) throw file.error(node, `${key}.${name}`, 'missing (required)');
    return entry;
  };

  const nameEntry = required('name');
  const name = file.string(nameEntry.value, `${key}.name`);
  if (!COLLECTOR_NAME.test(name)) throw file.error(nameEntry.value, `${key}.name`, `"${name}" is not a collector name (lower case letters, digits, _)`);
  const at = `collectors[${name}]`;
  const sql = file.string(required('query').value, `${at}.query`);

  const labelsEntry = get('labels');
  const labels = labelsEntry && !file.isNull(labelsEntry.value) ? labelList(file, labelsEntry.value!, `${at}.labels`) : [];

  const metricsEntry = required('metrics');
  const metricNodes = file.items(metricsEntry.value, `${at}.metrics`);
  if (metricNodes.length === 0) throw file.error(metricsEntry.value, `${at}.metrics`, 'declare at least one metric');
  const metrics = metricNodes.map((m, i) => parseMetric(file, m, `${at}.metrics[${i}]`));
  checkColumns(file, labels, labelsEntry?.value ?? node, metrics, metricNodes, at);

  const definition: CustomCollectorDefinition = {
    name,
    dialect: 'custom',
    declaredAt: file.where(node),
    sql,
    labels,
    metrics,
    databases: 'primary',
    onError: 'fail',
  };
  for (const entry of entries) {
    if (file.isNull(entry.value)) continue;
    const k = `${at}.${entry.name}`;
    const value = file.value(entry.value);
    switch (entry.name) {
      case 'interval':
      case 'timeout': {
        const ms = duration(file, entry.value, k, value);
        if (entry.name === 'interval') definition.intervalMs = ms;
        else definition.timeoutMs = ms;
        break;
      }
      case 'min_server_version':
      case 'max_server_version': {
        const num = serverVersionNum(String(value).trim(), entry.name === 'max_server_version');
        if (num === undefined) throw file.error(entry.value, k, `"${String(value)}" is not a PostgreSQL version (e.g. 13, 9.6, 15.2 or 130000)`);
        if (entry.name === 'min_server_version') definition.minServerVersionNum = num;
        else definition.maxServerVersionNum = num;
        break;
      }
      case 'databases':
        if (value !== 'primary' && value !== 'all') throw file.error(entry.value, k, `"${String(value)}" is not one of primary, all`);
        definition.databases = value;
        break;
      case 'on_error':
        if (value !== 'fail' && value !== 'skip') throw file.error(entry.value, k, `"${String(value)}" is not one of fail, skip`);
        definition.onError = value;
        break;
      case 'series_limit':
        if (!Number.isInteger(value) || (value as number) < 1) throw file.error(entry.value, k, `"${String(value)}" is not a whole number of series above 0`);
        definition.seriesLimit = value as number;
        break;
    }
  }
  if (definition.minServerVersionNum !== undefined && definition.maxServerVersionNum !== undefined && definition.minServerVersionNum > definition.maxServerVersionNum) {
    throw file.error(get('max_server_version')!.value, `${at}.max_server_version`, 'is below min_server_version');
  }
  return definition;
}

function duration(file: YamlFile, node: YamlNode | null, key: string, value: unknown): number {
  let ms: number;
  try {
    // A bare number would be read as seconds by the config's parser; here a unit is required, so `30` is not mistaken.
    if (typeof value === 'number') throw new Error(`"${value}" has no unit (write e.g. ${value}s)`);
    ms = parseDuration(value);
  } catch (err) {
    throw file.error(node, key, (err as Error).message);
  }
  if (ms <= 0) throw file.error(node, key, `"${String(value)}" must be longer than 0`);
  return ms;
}

function labelList(file: YamlFile, node: YamlNode, key: string): string[] {
  const names = file.items(node, key).map((item, i) => {
    const name = file.string(item, `${key}[${i}]`);
    if (!isLabelName(name)) throw file.error(item, `${key}[${i}]`, `"${name}" is not a valid Prometheus label name`);
    return name;
  });
  return names;
}

function parseMetric(file: YamlFile, node: YamlNode, key: string): CustomMetric {
  const entries = file.entries(node, key);
  file.checkKeys(entries, METRIC_KEYS, `${key}.`);
  const get = (name: string) => entries.find((e) => e.name === name && !file.isNull(e.value));
  const required = (name: string) => {
    const entry = get(name);
    if (!entry) throw file.error(node, `${key}.${name}`, 'missing (required)');
    return entry;
  };
  const nameNode = required('name').value;
  const name = file.string(nameNode, `${key}.name`);
  if (!isMetricName(name)) throw file.error(nameNode, `${key}.name`, `"${name}" is not a valid Prometheus metric name`);
  const typeNode = required('type').value;
  const kind = file.string(typeNode, `${key}.type`) as CustomMetricKind;
  if (!(METRIC_TYPES as readonly string[]).includes(kind)) throw file.error(typeNode, `${key}.type`, `"${kind}" is not one of ${METRIC_TYPES.join(', ')}`);
  if (kind === 'counter' && !name.endsWith('_total')) throw file.error(nameNode, `${key}.name`, `counter "${name}" must end in _total (Prometheus' convention)`);
  if (kind === 'info' && !name.endsWith('_info')) throw file.error(nameNode, `${key}.name`, `info metric "${name}" must end in _info`);
  const help = file.string(required('help').value, `${key}.help`);
  const metric: CustomMetric = { kind, name, help, declaredAt: file.where(node) };
  const columnEntry = get('column');
  if (kind === 'info') {
    if (columnEntry) throw file.error(columnEntry.keyNode, `${key}.column`, 'an info metric has no value column (its value is 1); list its columns under labels');
  } else {
    metric.column = file.string(required('column').value, `${key}.column`);
  }
  const labelsEntry = get('labels');
  if (labelsEntry) {
    if (kind !== 'info') throw file.error(labelsEntry.keyNode, `${key}.labels`, "only an info metric has labels of its own; put label columns in the collector's labels");
    metric.labels = labelList(file, labelsEntry.value!, `${key}.labels`);
  }
  return metric;
}

/** Every result column is declared once: as a label, or as one metric's column(s). */
function checkColumns(file: YamlFile, labels: string[], labelsNode: YamlNode | null, metrics: CustomMetric[], metricNodes: YamlNode[], at: string): void {
  const owner = new Map<string, string>();
  const claim = (column: string, by: string, node: YamlNode | null, key: string) => {
    const previous = owner.get(column);
    if (previous) throw file.error(node, key, `column "${column}" is already declared (${previous})`);
    owner.set(column, by);
  };
  labels.forEach((label) => claim(label, 'as a label', labelsNode, `${at}.labels`));
  metrics.forEach((metric, i) => {
    const key = `${at}.metrics[${i}]`;
    const node = metricNodes[i]!;
    if (metric.kind === 'histogram') {
      if (labels.includes('le')) throw file.error(labelsNode, `${at}.labels`, 'a histogram reserves the label "le"');
      for (const suffix of ['', '_bucket', '_sum', '_count']) claim(`${metric.column!}${suffix}`, `by ${metric.name}`, node, `${key}.column`);
    } else if (metric.kind === 'info') {
      for (const label of metric.labels ?? []) {
        if (labels.includes(label)) throw file.error(node, `${key}.labels`, `"${label}" is already a label of the collector`);
        claim(label, `by ${metric.name}`, node, `${key}.labels`);
      }
    } else {
      claim(metric.column!, `by ${metric.name}`, node, `${key}.column`);
    }
  });
  const families = new Map<string, number>();
  metrics.forEach((metric, i) => {
    if (families.has(metric.name)) throw file.error(metricNodes[i], `${at}.metrics[${i}].name`, `metric "${metric.name}" is declared twice`);
    families.set(metric.name, i);
  });
}
