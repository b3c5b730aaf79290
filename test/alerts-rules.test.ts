import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ROOT, RULE_TESTS_DIR, RUNBOOKS_DIR, RUNBOOK_URL_BASE, alertRules, loadRuleFiles, monitoringConfig, yamlFiles } from './helpers/monitoring-files.js';

/** The alerts issue 5 requires by name: on-call and routing depend on them. */
const REQUIRED_ALERTS = [
  'PostgresDown', 'ExporterCollectorFailing', 'VectorSearchSlowness', 'VectorSearchErrorBudgetBurn', 'HybridSearchSlowness',
  'InsertSlowness', 'EmbeddingGenerationFailure', 'DatabaseConnectionPoolExhaustion', 'VectorIndexCorruption', 'IndexInvalid',
  'VectorIndexRecallLow', 'VectorIndexExceedsSharedBuffers', 'HealthCheckCritical', 'HealthCheckWarning', 'StatisticsStale',
  'DeadTuplesHigh', 'LongRunningTransaction', 'CacheHitRatioLow', 'DeadlocksDetected', 'TransactionIdWraparoundRisk',
  'ReplicationLagHigh', 'ReplicaNotStreaming', 'QueryLogIngestionStalled', 'MaintenanceJobFailed', 'MaintenanceJobNotRunning',
  'BackupMissing',
];

const SEVERITIES = ['critical', 'warning', 'info'];

