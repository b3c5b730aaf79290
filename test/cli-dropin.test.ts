import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { COLLECTOR_NAMES } from '../src/collectors/index.js';
import { VERSION } from '../src/version.js';
import { runCli } from './helpers/cli.js';
import { useTestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * What a postgres_exporter user types keeps working: DATA_SOURCE_NAME in libpq's key=value form, --log.level,
 * --log.format, --[no-]collector.<name>, --version after a command. Bad connection strings from every
 * source are exit 2 with one line that holds no part of the password.
 */
const SECRET = 'p@:/%#sLeak s';

describe('postgres_exporter flags and environment, run as the built CLI', () => {
  const db = useTestDatabase();
  let serve: ServeProcess | undefined;
  afterAll(async () => {
    await serve?.stop();
  });

  it('DATA_SOURCE_NAME="host=... port=... user=... password=... dbname=... sslmode=disable" serves pg_up 1; the password never reaches the log', async () => {
    const url = new URL(db.url);
    const dsn = `host=${url.hostname} port=${url.port} user=${url.username} password='${SECRET.replace(/'/g, "\\'")}' dbname=${db.name} sslmode=disable`;
    serve = await startServe(['--no-collector.statements', '--log.level=debug', '--log.format=logfmt'], { DATA_SOURCE_NAME: dsn, LOG_LEVEL: undefined });
    const text = await eventually(async () => {
      const t = await serve!.metrics();
      return sampleValue(t, 'pg_up') === 1 ? t : undefined;
    }, 'pg_up 1');
    // --no-collector.statements: its families are absent, the other collectors poll.
    expect(text).not.toMatch(/^pgvector_statements_/m);
    expect(sampleValue(text, 'pgvector_exporter_collector_success', { collector: 'statements' })).toBeUndefined();
    expect(sampleValue(text, 'pgvector_exporter_collector_success', { collector: 'database' })).toBe(1);
    // --log.format=logfmt --log.level=debug: key=value lines, debug records included.
    // A debug record may be written after the poll that set pg_up: wait for one, then read the log.
    await eventually(async () => /^ts=\S+ level=debug /m.test(serve!.logs()), 'a debug record in the log');
    const logs = serve.logs();
    expect(logs).toMatch(/^ts=\S+ level=info msg="exporter listening" /m);
    expect(logs).not.toMatch(/^\{/m);
    expect(logs).toContain(`target=${url.username}@`);
    expect(logs).not.toContain('Leak');
    expect(text).not.toContain('Leak');
  });

  it('--version after any command prints the version', async () => {
    for (const command of ['serve', 'migrate', 'jobs']) {
      const result = await runCli([command, '--version']);
      expect(result, command).toMatchObject({ code: 0, stdout: `pgvector-exporter ${VERSION}\n` });
    }
  });

  it('an unknown collector is exit 2 naming the known ones; every collector has both switches', async () => {
    const result = await runCli(['serve', '--collector.nope']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown collector "nope" in --collector\.nope \(known collectors: connectivity, /);
    expect((await runCli(['serve', '--no-collector.nope'])).code).toBe(2);
    const help = (await runCli(['serve', '--help'])).stdout;
    for (const name of COLLECTOR_NAMES) {
      expect(help).toContain(`--collector.${name} `);
      expect(help).toContain(`--no-collector.${name} `);
    }
    expect((await runCli(['serve', '--log.format=xml'])).stderr).toMatch(/log_format: .*xml/);
  });

  it('a malformed connection string is exit 2 with one line and no part of the password, from every source', async () => {
    const malformed = [
      `postgresql://special:Le/ak${encodeURIComponent(SECRET)}@127.0.0.1:1/rag`,
      `postgresql://special:${SECRET.replace('%', '%zz')}@127.0.0.1:1/rag`,
      `postgresql://special:${encodeURIComponent(SECRET)}@127.0.0.1:1/rag?sslmode=bogus`,
      `host=127.0.0.1 password=${SECRET} dbname=rag`,
      `host=127.0.0.1 password='${SECRET}`,
    ];
    for (const text of malformed) {
      const configFile = writeConfig(`database_url: ${JSON.stringify(text)}\n`);
      const dsnFile = writeConfig(text, 'dsn');
      const sources: [string, string[], Record<string, string>][] = [
        ['--database-url', ['--database-url', text], {}],
        ['DATABASE_URL', [], { DATABASE_URL: text }],
        ['config file', ['--config', configFile], {}],
        ['DATA_SOURCE_NAME', [], { DATA_SOURCE_NAME: text }],
        ['DATA_SOURCE_NAME_FILE', [], { DATA_SOURCE_NAME_FILE: dsnFile }],
      ];
      // The five sources of one string at once: each is a separate process.
      await Promise.all(
        sources.map(async ([source, args, env]) => {
          const result = await runCli(['migrate', ...args], env);
          const output = result.stdout + result.stderr;
          const what = `${source}: ${text.replace(/Leak/g, '….')}`;
          expect(result.code, what).toBe(2);
          expect(result.stderr.trim().split('\n'), what).toHaveLength(1);
          expect(result.stderr, what).toContain(source === 'config file' ? `${configFile}: database_url` : source);
          expect(output, what).not.toMatch(/Leak|sLe|%23s/);
          expect(output, what).not.toMatch(/\bat .*\.js:\d+/);
        }),
      );
    }
  }, 240_000);

  it('a well-formed string whose server cannot be reached is exit 1, and the password is not printed in any form', async () => {
    const result = await runCli(['migrate', '--database-url', `postgresql://special:${encodeURIComponent(SECRET)}@127.0.0.1:1/rag?sslmode=disable`]);
    expect(result.code).toBe(1);
    expect(result.stdout + result.stderr).not.toMatch(/Leak|sLe/);
    expect(result.stderr).toMatch(/special@127\.0\.0\.1:1\/rag/);
  });

  it('DATABASE_URL_FILE and DATA_SOURCE_PASS_FILE are read, trimmed; an unreadable one is exit 2 naming it', async () => {
    const missing = await runCli(['migrate'], { DATA_SOURCE_URI: '127.0.0.1:1/rag', DATA_SOURCE_PASS_FILE: '/nonexistent/pass' });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/DATA_SOURCE_PASS_FILE: cannot read \/nonexistent\/pass: ENOENT/);
    const url = new URL(db.url);
    const passFile = writeConfig(`${SECRET}\n`, 'pass');
    writeFileSync(passFile, `${SECRET}\n`);
    const ok = await runCli(['migrate'], { DATA_SOURCE_URI: `${url.host}${url.pathname}?sslmode=disable`, DATA_SOURCE_USER: url.username, DATA_SOURCE_PASS_FILE: passFile });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('(from DATA_SOURCE_URI)');
  });
});
