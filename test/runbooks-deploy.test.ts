import { readdirSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT, RUNBOOKS_DIR } from './helpers/monitoring-files.js';

/**
 * The commands of the runbooks match the shipped manifests: every `kubectl ... -c <container>` names a
 * container of a shipped workload, every `deployment/<name>` / `statefulset/<name>` a shipped workload,
 * every `-l key=value` the pod labels of one, every pod named after a StatefulSet one of its pods, and every
 * `docker compose <cmd> <service>` a service of docker-compose.yml.
 */

interface Workload {
  kind: string;
  metadata: { name: string };
  spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { name: string }[] } } };
}

const manifests = readdirSync(`${ROOT}deploy/kubernetes`)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) => parseAllDocuments(readFileSync(`${ROOT}deploy/kubernetes/${f}`, 'utf8')).map((d) => d.toJS() as Workload | null))
  .filter((d): d is Workload => d !== null && (d.kind === 'Deployment' || d.kind === 'StatefulSet'));
const containers = new Set(manifests.flatMap((w) => w.spec.template.spec.containers.map((c) => c.name)));
const composeServices = new Set(Object.keys((parse(readFileSync(`${ROOT}docker-compose.yml`, 'utf8')) as { services: Record<string, unknown> }).services));

/** Shell commands of the runbooks: inline code spans and fenced sh blocks, one line each. */
function commands(): { runbook: string; command: string }[] {
  return readdirSync(RUNBOOKS_DIR)
    .filter((f) => f.endsWith('.md'))
    .flatMap((f) => {
      const text = readFileSync(`${RUNBOOKS_DIR}/${f}`, 'utf8');
      const inline = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
      const fenced = [...text.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n'));
      return [...inline, ...fenced].map((c) => c.trim()).filter((c) => /^(kubectl|docker compose)\b/.test(c)).map((command) => ({ runbook: f, command }));
    });
}

describe('runbook commands against deploy/ and docker-compose.yml', () => {
  const all = commands();

  it('finds the kubectl and docker compose commands (the extraction is not silently empty)', () => {
    expect(all.filter((c) => c.command.startsWith('kubectl')).length).toBeGreaterThan(3);
    expect(all.filter((c) => c.command.startsWith('docker compose')).length).toBeGreaterThan(1);
    expect(containers).toContain('exporter');
  });

  it('names only shipped containers, workloads, pod labels and compose services', () => {
    const problems: string[] = [];
    for (const { runbook, command } of all) {
      const where = `${runbook}: ${command}`;
      if (command.startsWith('kubectl')) {
        for (const m of command.matchAll(/(?:^|\s)(?:-c|--container)[ =](\S+)/g)) if (!containers.has(m[1]!)) problems.push(`${where}: no container "${m[1]}" in deploy/kubernetes`);
        for (const m of command.matchAll(/\b(deployment|deploy|statefulset|sts)\/([\w-]+)/g)) {
          const kind = m[1]!.startsWith('d') ? 'Deployment' : 'StatefulSet';
          if (!manifests.some((w) => w.kind === kind && w.metadata.name === m[2])) problems.push(`${where}: no ${kind} "${m[2]}" in deploy/kubernetes`);
        }
        for (const m of command.matchAll(/(?:^|\s)(?:-l|--selector)[ =]([\w./-]+)=([\w.-]+)/g)) {
          if (!manifests.some((w) => w.spec.template.metadata.labels[m[1]!] === m[2])) problems.push(`${where}: no shipped pod labelled ${m[1]}=${m[2]}`);
        }
        // a concrete pod name (not <pod>): a StatefulSet's pod <name>-<ordinal>
        const pod = /^kubectl (?:logs|exec|describe pod|delete pod)\s+(?!-)([\w-]+)/.exec(command)?.[1];
        if (pod && !manifests.some((w) => w.kind === 'StatefulSet' && new RegExp(`^${w.metadata.name}-\\d+$`).test(pod))) problems.push(`${where}: no shipped pod "${pod}"`);
      } else {
        const m = /^docker compose (logs|ps|exec|restart|up -d|stop|start)\s+(?:-\S+\s+)*([\w-]+)/.exec(command);
        if (m && !composeServices.has(m[2]!)) problems.push(`${where}: no service "${m[2]}" in docker-compose.yml`);
      }
    }
    expect(problems).toEqual([]);
  });
});
