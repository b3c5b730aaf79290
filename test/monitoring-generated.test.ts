import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, selectors } from './helpers/monitoring-files.js';

/**
 * The rule files, the PrometheusRule and the dashboards come from monitoring/ and its one configuration:
 * a copy of the repository's monitoring/ generated with another selector and other identity labels carries
 * them into every rule and every dashboard query, and --check names a generated file that drifts.
 */
const copy = mkdtempSync(join(tmpdir(), 'pgve-monitoring-'));
for (const dir of ['monitoring', 'scripts', 'alerts', 'dashboards', 'deploy']) cpSync(join(ROOT, dir), join(copy, dir), { recursive: true });
symlinkSync(join(ROOT, 'node_modules'), join(copy, 'node_modules'));
afterAll(() => rmSync(copy, { recursive: true, force: true }));

const generate = (...args: string[]) => spawnSync(process.execPath, [join(copy, 'scripts/generate-monitoring.mjs'), ...args], { encoding: 'utf8' });

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
}

describe('monitoring/ generates the rules, the PrometheusRule and the dashboards', () => {
  it('carries another selector and other identity labels into every rule and dashboard query', () => {
    writeFileSync(join(copy, 'monitoring/config.yml'), 'selector: \'service="rag-db", env="prod"\'\nidentityLabels: [cluster, service, db]\ndatabaseLabel: db\n');
    const result = generate();
    expect(result.status, result.stderr).toBe(0);

    const rules = readdirSync(join(copy, 'alerts/rules')).flatMap((f) =>
      (parse(readFileSync(join(copy, 'alerts/rules', f), 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules),
    );
    const recorded = new Set(rules.flatMap((r) => (r.record ? [r.record] : [])));
    const dashboards = readdirSync(join(copy, 'dashboards'))
      .filter((f) => f.endsWith('.json'))
      .map((f) => readFileSync(join(copy, 'dashboards', f), 'utf8'));
    const panelExprs = dashboards.flatMap((d) => [...d.matchAll(/"expr": "((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string));
    expect(rules.length).toBeGreaterThan(50);
    expect(panelExprs.length).toBeGreaterThan(50);

    const unselected: string[] = [];
    for (const expr of [...rules.map((r) => r.expr), ...panelExprs]) {
      for (const { metric, labels } of selectors(expr)) {
        if (recorded.has(metric) || metric === 'ALERTS') continue;
        if (!labels.includes('service') || !labels.includes('env')) unselected.push(`${metric} in ${expr}`);
      }
    }
    expect(unselected).toEqual([]);
    // aggregations keep the configured identity labels and name the database by its label
    const aggregated = rules.filter((r) => /\b(max|min|sum|count) by \(/.test(r.expr));
    expect(aggregated.filter((r) => !r.expr.includes('by (cluster, service, db')).map((r) => r.alert ?? r.record)).toEqual([]);
    expect(rules.filter((r) => r.alert && !r.annotations?.description?.includes('$labels.db ')).map((r) => r.alert)).toEqual([]);
    expect(dashboards.every((d) => d.includes('label_values(pg_up{service=\\"rag-db\\", env=\\"prod\\"}, db)'))).toBe(true);
    const operator = readFileSync(join(copy, 'deploy/kubernetes/prometheusrule.yaml'), 'utf8');
    expect(operator).toContain('max by (cluster, service, db) (pg_up{service="rag-db", env="prod"}) == 0');
    expect(generate('--check').status).toBe(0);
  });

  it('--check names a generated file edited by hand', () => {
    const path = join(copy, 'alerts/rules/recording.rules.yml');
    writeFileSync(path, readFileSync(path, 'utf8').replace('[5m]', '[10m]'));
    const result = generate('--check');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('alerts/rules/recording.rules.yml is out of date');
  });

  it('refuses a configuration whose database label is not an identity label, or that names a replica', () => {
    writeFileSync(join(copy, 'monitoring/config.yml'), 'selector: \'job="x"\'\nidentityLabels: [job, instance]\ndatabaseLabel: instance\n');
    let result = generate();
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^monitoring\/config.yml: identityLabels: instance and pod name an exporter replica/);
    writeFileSync(join(copy, 'monitoring/config.yml'), 'selector: \'job="x"\'\nidentityLabels: [job]\ndatabaseLabel: database\n');
    result = generate();
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('databaseLabel: must be one of identityLabels');
  });
});
