import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

/**
 * Reads the shipped monitoring files (alerts/rules, alerts/tests, dashboards) and pulls the metric names and
 * label matchers out of their PromQL, for the static and end-to-end checks of alerts and dashboards.
 */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const RULES_DIR = `${ROOT}alerts/rules`;
export const RULE_TESTS_DIR = `${ROOT}alerts/tests`;
export const DASHBOARDS_DIR = `${ROOT}dashboards`;
export const RUNBOOKS_DIR = `${ROOT}docs/runbooks`;
export const RUNBOOK_URL_BASE = 'https://github.com/pgvector-exporter/pgvector-exporter/blob/main/docs/runbooks/';

export interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface RuleGroup {
  name: string;
  interval?: string;
  rules: Rule[];
}

export interface RuleFile {
  path: string;
  groups: RuleGroup[];
}

/** monitoring/config.yml: the selector and identity labels the rules and dashboards are generated with. */
export interface MonitoringConfig {
  selector: string;
  identityLabels: string[];
  databaseLabel: string;
}

export function monitoringConfig(): MonitoringConfig {
  return parse(readFileSync(`${ROOT}monitoring/config.yml`, 'utf8')) as MonitoringConfig;
}

export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => `${dir}/${f}`);
}

export function loadRuleFiles(): RuleFile[] {
  return yamlFiles(RULES_DIR).map((path) => ({ path, groups: (parse(readFileSync(path, 'utf8')) as { groups: RuleGroup[] }).groups }));
}

export function allRules(files = loadRuleFiles()): Rule[] {
  return files.flatMap((f) => f.groups.flatMap((g) => g.rules));
}

export function alertRules(files = loadRuleFiles()): Rule[] {
  return allRules(files).filter((r) => r.alert);
}

export function recordedNames(files = loadRuleFiles()): Set<string> {
  return new Set(allRules(files).flatMap((r) => (r.record ? [r.record] : [])));
}

// ---------------------------------------------------------------------------------------------- dashboards

export interface PanelTarget {
  dashboard: string;
  panel: string;
  expr: string;
}

interface GrafanaPanel {
  title?: string;
  type?: string;
  targets?: { expr?: string }[];
  panels?: GrafanaPanel[];
  fieldConfig?: { defaults?: { unit?: string } };
}

export interface Dashboard {
  file: string;
  json: {
    title: string;
    uid: string;
    panels: GrafanaPanel[];
    templating: { list: { name: string; type: string; query?: unknown; datasource?: unknown }[] };
  };
}

export function loadDashboards(): Dashboard[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((file) => ({ file, json: JSON.parse(readFileSync(`${DASHBOARDS_DIR}/${file}`, 'utf8')) as Dashboard['json'] }));
}

/** Every panel, rows' nested panels included. */
export function dashboardPanels(dashboard: Dashboard): GrafanaPanel[] {
  return dashboard.json.panels.flatMap((p) => [p, ...(p.panels ?? [])]);
}

export function panelTargets(dashboards = loadDashboards()): PanelTarget[] {
  return dashboards.flatMap((d) =>
    dashboardPanels(d).flatMap((p) => (p.targets ?? []).flatMap((t) => (t.expr ? [{ dashboard: d.file, panel: p.title ?? '(untitled)', expr: t.expr }] : []))),
  );
}

/** Template-variable queries that are PromQL (label_values(metric, label) and query_result(...)). */
export function variableQueries(dashboards = loadDashboards()): PanelTarget[] {
  return dashboards.flatMap((d) =>
    d.json.templating.list.flatMap((v) => {
      if (v.type !== 'query') return [];
      const query = typeof v.query === 'string' ? v.query : (v.query as { query?: string } | undefined)?.query;
      const inner = query && /^(?:label_values|query_result)\((.*)\)$/s.exec(query.trim());
      if (!inner) return [];
      // label_values(expr, label): the expression is everything before the last comma
      const expr = query.startsWith('label_values') && inner[1]!.includes(',') ? inner[1]!.slice(0, inner[1]!.lastIndexOf(',')) : inner[1]!;
      return [{ dashboard: d.file, panel: `variable $${v.name}`, expr }];
    }),
  );
}