function run(binary: string, args: string[]) {
  const result = spawnSync(binary, args, { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (result.error) throw new Error(`${binary} could not run (${result.error.message}); install it with scripts/setup-system.sh`);
  return { code: result.status, output: `${result.stdout}${result.stderr}` };
}

interface AlertRuleTest {
  alertname: string;
  eval_time: string;
  exp_alerts?: { exp_labels?: Record<string, string>; exp_annotations?: Record<string, string> }[];
}

function ruleTestCases(): { file: string; test: string; cases: AlertRuleTest[] }[] {
  return yamlFiles(RULE_TESTS_DIR).flatMap((file) => {
    const doc = parse(readFileSync(file, 'utf8')) as { tests: { name: string; alert_rule_test?: AlertRuleTest[] }[] };
    return doc.tests.map((t) => ({ file, test: t.name, cases: t.alert_rule_test ?? [] }));
  });
}

describe('alert and recording rule files', () => {
  const files = loadRuleFiles();
  const alerts = alertRules(files);
  const alertNames = [...new Set(alerts.map((a) => a.alert!))];

  it.each(files.map((f) => f.path.slice(ROOT.length)))('promtool check rules %s', (path) => {
    const { code, output } = run('promtool', ['check', 'rules', path]);
    expect(output, output).toMatch(/SUCCESS: \d+ rules found/);
    expect(code, output).toBe(0);
  });

  it.each(yamlFiles(RULE_TESTS_DIR).map((f) => f.slice(ROOT.length)))('promtool test rules %s', (path) => {
    const { code, output } = run('promtool', ['test', 'rules', path]);
    expect(code, output).toBe(0);
  });

  it('amtool accepts alerts/alertmanager.yml', () => {
    const { code, output } = run('amtool', ['check-config', 'alerts/alertmanager.yml']);
    expect(code, output).toBe(0);
  });

  it('groups and inhibits in alertmanager.yml on the identity labels of monitoring/config.yml, never on a replica', () => {
    const { identityLabels, databaseLabel } = monitoringConfig();
    const am = parse(readFileSync(`${ROOT}alerts/alertmanager.yml`, 'utf8')) as {
      route: { group_by: string[]; routes: { matchers: string[] }[] };
      inhibit_rules: { equal: string[] }[];
    };
    expect(am.route.group_by).toEqual(['alertname', ...identityLabels]);
    for (const rule of am.inhibit_rules) expect(rule.equal.filter((l) => l !== 'alertname')).toEqual(identityLabels);
    expect(am.route.routes.some((r) => r.matchers.some((m) => m.startsWith(`${databaseLabel}=`)))).toBe(true);
  });

  it('has every required alert', () => {
    expect(REQUIRED_ALERTS.filter((name) => !alertNames.includes(name))).toEqual([]);
  });

  it('gives every alert a severity, a summary, a description with value and database, and a runbook that exists', () => {
    const { databaseLabel } = monitoringConfig();
    const problems: string[] = [];
    for (const rule of alerts) {
      const name = rule.alert!;
      const severity = rule.labels?.severity;
      if (!severity || !SEVERITIES.includes(severity)) problems.push(`${name}: severity "${severity}" is not one of ${SEVERITIES.join(', ')}`);
      const a = rule.annotations ?? {};
      if (!a.summary?.trim()) problems.push(`${name}: no summary`);
      if (!a.description?.includes('$value')) problems.push(`${name}: description does not carry {{ $value }}`);
      if (!a.description?.includes(`$labels.${databaseLabel}`)) problems.push(`${name}: description does not name {{ $labels.${databaseLabel} }}`);
      if (a.runbook_url !== `${RUNBOOK_URL_BASE}${name}.md`) problems.push(`${name}: runbook_url ${a.runbook_url} is not ${RUNBOOK_URL_BASE}${name}.md`);
      if (!existsSync(`${RUNBOOKS_DIR}/${name}.md`)) problems.push(`${name}: docs/runbooks/${name}.md does not exist`);
    }
    expect(problems).toEqual([]);
  });

  it('has no runbook without an alert, and every runbook says how to confirm, mitigate and escalate', () => {
    const runbooks = readdirSync(RUNBOOKS_DIR).filter((f) => f.endsWith('.md')).map((f) => f.replace(/\.md$/, ''));
    expect(runbooks.filter((r) => !alertNames.includes(r))).toEqual([]);
    for (const name of alertNames) {
      const text = readFileSync(`${RUNBOOKS_DIR}/${name}.md`, 'utf8');
      for (const section of ['## Meaning', '## User impact', '## Confirm', '## Mitigate', '## Escalate']) {
        expect(text, `${name}.md lacks "${section}"`).toContain(section);
      }
    }
  });

  it('documents every alert in docs/alerts.md with its runbook', () => {
    const doc = readFileSync(`${ROOT}docs/alerts.md`, 'utf8');
    expect(alertNames.filter((name) => !doc.includes(`[${name}](runbooks/${name}.md)`))).toEqual([]);
  });

  it('tests every alert firing (with labels and annotations) and staying quiet', () => {
    const { databaseLabel } = monitoringConfig();
    // specification.test.yml tests the specification's rules (no annotations) beside ours of the same names
    const cases = ruleTestCases()
      .filter((t) => !t.file.endsWith('/specification.test.yml'))
      .flatMap((t) => t.cases);
    const problems: string[] = [];
    for (const name of alertNames) {
      const mine = cases.filter((c) => c.alertname === name);
      const firing = mine.filter((c) => (c.exp_alerts ?? []).length > 0);
      if (firing.length === 0) problems.push(`${name}: no promtool case where it fires`);
      if (!mine.some((c) => (c.exp_alerts ?? []).length === 0)) problems.push(`${name}: no promtool case where it stays quiet`);
      for (const c of firing) {
        for (const exp of c.exp_alerts!) {
          if (!exp.exp_labels?.severity || !exp.exp_labels.job || !exp.exp_labels[databaseLabel]) problems.push(`${name} at ${c.eval_time}: expected labels lack severity, job or ${databaseLabel}`);
          if (exp.exp_labels?.instance) problems.push(`${name} at ${c.eval_time}: one alert per exporter replica (labelled with its instance)`);
          for (const key of ['summary', 'description', 'runbook_url']) {
            if (!exp.exp_annotations?.[key]) problems.push(`${name} at ${c.eval_time}: expected annotations lack ${key}`);
          }
        }
      }
    }
    // every rule of an alert with several rules (told apart by labels) fires in some case
    for (const rule of alerts) {
      const distinguishing = Object.entries(rule.labels ?? {});
      const fired = cases.some((c) => c.alertname === rule.alert && (c.exp_alerts ?? []).some((e) => distinguishing.every(([k, v]) => e.exp_labels?.[k] === v)));
      if (!fired) problems.push(`${rule.alert} ${JSON.stringify(rule.labels)}: no promtool case where this rule fires`);
    }
    expect(problems).toEqual([]);
  });
});
