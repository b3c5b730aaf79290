import { withBareHttpApp } from './helpers/http-app.js';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/load.js';
import { FIELDS } from '../src/config/schema.js';
import { CONNECTION_ENV_VARIABLES } from '../src/db/connection.js';
import { findBinary, ruleFiles } from '../src/demo/prometheus-stack.js';

/** deploy/kubernetes checked against the project: the generated PrometheusRule, and every cross-reference. */
const ROOT = resolve(import.meta.dirname, '..');
const K8S = join(ROOT, 'deploy/kubernetes');

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are walked generically */
type Resource = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec?: any; data?: any; stringData?: any };
const resources: Resource[] = readdirSync(K8S)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(K8S, f), 'utf8')).map((d) => d.toJS() as Resource))
  .filter(Boolean);
/** The placeholder Secrets, kept out of deploy/kubernetes/ so applying that directory never overwrites real ones. */
const PLACEHOLDERS = join(ROOT, 'deploy/kubernetes-placeholders');
const placeholders: Resource[] = readdirSync(PLACEHOLDERS)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(join(PLACEHOLDERS, f), 'utf8')).map((d) => d.toJS() as Resource))
  .filter(Boolean);
const byKind = (kind: string) => resources.filter((r) => r.kind === kind);
const one = (kind: string, name: string) => [...resources, ...placeholders].find((r) => r.kind === kind && r.metadata.name === name)!;
const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
const exporterContainers = workloads.flatMap((w) => (w.spec.template.spec.containers as any[]).filter((c) => c.name === 'exporter').map((c) => ({ workload: w, container: c })));
const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v);