/**
 * Replaces Grafana's variables by what Grafana would send: $instance by a regex matching every instance,
 * $database, $datname and $index by their "All" value (.*, which also matches series without the label),
 * $__rate_interval and friends by durations. A variable left over is an error naming it: a dashboard that
 * gains a variable must teach this function its "All" value, or every panel using it reads "no data".
 */
export function substituteGrafanaVariables(expr: string, instance = '.+'): string {
  const substituted = expr
    .replace(/\$__rate_interval|\$\{__rate_interval\}/g, '1m')
    .replace(/\$__interval|\$\{__interval\}/g, '15s')
    .replace(/\$__range|\$\{__range\}/g, '1h')
    .replace(/\$\{instance(?::\w+)?\}|\$instance\b/g, instance)
    .replace(/\$\{(?:database|datname|index)(?::\w+)?\}|\$(?:database|datname|index)\b/g, '.*')
    .replace(/\$\{datasource\}|\$datasource\b/g, 'prometheus');
  const left = /\$\{?[A-Za-z_]\w*/.exec(substituted);
  if (left) throw new Error(`Grafana variable ${left[0]} has no test value (test/helpers/monitoring-files.ts): ${expr}`);
  return substituted;
}

// ---------------------------------------------------------------------------------------------- PromQL

const KEYWORDS = new Set(['and', 'or', 'unless', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'bool', 'inf', 'nan', 'atan2']);

export interface Selector {
  metric: string;
  labels: string[];
}

/**
 * The vector selectors of a PromQL expression: metric names (identifiers that are not functions, keywords,
 * numbers or grouping labels) with the label names they match on. A deliberately small tokenizer: good
 * enough for the expressions this repository ships, and Prometheus itself parses them in the e2e test.
 */
export function selectors(expr: string): Selector[] {
  let text = expr
    .replace(/#[^\n]*/g, ' ') // comments
    .replace(/\[[^\]]*\]/g, ' ') // range and subquery durations
    .replace(/\boffset\s+-?[0-9a-z]+/gi, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' '); // grouping label lists
  const found: Selector[] = [];
  // a metric name, optionally followed by a label matcher block; strings inside are skipped as a whole
  const pattern = /"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|([a-zA-Z_:][a-zA-Z0-9_:]*)?\s*(\{[^}]*\})?(\s*\()?/g;
  text = text.replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b/gi, ' ');
  for (const m of text.matchAll(pattern)) {
    const [whole, name, block, call] = m;
    if (!whole || whole.startsWith('"') || whole.startsWith("'")) continue;
    if (name && (call || KEYWORDS.has(name.toLowerCase()))) continue;
    const labels = block ? [...block.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g)].map((l) => l[1]!) : [];
    if (name) found.push({ metric: name, labels });
    else if (block) {
      const nameMatcher = /__name__\s*=\s*"([^"]+)"/.exec(block);
      if (nameMatcher) found.push({ metric: nameMatcher[1]!, labels: labels.filter((l) => l !== '__name__') });
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------- docs/metrics.md

export interface DocumentedFamily {
  type: string;
  labels: string[];
}

export function documentedMetrics(): Map<string, DocumentedFamily> {
  const doc = readFileSync(`${ROOT}docs/metrics.md`, 'utf8');
  const families = new Map<string, DocumentedFamily>();
  for (const m of doc.matchAll(/^\|\s*`([a-zA-Z_:][a-zA-Z0-9_:]*)`\s*\|\s*([^|]*)\|\s*([^|]*)\|/gm)) {
    const labels = m[3]!.replace(/\([^)]*\)/g, '').split(',').map((l) => l.trim().replace(/`/g, '')).filter(Boolean); // "state (primary only)"
    families.set(m[1]!, { type: m[2]!.trim(), labels });
  }
  return families;
}

/** The family a series name belongs to: histograms publish _bucket, _sum and _count. */
export function familyOf(metric: string, documented: Map<string, DocumentedFamily>): { name: string; family: DocumentedFamily; extraLabels: string[] } | undefined {
  const direct = documented.get(metric);
  if (direct) return { name: metric, family: direct, extraLabels: [] };
  const m = /^(.*)_(bucket|sum|count)$/.exec(metric);
  const base = m && documented.get(m[1]!);
  if (m && base?.type === 'histogram') return { name: m[1]!, family: base, extraLabels: m[2] === 'bucket' ? ['le'] : [] };
  return undefined;
}
