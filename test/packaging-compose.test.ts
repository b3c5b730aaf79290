import { withBareHttpApp } from './helpers/http-app.js';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../src/commands/index.js';
import { loadConfig } from '../src/config/load.js';
import { FIELDS } from '../src/config/schema.js';
import { CONNECTION_ENV_VARIABLES } from '../src/db/connection.js';
import { findBinary, ruleFiles } from '../src/demo/prometheus-stack.js';

/**
 * No Docker engine here, so docker-compose.yml, the Dockerfile and the files they mount are checked
 * against the project itself: paths, environment variables, ports, rule and dashboard locations.
 */
const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  secrets?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  secrets: Record<string, { file: string }>;
  volumes: Record<string, unknown>;
};
const services = compose.services;

/** Compose's ${VAR:-default} with the variable unset, as on a fresh clone. */
const interpolate = (value: string) => value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1').replace(/\$\{[A-Z_]+\}/g, '');

/** Bind mounts of a service: host path (from the repository root) -> container path. */
function bindMounts(service: Service): { host: string; container: string }[] {
  return (service.volumes ?? [])
    .map((v) => v.split(':'))
    .filter(([source]) => source!.startsWith('.') || source!.startsWith('/'))
    .map(([source, target]) => ({ host: resolve(ROOT, source!), container: target! }));
}

/** The host path behind a container path, through the service's bind mounts. */
function hostPath(service: Service, containerPath: string): string | undefined {
  for (const { host, container } of bindMounts(service)) {
    if (containerPath === container) return host;
    if (containerPath.startsWith(`${container}/`)) return join(host, containerPath.slice(container.length + 1));
  }
  return undefined;
}

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
/** Container ports a service publishes ("127.0.0.1:9188:9188" -> 9188). */
const publishedContainerPorts = (service: Service) => (service.ports ?? []).map((p) => Number(p.split(':').at(-1)));

const exporterServices = Object.entries(services).filter(([, s]) => s.image === services.exporter!.image);

/** Dockerfile instructions with continuation lines joined. */
const dockerfile = read('Dockerfile')
  .replace(/\\\n/g, ' ')
  .split('\n')
  .filter((line) => line.trim() && !line.trim().startsWith('#'))
  .map((line) => {
    const [instruction, ...rest] = line.trim().split(/\s+/);
    return { instruction: instruction!.toUpperCase(), args: rest.join(' ') };
  });
const instructions = (name: string) => dockerfile.filter((i) => i.instruction === name).map((i) => i.args);