describe('the generated PrometheusRule', () => {
  it('is what scripts/generate-prometheusrule.mjs produces from alerts/ now', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'scripts/generate-prometheusrule.mjs'), '--check'], { encoding: 'utf8' });
    expect(result.status, result.stderr).toBe(0);
  });

  it('is what scripts/generate-monitoring.mjs produces from monitoring/ now', () => {
    const result = spawnSync(process.execPath, [join(ROOT, 'scripts/generate-monitoring.mjs'), '--check'], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('holds every rule of every shipped rule file, one resource per file, and promtool accepts each', () => {
    const rules = byKind('PrometheusRule');
    const files = ruleFiles(join(ROOT, 'alerts'));
    expect(files.length).toBeGreaterThan(0);
    expect(rules.map((r) => (r.metadata as any).annotations['pgvector-exporter/source'])).toEqual(files.map((f) => f.slice(ROOT.length + 1)));
    const promtool = findBinary(['promtool']);
    expect(promtool, 'promtool (scripts/setup-system.sh installs it)').toBeDefined();
    const dir = mkdtempSync(join(tmpdir(), 'pgve-k8s-rules-'));
    try {
      rules.forEach((rule, i) => {
        const shipped = (parse(readFileSync(files[i]!, 'utf8')) as { groups: unknown[] }).groups;
        expect(rule.spec.groups).toEqual(shipped);
        const file = join(dir, `${rule.metadata.name}.yml`);
        writeFileSync(file, JSON.stringify({ groups: rule.spec.groups }));
        const check = spawnSync(promtool!, ['check', 'rules', file], { encoding: 'utf8' });
        expect(check.stdout + check.stderr, rule.metadata.name).toMatch(/SUCCESS: [1-9]\d* rules found/);
        expect(check.status).toBe(0);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the Kubernetes manifests', () => {
  it('run the exporter as a sidecar next to PostgreSQL and as a standalone Deployment', () => {
    const sidecar = exporterContainers.find((e) => e.workload.kind === 'StatefulSet');
    expect((sidecar!.workload.spec.template.spec.containers as any[]).map((c) => c.name)).toEqual(['postgres', 'exporter']);
    expect(sidecar!.container.env.find((e: any) => e.name === 'POSTGRES_HOST').value).toBe('127.0.0.1');
    const standalone = exporterContainers.find((e) => e.workload.kind === 'Deployment');
    // Several replicas: the scheduler's advisory locks make each run happen once.
    expect(standalone!.workload.spec.replicas).toBeGreaterThan(1);
  });

  it('give the exporter only variables it reads, and secrets that exist', () => {
    const known = new Set<string>([...FIELDS.flatMap((f) => (f.env ? [f.env] : [])), ...CONNECTION_ENV_VARIABLES, 'CONFIG_FILE']);
    for (const { workload, container } of exporterContainers) {
      for (const env of container.env as any[]) {
        expect(known.has(env.name), `${workload.metadata.name}: ${env.name}`).toBe(true);
        const ref = env.valueFrom?.secretKeyRef;
        if (ref) expect(Object.keys(one('Secret', ref.name).stringData), `${ref.name}/${ref.key}`).toContain(ref.key);
      }
    }
  });

  it('ship Secrets with placeholders only, apart from the manifests that are applied as they are', () => {
    expect(byKind('Secret'), 'kubectl apply -f deploy/kubernetes/ would overwrite the real Secrets').toEqual([]);
    const secrets = placeholders.filter((r) => r.kind === 'Secret');
    expect(secrets.map((s) => s.metadata.name).sort()).toEqual(['pgvector-exporter-db', 'rag-postgres-owner']);
    for (const secret of secrets) {
      for (const [key, value] of Object.entries(secret.stringData as Record<string, string>)) {
        if (/password|token/i.test(key)) expect(['CHANGE-ME', ''], `${secret.metadata.name}/${key}`).toContain(value);
      }
      expect(secret.data, 'base64 data hides what is committed').toBeUndefined();
    }
  });

  it('run every pod under the runtime\'s default seccomp profile, non-root, without privilege escalation', () => {
    for (const workload of workloads) {
      expect(workload.spec.template.spec.securityContext?.seccompProfile, workload.metadata.name).toEqual({ type: 'RuntimeDefault' });
    }
    for (const { container } of exporterContainers) {
      expect(container.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    }
  });

  it('label monitors and rules with the release label kube-prometheus-stack selects by, and say so', () => {
    for (const resource of [...byKind('ServiceMonitor'), ...byKind('PodMonitor'), ...byKind('PrometheusRule')]) {
      expect(resource.metadata.labels?.release, `${resource.kind}/${resource.metadata.name}`).toBe('kube-prometheus-stack');
    }
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toMatch(/release: kube-prometheus-stack/);
  });

  it('mount a ConfigMap whose config the exporter loads', () => {
    const configMap = one('ConfigMap', 'pgvector-exporter-config');
    const dir = mkdtempSync(join(tmpdir(), 'pgve-k8s-config-'));
    try {
      for (const { workload, container } of exporterContainers) {
        const configFile = container.env.find((e: any) => e.name === 'CONFIG_FILE').value as string;
        const mount = (container.volumeMounts as any[]).find((m) => m.mountPath === dirname(configFile));
        const volume = (workload.spec.template.spec.volumes as any[]).find((v) => v.name === mount.name);
        expect(volume.configMap.name).toBe(configMap.metadata.name);
        const file = join(dir, basename(configFile));
        writeFileSync(file, configMap.data[basename(configFile)]);
        const env = Object.fromEntries((container.env as any[]).filter((e) => 'value' in e).map((e) => [e.name, e.value]));
        const config = loadConfig({ env, file });
        expect(config.collectors.recall.enabled).toBe(true);
        // The backup directory is a mounted volume, never the container's read-only root.
        expect((container.volumeMounts as any[]).map((m) => m.mountPath)).toContain(config.jobs.backup.directory);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('agree on the metrics port: listen address, container port, Service, ServiceMonitor, PodMonitor', () => {
    for (const { container } of exporterContainers) {
      const listen = container.env.find((e: any) => e.name === 'WEB_LISTEN_ADDRESS').value as string;
      const port = (container.ports as any[]).find((p) => p.name === 'metrics');
      expect(port.containerPort).toBe(Number(listen.slice(listen.lastIndexOf(':') + 1)));
    }
    const service = one('Service', 'pgvector-exporter');
    const deployment = byKind('Deployment')[0]!;
    expect(matches(service.spec.selector, deployment.spec.template.metadata.labels)).toBe(true);
    const serviceMonitor = byKind('ServiceMonitor')[0]!;
    expect(matches(serviceMonitor.spec.selector.matchLabels, service.metadata.labels)).toBe(true);
    expect((service.spec.ports as any[]).map((p) => p.name)).toContain(serviceMonitor.spec.endpoints[0].port);
    expect(service.spec.ports[0].targetPort).toBe('metrics');

    const podMonitor = byKind('PodMonitor')[0]!;
    const statefulSet = byKind('StatefulSet')[0]!;
    expect(matches(podMonitor.spec.selector.matchLabels, statefulSet.spec.template.metadata.labels)).toBe(true);
    const sidecar = (statefulSet.spec.template.spec.containers as any[]).find((c) => c.name === 'exporter');
    expect((sidecar.ports as any[]).map((p) => p.name)).toContain(podMonitor.spec.podMetricsEndpoints[0].port);
  });

  it('probe paths the HTTP server serves', async () => {
    await withBareHttpApp(true, async (baseUrl) => {
      for (const { container } of exporterContainers) {
        for (const probe of [container.livenessProbe, container.readinessProbe]) {
          expect(probe.httpGet.port).toBe('metrics');
          expect((await fetch(`${baseUrl}${probe.httpGet.path}`)).status, probe.httpGet.path).toBe(200);
        }
      }
    });
  });
});
