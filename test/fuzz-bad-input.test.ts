import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { FIELDS } from '../src/config/schema.js';
import { CLI } from './helpers/cli.js';

/**
 * Generated bad input -- config files, flags, web configs and connection strings -- run through the real
 * CLI: every case must end with exit code 2, one line on stderr, no stack trace, and no password anywhere
 * in the output. Deterministic (seeded), so a failure names a case that reproduces.
 */

const SECRET = 'Leak#p@ss:/%Zq9';
const SECRET_FORMS = [SECRET, encodeURIComponent(SECRET), 'Leak#p', 'p@ss:/', 'Zq9'];

/** mulberry32: a small seeded generator, so the cases are the same on every run. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = random(12);
const pick = <T>(items: readonly T[]): T => items[Math.floor(rand() * items.length)]!;

const BAD_VALUES = ['30d', '-1', '1e308', 'NaN', 'Infinity', '""', 'true', '[1, 2]', '{ a: 1 }', '"\\u0000"', '0x10', '1.5.3', 'fortnightly', '99999999999999999999', '-0.5', '"; DROP TABLE x"', "!!binary aGVsbG8="];

/**
 * A value that is wrong for the field's type, checked against the field's own parser before use: as YAML
 * reads it (0x10 is the number 16 there) for a config file, as the raw string for a flag.
 */
function badValueFor(field: (typeof FIELDS)[number], as: 'yaml' | 'flag'): string | undefined {
  for (let attempt = 0; attempt < 20; attempt++) {
    const value = pick(BAD_VALUES);
    let accepted = true;
    try {
      const read: unknown = as === 'yaml' ? parseYaml(`v: ${value}`).v : value;
      if (read === null || read === undefined) continue; // "key:" with nothing keeps the default
      field.parse(read);
    } catch {
      accepted = false;
    }
    if (!accepted) return value;
  }
  return undefined;
}

function yamlAt(key: string, value: string): string {
  const parts = key.split('.');
  return parts.map((part, i) => `${'  '.repeat(i)}${part}:${i === parts.length - 1 ? ` ${value}` : ''}`).join('\n') + '\n';
}

interface Case {
  what: string;
  args: string[];
  env?: Record<string, string>;
  files?: Record<string, string>;
}

