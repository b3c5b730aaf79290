import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/free-port.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';

/**
 * No Docker engine here, so the image's runtime stage is rebuilt as a directory: the files its COPY
 * lines bring in (package.json, dist, sql, node_modules) at /app's layout, and its HEALTHCHECK command
 * run exactly as written against a real `serve`.
 */
const ROOT = resolve(import.meta.dirname, '..');
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
const healthcheck = JSON.parse(/HEALTHCHECK .*?CMD (\[.*\])/.exec(dockerfile)![1]!) as string[];
const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)![1]!) as string[];
/** The ENTRYPOINT as it runs in /app: node, its V8 flags, the CLI. */
const command = (app: string): [string, string[]] => [entrypoint[0]!, [...entrypoint.slice(1, -1), entrypoint.at(-1)!.replace('/app', app)]];

describe('the image layout', () => {
  let app: string;
  let db: TestDatabase;
  beforeAll(async () => {
    app = mkdtempSync(join(tmpdir(), 'pgve-image-'));
    for (const path of ['package.json', 'dist', 'sql']) cpSync(join(ROOT, path), join(app, path), { recursive: true });
    symlinkSync(join(ROOT, 'node_modules'), join(app, 'node_modules'));
    db = await createTestDatabase({ migrated: false });
  });
  afterAll(async () => {
    rmSync(app, { recursive: true, force: true });
    await db.drop();
  });

  it('runs migrate from /app: the SQL files are found next to dist/', () => {
    const [node, args] = command(app);
    const result = spawnSync(node, [...args, 'migrate'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, NODE_ENV: 'production', DATABASE_URL: db.url },
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('applied 006_security.sql');
  });

  it('passes its HEALTHCHECK while serve runs, and fails it once serve is gone', async () => {
    const port = await freePort();
    const env = { PATH: process.env.PATH, WEB_LISTEN_ADDRESS: `127.0.0.1:${port}`, DATABASE_URL: db.url, JOBS_ENABLED: 'false' };
    const [node, args] = command(app);
    const serve = spawn(node, [...args, 'serve'], { env, stdio: 'ignore' });
    const exited = new Promise((r) => serve.once('exit', r));
    const probe = () => spawnSync(healthcheck[0]!, healthcheck.slice(1), { env, encoding: 'utf8' }).status;
    try {
      let status = probe();
      for (let i = 0; i < 40 && status !== 0; i++) {
        await new Promise((r) => setTimeout(r, 250));
        status = probe();
      }
      expect(status).toBe(0);
    } finally {
      serve.kill('SIGTERM');
      await exited;
    }
    expect(probe()).toBe(1);
  });

  it('serves every database and /probe under the image V8 flags (lite mode, no WebAssembly) without dying', async () => {
    // Lite mode has no WebAssembly: a module that reaches node's fetch (undici) at run time kills the process.
    const port = await freePort();
    const env = { PATH: process.env.PATH, WEB_LISTEN_ADDRESS: `127.0.0.1:${port}`, DATABASE_URL: db.url, JOBS_ENABLED: 'false' };
    const [node, args] = command(app);
    const serve = spawn(node, [...args, 'serve', '--auto-discover-databases', '--include-databases', db.name], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    serve.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    let exitCode: number | null | undefined;
    const exited = new Promise<void>((r) => serve.once('exit', (code) => ((exitCode = code), r())));
    const url = `http://127.0.0.1:${port}`;
    const until = async (what: string, check: () => Promise<boolean>) => {
      for (let i = 0; i < 240; i++) {
        if (exitCode !== undefined) throw new Error(`serve exited (${exitCode}) while waiting for ${what}: ${stderr.slice(-2000)}`);
        if (await check().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`timed out waiting for ${what}: ${stderr.slice(-2000)}`);
    };
    try {
      await until('a database-scoped series labelled datname', async () => (await (await fetch(`${url}/metrics`)).text()).includes(`datname="${db.name}"`));
      const params = new URLSearchParams({ target: db.url });
      const probed = await fetch(`${url}/probe?${params}`, { headers: { 'X-Prometheus-Scrape-Timeout-Seconds': '20' } });
      expect(probed.status).toBe(200);
      const body = await probed.text();
      expect(body, body.split("\n").filter((l) => l.startsWith("pg_up")).join("\n")).toMatch(/^pg_up(\{[^}]*\})? 1$/m);
      expect(exitCode).toBeUndefined();
      expect(stderr).not.toMatch(/WebAssembly|TypeError|ReferenceError/);
    } finally {
      serve.kill('SIGTERM');
      await exited;
    }
  });
});