describe('docker-compose.yml', () => {
  it('mounts only paths that exist in the repository, and a secret file that exists', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const { host } of bindMounts(service)) expect(existsSync(host), `${name} mounts ${relative(ROOT, host)}`).toBe(true);
    }
    for (const [name, secret] of Object.entries(compose.secrets)) {
      expect(existsSync(resolve(ROOT, interpolate(secret.file))), `secret ${name}`).toBe(true);
    }
  });

  it('gives the exporter image only environment variables the exporter reads, with values it accepts', () => {
    const contextSource = read('src/commands/context.ts');
    expect(contextSource).toContain('env.CONFIG_FILE');
    const known = new Set<string>([...FIELDS.flatMap((f) => (f.env ? [f.env] : [])), ...CONNECTION_ENV_VARIABLES, 'CONFIG_FILE']);
    expect(exporterServices.map(([name]) => name).sort()).toEqual(['exporter', 'migrate']);
    for (const [name, service] of exporterServices) {
      for (const variable of Object.keys(service.environment ?? {})) {
        expect(known.has(variable), `${name}: ${variable} is not read by pgvector-exporter`).toBe(true);
      }
    }
    // The exporter's environment and mounted config file load as the exporter would load them.
    const env = Object.fromEntries(Object.entries(services.exporter!.environment!).map(([k, v]) => [k, interpolate(String(v))]));
    const configFile = hostPath(services.exporter!, env.CONFIG_FILE!);
    expect(configFile && existsSync(configFile)).toBe(true);
    const config = loadConfig({ env, file: configFile });
    expect(config.jobs.backup.enabled).toBe(true);
    expect(config.jobs.backup.directory).toBe(env.BACKUP_DIRECTORY);
    // The backup directory is a volume, so dumps survive the container.
    expect(services.exporter!.volumes).toContain(`backups:${config.jobs.backup.directory}`);
  });

  it('passes the database password as a secret file the exporter reads, never as a plain variable', () => {
    for (const [name, service] of [...exporterServices, ['postgres', services.postgres!] as const]) {
      expect(service.environment?.POSTGRES_PASSWORD, name).toBeUndefined();
      expect(service.environment?.POSTGRES_PASSWORD_FILE, name).toBe('/run/secrets/postgres_password');
      expect(service.secrets, name).toContain('postgres_password');
    }
  });

  it('agrees on the exporter port: listen address, published port, Prometheus target, image default', () => {
    const listen = services.exporter!.environment!.WEB_LISTEN_ADDRESS!;
    const port = portOf(listen);
    expect(publishedContainerPorts(services.exporter!)).toContain(port);
    const prometheus = parse(read('deploy/prometheus/prometheus.yml')) as {
      rule_files: string[];
      scrape_configs: { job_name: string; static_configs: { targets: string[] }[] }[];
      alerting: { alertmanagers: { static_configs: { targets: string[] }[] }[] };
    };
    const job = prometheus.scrape_configs.find((j) => j.job_name === 'pgvector-exporter');
    expect(job?.static_configs[0]!.targets).toEqual([`exporter:${port}`]);
    const amTarget = prometheus.alerting.alertmanagers[0]!.static_configs[0]!.targets[0]!;
    expect(services[amTarget.split(':')[0]!]).toBeDefined();
    expect(publishedContainerPorts(services.alertmanager!)).toContain(portOf(amTarget));
    const schemaDefault = FIELDS.find((f) => f.key === 'web.listen_address')!.default as string;
    expect(portOf(schemaDefault)).toBe(port);
    expect(instructions('EXPOSE')).toEqual([String(port)]);
  });

  it('loads exactly the shipped rule files into Prometheus, and the example Alertmanager config', () => {
    const prometheusService = services.prometheus!;
    const configHost = hostPath(prometheusService, '/etc/prometheus/prometheus.yml');
    expect(configHost).toBe(join(ROOT, 'deploy/prometheus/prometheus.yml'));
    const { rule_files: globs } = parse(readFileSync(configHost!, 'utf8')) as { rule_files: string[] };
    const loaded = new Set<string>();
    for (const glob of globs) {
      const host = hostPath(prometheusService, glob);
      expect(host, `${glob} is not inside a mounted directory`).toBeDefined();
      const dir = host!.slice(0, host!.lastIndexOf('/'));
      const pattern = new RegExp(`^${host!.slice(dir.length + 1).replace(/\./g, '\\.').replace(/\*/g, '[^/]*')}$`);
      for (const file of existsSync(dir) ? readdirSync(dir) : []) if (pattern.test(file)) loaded.add(join(dir, file));
    }
    const shipped = ruleFiles(join(ROOT, 'alerts'));
    expect(shipped.length).toBeGreaterThan(0);
    expect([...loaded].sort()).toEqual(shipped);
    expect(hostPath(services.alertmanager!, '/etc/alertmanager/alertmanager.yml')).toBe(join(ROOT, 'alerts/alertmanager.yml'));
  });

  it('gives Prometheus a configuration promtool accepts, rules included', () => {
    const promtool = findBinary(['promtool']);
    expect(promtool, 'promtool (scripts/setup-system.sh installs it)').toBeDefined();
    const config = parse(read('deploy/prometheus/prometheus.yml')) as { rule_files: string[] };
    // The same file with the container's rule paths pointed at the repository.
    config.rule_files = config.rule_files.map((glob) => hostPath(services.prometheus!, glob)!);
    const dir = mkdtempSync(join(tmpdir(), 'pgve-compose-prom-'));
    try {
      writeFileSync(join(dir, 'prometheus.yml'), JSON.stringify(config));
      const check = spawnSync(promtool!, ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8' });
      expect(check.stdout + check.stderr).toMatch(/SUCCESS: [1-9]\d* rules found/);
      expect(check.status, check.stdout + check.stderr).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('provisions Grafana with a Prometheus datasource on the compose network and every shipped dashboard', () => {
    const grafana = services.grafana!;
    const provisioning = hostPath(grafana, '/etc/grafana/provisioning');
    expect(provisioning).toBe(join(ROOT, 'dashboards/provisioning'));
    const yamlIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(dir, f)) : []);
    const datasources = yamlIn(join(provisioning!, 'datasources')).flatMap(
      (f) => (parse(readFileSync(f, 'utf8')) as { datasources: { type: string; url: string }[] }).datasources,
    );
    const prometheusDs = datasources.find((d) => d.type === 'prometheus');
    expect(prometheusDs, 'a prometheus datasource in dashboards/provisioning/datasources').toBeDefined();
    const url = new URL(interpolate(prometheusDs!.url));
    expect(services[url.hostname], `datasource host ${url.hostname}`).toBeDefined();
    expect(publishedContainerPorts(services[url.hostname]!)).toContain(Number(url.port));

    const providers = yamlIn(join(provisioning!, 'dashboards')).flatMap(
      (f) => (parse(readFileSync(f, 'utf8')) as { providers: { options: { path: string } }[] }).providers,
    );
    expect(providers.length).toBeGreaterThan(0);
    const provided = new Set<string>();
    for (const provider of providers) {
      const host = hostPath(grafana, provider.options.path);
      expect(host, `provider path ${provider.options.path} is not mounted`).toBeDefined();
      for (const file of readdirSync(host!)) if (file.endsWith('.json')) provided.add(join(host!, file));
    }
    const shipped = readdirSync(join(ROOT, 'dashboards')).filter((f) => f.endsWith('.json')).map((f) => join(ROOT, 'dashboards', f));
    expect(shipped.length).toBeGreaterThan(0);
    for (const dashboard of shipped) expect(provided.has(dashboard), `${relative(ROOT, dashboard)} is not provisioned`).toBe(true);
  });

  it('starts in order: migrate after a healthy database, the exporter after a successful migrate', () => {
    expect(services.postgres!.healthcheck?.test.join(' ')).toContain('pg_isready');
    expect(services.migrate!.command).toEqual(['migrate']);
    expect(services.migrate!.depends_on?.postgres?.condition).toBe('service_healthy');
    expect(services.exporter!.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    expect(services.prometheus!.depends_on?.exporter?.condition).toBe('service_healthy');
    for (const name of ['postgres', 'prometheus', 'alertmanager', 'grafana']) expect(services[name]!.healthcheck, name).toBeDefined();
  });
});

describe('Dockerfile', () => {
  it('builds in stages from a supported Node LTS (22 or 24) and runs as a non-root user', () => {
    const from = instructions('FROM');
    expect(from.length).toBeGreaterThanOrEqual(2);
    // Node 20 left support in April 2026; the code itself still runs on Node >= 20 (these tests run there).
    expect(read('Dockerfile')).toMatch(/ARG NODE_IMAGE=node:(22|24)-bookworm-slim/);
    expect((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node).toBe('>=20');
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(20);
    const user = instructions('USER').at(-1)!;
    expect(user.split(':')[0]).not.toMatch(/^(0|root)$/);
    expect(read('Dockerfile')).toMatch(/npm prune --omit=dev/);
  });

  it('runs the CLI with serve by default, and serve is a command', () => {
    // node, its V8 flags (docs/operations.md, "Memory"), the CLI.
    const entrypoint = JSON.parse(instructions('ENTRYPOINT')[0]!) as string[];
    expect(entrypoint[0]).toBe('node');
    expect(entrypoint.at(-1)).toBe('/app/dist/cli.js');
    for (const flag of entrypoint.slice(1, -1)) expect(flag).toMatch(/^--[a-z-]+(=\S+)?$/);
    const cmd = JSON.parse(instructions('CMD')[0]!) as string[];
    expect(cmd).toEqual(['serve']);
    expect(COMMANDS.map((c) => c.name)).toContain(cmd[0]);
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    expect(Object.values(pkg.bin)).toContain('dist/cli.js');
  });

  it('copies only what the build context (.dockerignore) lets in, and that exists', () => {
    const allowed = read('.dockerignore')
      .split('\n')
      .filter((l) => l.startsWith('!'))
      .map((l) => l.slice(1).replace(/\/$/, ''));
    for (const copy of instructions('COPY').filter((c) => !c.startsWith('--from'))) {
      const sources = copy.split(/\s+/).slice(0, -1);
      for (const source of sources) {
        expect(allowed, `COPY ${source} is excluded by .dockerignore`).toContain(source.replace(/\/$/, ''));
        expect(existsSync(join(ROOT, source)), source).toBe(true);
      }
    }
    expect(statSync(join(ROOT, 'sql/migrations')).isDirectory()).toBe(true);
  });

  it('needs only production dependencies at run time (the image prunes the rest)', () => {
    const pkg = JSON.parse(read('package.json')) as { dependencies: Record<string, string> };
    const sourceFiles = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourceFiles(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
    const imported = new Set<string>();
    for (const file of sourceFiles(join(ROOT, 'src'))) {
      const text = readFileSync(file, 'utf8');
      // Type-only imports vanish in the build; value imports and dynamic imports stay.
      for (const m of text.matchAll(/^import (?!type )[^;]*?from '([^'.][^']*)'|import\('([^'.][^']*)'\)/gm)) imported.add((m[1] ?? m[2])!);
    }
    const packageName = (specifier: string) => specifier.split('/').slice(0, specifier.startsWith('@') ? 2 : 1).join('/');
    const external = [...imported].filter((s) => !s.startsWith('node:')).map(packageName);
    expect(external.length).toBeGreaterThan(0);
    for (const name of external) expect(Object.keys(pkg.dependencies), `src imports ${name}`).toContain(name);
  });

  it('sets only environment variables the exporter (or Node) reads', () => {
    const known = new Set<string>([...FIELDS.flatMap((f) => (f.env ? [f.env] : [])), ...CONNECTION_ENV_VARIABLES, 'CONFIG_FILE', 'NODE_ENV']);
    const names = instructions('ENV').flatMap((args) => [...args.matchAll(/([A-Z_][A-Z0-9_]*)=/g)].map((m) => m[1]!));
    expect(names).toContain('PG_DUMP_PATH');
    for (const name of names) expect(known.has(name), `ENV ${name}`).toBe(true);
  });

  it('ships pg_dump of a major version that can dump the compose database', () => {
    const clientMajor = Number(/ARG PG_CLIENT_MAJOR=(\d+)/.exec(read('Dockerfile'))![1]);
    const serverMajor = Number(/pgvector\/pgvector:pg(\d+)/.exec(services.postgres!.image!)![1]);
    expect(clientMajor).toBeGreaterThanOrEqual(serverMajor);
    expect(read('Dockerfile')).toContain('postgresql-client-${PG_CLIENT_MAJOR}');
  });

  it('health-checks a path the HTTP server answers, on the default port', async () => {
    const healthcheck = instructions('HEALTHCHECK')[0]!;
    const path = /'(\/[a-z]+)'/.exec(healthcheck)![1]!;
    const defaultAddress = /WEB_LISTEN_ADDRESS \|\| '([^']+)'/.exec(healthcheck)![1]!;
    expect(defaultAddress).toBe(FIELDS.find((f) => f.key === 'web.listen_address')!.default);
    await withBareHttpApp(false, async (baseUrl) => {
      const response = await fetch(`${baseUrl}${path}`);
      expect(path).toBe('/healthz');
      expect(response.status).toBe(200);
    });
  });
});