function generate(): Case[] {
  const cases: Case[] = [];
  // 1. Config files: a bad value for a real key, an unknown key, broken YAML.
  const typed = FIELDS.filter((f) => !['database_url', 'instance_name', 'jobs.api_token', 'web.config_file', 'jobs.backup.directory', 'jobs.backup.pg_dump', 'jobs.backup.pg_restore', 'schema', 'app.application_name', 'jobs.reindex-vector.index'].includes(f.key));
  for (let i = 0; i < 120; i++) {
    const field = pick(typed);
    const value = badValueFor(field, 'yaml');
    if (value === undefined) continue;
    cases.push({ what: `config ${field.key}: ${value}`, args: ['migrate', '--config', 'config.yaml'], files: { 'config.yaml': yamlAt(field.key, value) } });
  }
  const brokenYaml = ['collectors: [', 'a: b: c', '\t- tab', 'jobs:\n  analyze:\n  - x', '{{{', 'web:\n  listen_address: ":1"\n  listen_address: ":2"', 'unknown_key: 1', 'collectors:\n  telepathy: {}', '- a list', 'jobs:\n  defrag: {}'];
  for (const yaml of brokenYaml) cases.push({ what: `yaml ${JSON.stringify(yaml)}`, args: ['migrate', '--config', 'config.yaml'], files: { 'config.yaml': yaml } });

  // 2. Flags: bad values, unknown flags, stray positionals.
  const flagged = FIELDS.filter((f) => f.flag && f.key !== 'database_url' && f.key !== 'web.config_file');
  for (let i = 0; i < 50; i++) {
    const field = pick(flagged);
    const value = badValueFor(field, 'flag');
    if (value === undefined) continue;
    cases.push({ what: `flag --${field.flag}=${value}`, args: ['migrate', `--${field.flag}`, value, '--database-url', `postgresql://u:${encodeURIComponent(SECRET)}@127.0.0.1:1/db`] });
  }
  for (const args of [['migrate', '--no-such-flag'], ['serve', 'extra'], ['migrate', 'now', 'please'], ['jobs', 'run'], ['jobs', 'run', 'defrag'], ['jobs', 'list', 'extra'], ['frobnicate'], ['serve', '--web.listen-address'], ['serve', '--config']]) {
    cases.push({ what: `argv ${args.join(' ')}`, args: [...args], env: { DATABASE_URL: `postgresql://u:${encodeURIComponent(SECRET)}@127.0.0.1:1/db` } });
  }

  // 3. Connection strings that are malformed, with the secret as password, by flag, variable and config file.
  const raw = SECRET;
  const enc = encodeURIComponent(SECRET);
  const malformed = [
    `postgresql://special:${raw}@host/rag`,
    `postgresql://u:${enc}@[bad/rag`,
    `postgresql://u:${enc}@host:99999/rag`,
    `postgresql://u:${enc}@host:port/rag`,
    `postgresql://u:${enc}@host/rag?sslmode=bogus`,
    `postgresql://u:${enc}@host/rag?no_such_option=1`,
    `postgresql://u:%zz${enc}@host/rag`,
    `host=h password=${raw} sslmode=bogus`,
    `host=h password='${raw} port=abc`,
    `host=h password=${raw} nonsense_keyword=1`,
    `mysql://u:${enc}@host/rag`,
    `postgresql://u:${enc}@host/rag?sslmode=verify-full&sslrootcert=/nonexistent/${enc}`,
  ];
  for (const url of malformed) {
    cases.push({ what: `--database-url ${url}`, args: ['migrate', '--database-url', url] });
    cases.push({ what: `DATABASE_URL ${url}`, args: ['migrate'], env: { DATABASE_URL: url } });
    cases.push({ what: `config database_url ${url}`, args: ['migrate', '--config', 'config.yaml'], files: { 'config.yaml': `database_url: ${JSON.stringify(url)}\n` } });
  }

  // 4. Web configs.
  const web = [
    'tls_server_config:\n  cert_file: /nonexistent.pem\n  key_file: /nonexistent.key\n',
    'tls_server_config:\n  max_version: TLS99\n',
    'basic_auth_users:\n  alice: plaintext\n',
    `basic_auth_users:\n  alice: ${JSON.stringify(SECRET)}\n`,
    'http_server_config:\n  http2: true\n',
    'http_server_config:\n  headers:\n    Set-Cookie: x\n',
    'rate_limit:\n  burst: 1\n',
    'tls_server_config: [1, 2]\n',
    'nonsense: 1\n',
    'tls_server_config:\n  client_auth_type: Sometimes\n',
  ];
  for (const yaml of web) {
    cases.push({ what: `web config ${JSON.stringify(yaml)}`, args: ['serve', '--web.config.file', 'web.yml', '--web.listen-address', '127.0.0.1:0'], env: { DATABASE_URL: `postgresql://u:${enc}@127.0.0.1:1/db` }, files: { 'web.yml': yaml } });
  }
  return cases;
}

function run(c: Case, dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const own = mkdtempSync(join(dir, 'case-'));
  for (const [name, text] of Object.entries(c.files ?? {})) writeFileSync(join(own, name), text);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...c.args], { cwd: own, env: { PATH: process.env.PATH, HOME: own, ...c.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('fuzz: generated bad input', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pgve-fuzz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('ends every case with exit 2, one line, no stack trace and no password', async () => {
    const cases = generate();
    expect(cases.length).toBeGreaterThanOrEqual(200);
    const problems: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        const { code, stdout, stderr } = await run(c, dir);
        const output = stdout + stderr;
        const leaked = SECRET_FORMS.filter((form) => output.includes(form));
        if (code !== 2) problems.push(`${c.what}: exit ${code}: ${stderr.trim().slice(0, 300)}`);
        else if (/\n\s+at \S/.test(stderr) || /unexpected error/.test(stderr)) problems.push(`${c.what}: stack trace or unexpected error: ${stderr.slice(0, 300)}`);
        else if (stderr.trim().split('\n').length !== 1) problems.push(`${c.what}: ${stderr.trim().split('\n').length} lines on stderr: ${stderr.slice(0, 300)}`);
        if (leaked.length) problems.push(`${c.what}: password in the output (${leaked.join(', ')}): ${output.slice(0, 300)}`);
      }
    };
    await Promise.all([worker(), worker(), worker()]);
    expect(problems).toEqual([]);
  }, 600_000);
});
