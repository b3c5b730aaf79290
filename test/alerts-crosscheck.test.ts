import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { COLLECTOR_FACTORIES, COLLECTOR_NAMES, COLLECTOR_SCOPES } from '../src/collectors/index.js';
import { collectorsOptions } from '../src/commands/assembly.js';
import { loadConfig as loadExporterConfig } from '../src/config/load.js';
import {
  DASHBOARDS_DIR,
  allRules,
  dashboardPanels,
  loadDashboards,
  documentedMetrics,
  familyOf,
  loadRuleFiles,
  monitoringConfig as loadConfig,
  panelTargets,
  recordedNames,
  selectors,
  substituteGrafanaVariables,
  variableQueries,
} from './helpers/monitoring-files.js';

/**
 * Every metric name used by an alert, a recording rule or a dashboard exists in docs/metrics.md (which a
 * test keeps equal to what the exporter publishes), and every label matched on is one the metric has.
 */

/**
 * Labels of the target rather than the exporter: Prometheus' own (instance, job) and the identity labels of
 * monitoring/config.yml, which the scrape configuration or Prometheus' external labels add.
 */
const TARGET_LABELS = ['instance', 'job', 'pod', ...loadConfig().identityLabels];

/** The exporter publishes no label that collides with a target label (the maintenance job's is `job_name`). */
function asScraped(labels: string[]): string[] {
  const colliding = labels.filter((l) => TARGET_LABELS.includes(l));
  if (colliding.length > 0) throw new Error(`an exporter label collides with a target label: ${colliding.join(', ')}`);
  return labels;
}
/**
 * With --auto-discover-databases every sample of a database-scoped collector carries `datname`
 * (docs/metrics.md): the dashboards' database selector may match on it for those families.
 */
const DATABASE_SCOPED_FAMILIES = (() => {
  const options = collectorsOptions(loadExporterConfig({ env: {} }));
  const names = new Set<string>();
  for (const name of COLLECTOR_NAMES.filter((n) => COLLECTOR_SCOPES[n] === 'database')) {
    for (const family of COLLECTOR_FACTORIES[name](options).families) names.add(family.name);
  }
  return names;
})();

/** prom-client's default metrics, documented in docs/metrics.md by reference rather than row by row. */
const DEFAULT_METRIC_PREFIXES = ['process_', 'nodejs_'];
/** Series Prometheus itself writes: ALERTS (the dashboards' firing-alerts panel and annotations), up (ExporterDown). */
const PROMETHEUS_SERIES = ['ALERTS', 'up'];

interface Expression {
  where: string;
  expr: string;
}

function expressions(): Expression[] {
  const rules = allRules(loadRuleFiles()).map((r) => ({ where: r.alert ? `alert ${r.alert}` : `record ${r.record}`, expr: r.expr }));
  const panels = [...panelTargets(), ...variableQueries()].map((t) => ({ where: `${t.dashboard} "${t.panel}"`, expr: substituteGrafanaVariables(t.expr) }));
  return [...rules, ...panels];
}

describe('alerts, recording rules and dashboards use only documented metrics', () => {
  const documented = documentedMetrics();
  const recorded = recordedNames();
  const all = expressions();

  it('finds the metrics to check (the parser is not silently empty)', () => {
    expect(documented.size).toBeGreaterThan(20);
    expect(all.length).toBeGreaterThan(50);
    expect(selectors('sum by (instance) (rate(rag_query_duration_seconds_bucket{query_type="vector_search", le="0.5"}[5m])) > 0.5 offset 1h')).toEqual([
      { metric: 'rag_query_duration_seconds_bucket', labels: ['query_type', 'le'] },
    ]);
  });

  it('names only documented metric families (or recording rules defined here)', () => {
    const offenders: string[] = [];
    for (const { where, expr } of all) {
      for (const { metric } of selectors(expr)) {
        if (recorded.has(metric) || PROMETHEUS_SERIES.includes(metric) || DEFAULT_METRIC_PREFIXES.some((p) => metric.startsWith(p))) continue;
        if (metric.includes(':')) offenders.push(`${where}: ${metric} looks like a recording rule but none defines it`);
        else if (!familyOf(metric, documented)) offenders.push(`${where}: ${metric} is not in docs/metrics.md`);
      }
    }
    expect([...new Set(offenders)]).toEqual([]);
  });

  it('matches only on labels the metric has', () => {
    const recordedLabels = new Map<string, Set<string>>();
    for (const rule of allRules(loadRuleFiles())) {
      if (!rule.record) continue;
      // a recording rule keeps the labels of its aggregation (by ...) or, without one, of its inputs
      const by = /\bby\s*\(([^)]*)\)/.exec(rule.expr);
      const labels = by ? by[1]!.split(',').map((l) => l.trim()) : selectors(rule.expr).flatMap((s) => asScraped(familyOf(s.metric, documented)?.family.labels ?? []));
      recordedLabels.set(rule.record, new Set([...labels, ...TARGET_LABELS]));
    }
    const offenders: string[] = [];
    for (const { where, expr } of all) {
      for (const { metric, labels } of selectors(expr)) {
        const known = recordedLabels.get(metric) ?? (() => {
          const f = familyOf(metric, documented);
          const discovered = f && DATABASE_SCOPED_FAMILIES.has(f.name) ? ['datname'] : [];
          return f ? new Set([...asScraped(f.family.labels), ...f.extraLabels, ...discovered, ...TARGET_LABELS]) : undefined;
        })();
        if (!known) continue; // reported by the previous test
        for (const label of labels) if (!known.has(label)) offenders.push(`${where}: ${metric} has no label "${label}" (has ${[...known].join(', ')})`);
      }
    }
    expect([...new Set(offenders)]).toEqual([]);
  });
});

describe('dashboards', () => {
  const dashboards = loadDashboards();

  it('ships the three dashboards with provisioning for their datasource and folder', () => {
    expect(dashboards.map((d) => d.file).sort()).toEqual(['postgresql-internals.json', 'rag-overview.json', 'vector-index-maintenance.json']);
    expect(new Set(dashboards.map((d) => d.json.uid)).size).toBe(dashboards.length);
    const datasources = parse(readFileSync(`${DASHBOARDS_DIR}/provisioning/datasources/prometheus.yml`, 'utf8')) as { datasources: { type: string }[] };
    expect(datasources.datasources.map((d) => d.type)).toEqual(['prometheus']);
    const providers = parse(readFileSync(`${DASHBOARDS_DIR}/provisioning/dashboards/dashboards.yml`, 'utf8')) as { providers: { type: string; options: { path: string } }[] };
    expect(providers.providers[0]).toMatchObject({ type: 'file', options: { path: '/var/lib/grafana/dashboards/pgvector-exporter' } });
  });

  it.each(dashboards.map((d) => [d.file, d] as const))('%s has a prometheus datasource variable and a database selector used by every query', (_file, dashboard) => {
    const { selector, databaseLabel } = loadConfig();
    const variables = dashboard.json.templating.list;
    expect(variables.find((v) => v.name === 'datasource')).toMatchObject({ type: 'datasource', query: 'prometheus' });
    const database = variables.find((v) => v.name === 'database');
    expect(database?.type).toBe('query');
    expect(JSON.stringify(database?.query)).toContain(JSON.stringify(`label_values(pg_up{${selector}}, ${databaseLabel})`).slice(1, -1));
    const unscoped = panelTargets([dashboard]).filter((t) => !t.expr.includes('$database'));
    expect(unscoped.map((t) => `${t.panel}: ${t.expr}`)).toEqual([]);
  });

  it.each(dashboards.map((d) => [d.file, d] as const))('%s sets a unit and the datasource variable on every panel', (_file, dashboard) => {
    const problems = dashboardPanels(dashboard)
      .filter((p) => p.type !== 'row')
      .flatMap((p) => [
        ...(p.fieldConfig?.defaults?.unit ? [] : [`${p.title}: no unit`]),
        ...(JSON.stringify((p as { datasource?: unknown }).datasource) === JSON.stringify({ type: 'prometheus', uid: '${datasource}' }) ? [] : [`${p.title}: datasource is not \${datasource}`]),
        ...((p.targets ?? []).length > 0 ? [] : [`${p.title}: no query`]),
      ]);
    expect(problems).toEqual([]);
  });
});
