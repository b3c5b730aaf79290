import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { useTestDatabase } from './helpers/database.js';
import { eventually, sampleValue, startServe, writeConfig, type ServeProcess } from './helpers/exporter.js';

/**
 * Reload without a restart, on a real `serve` process and a real database: SIGHUP and POST /-/reload
 * re-read the config and the collector files; a bad file is rejected whole and the old collectors serve on.
 */
const collector = (name: string, sql: string, interval = '500ms') =>
  `  - name: ${name}\n    query: ${sql}\n    interval: ${interval}\n    metrics:\n      - { name: ${name}_v, type: gauge, column: v, help: ${name} }\n`;

describe('config reload', () => {
  const db = useTestDatabase();
  const running: ServeProcess[] = [];
  afterAll(async () => {
    await Promise.all(running.map((r) => r.stop()));
  });

  async function serve(files: string, jobs = 'jobs: { enabled: false }') {
    const config = writeConfig(`${jobs}\ncustom_collectors: { files: [${files}] }\n`);
    const exporter = await startServe(['--config', config, '--database-url', db.url]);
    running.push(exporter);
    return exporter;
  }

  const reloadState = async (exporter: ServeProcess) => {
    const text = await exporter.metrics();
    return { ok: sampleValue(text, 'pgvector_exporter_config_last_reload_successful'), at: sampleValue(text, 'pgvector_exporter_config_last_reload_success_timestamp_seconds')!, text };
  };

  it('SIGHUP: an added collector appears, an unchanged one keeps its cache, no new process; a broken file is rejected whole, then fixed', async () => {
    // `steady` polls once an hour: its value (the time of its one poll) shows whether a reload re-ran it.
    const file = writeConfig(`collectors:\n${collector('steady', 'SELECT extract(epoch FROM clock_timestamp()) AS v', '1h')}${collector('doomed', 'SELECT 5 AS v')}`, 'custom.yaml');
    const exporter = await serve(file);
    const pid = exporter.child.pid;
    const before = await eventually(async () => sampleValue(await exporter.metrics(), 'steady_v'), 'steady polled');
    const started = await reloadState(exporter);
    expect(started.ok).toBe(1);

    writeFileSync(file, `collectors:\n${collector('steady', 'SELECT extract(epoch FROM clock_timestamp()) AS v', '1h')}${collector('added', 'SELECT 42 AS v')}`);
    exporter.child.kill('SIGHUP');
    const text = await eventually(async () => {
      const t = await exporter.metrics();
      return sampleValue(t, 'added_v') === 42 && sampleValue(t, 'doomed_v') === undefined ? t : undefined;
    }, 'the added collector published, the removed one gone');
    expect(exporter.child.pid).toBe(pid);
    expect(exporter.child.exitCode).toBeNull();
    expect(sampleValue(text, 'steady_v')).toBe(before);
    expect(sampleValue(text, 'pgvector_exporter_collector_success', { collector: 'doomed' })).toBeUndefined();
    expect((await reloadState(exporter)).ok).toBe(1);
    expect(exporter.logs()).toMatch(/"added":\["added"\].*"removed":\["doomed"\].*"msg":"config reloaded"/);

    // A broken file: the whole reload is rejected; every old family serves on, pg_up 1.
    writeFileSync(file, `collectors:\n${collector('steady', 'SELECT 1 AS v', '1h')}  - name: broken\n    query: SELECT 1 AS v\n    intervall: 5m\n    metrics:\n      - { name: broken_v, type: gauge, column: v, help: h }\n`);
    const reloadedAt = (await reloadState(exporter)).at;
    exporter.child.kill('SIGHUP');
    const rejected = await eventually(async () => {
      const state = await reloadState(exporter);
      return state.ok === 0 ? state.text : undefined;
    }, 'reload rejected');
    expect(sampleValue(rejected, 'steady_v')).toBe(before);
    expect(sampleValue(rejected, 'added_v')).toBe(42);
    expect(sampleValue(rejected, 'pg_up')).toBe(1);
    expect(sampleValue(rejected, 'pgvector_exporter_config_last_reload_success_timestamp_seconds')).toBe(reloadedAt);
    expect(rejected).not.toMatch(/broken_v/);
    expect(exporter.logs(), exporter.logs()).toContain(`${file}:9: collectors[broken].intervall: unknown key`);
    expect(exporter.child.pid).toBe(pid);

    // Fixed: reloaded, the metric back to 1 with a newer timestamp.
    writeFileSync(file, `collectors:\n${collector('steady', 'SELECT extract(epoch FROM clock_timestamp()) AS v', '1h')}${collector('added', 'SELECT 43 AS v')}`);
    exporter.child.kill('SIGHUP');
    const fixed = await eventually(async () => {
      const state = await reloadState(exporter);
      return state.ok === 1 && sampleValue(state.text, 'added_v') === 43 ? state : undefined;
    }, 'fixed config reloaded, the changed collector re-polled');
    expect(fixed.at).toBeGreaterThan(reloadedAt);
    expect(sampleValue(fixed.text, 'steady_v')).toBe(before);
  });

  it('POST /-/reload: absent without a token; with one, 401 without it, 200 reloads, 500 names the problem', async () => {
    const file = writeConfig(`collectors:\n${collector('one', 'SELECT 1 AS v')}`, 'custom.yaml');
    const noToken = await serve(file);
    expect((await fetch(`${noToken.url}/-/reload`, { method: 'POST' })).status).toBe(404);

    const token = 'r3load-t0ken/with:odd@chars';
    const exporter = await serve(file, `jobs: { enabled: false, api_token: "${token}" }`);
    const post = (auth?: string) => fetch(`${exporter.url}/-/reload`, { method: 'POST', headers: auth ? { Authorization: auth } : {} });
    expect((await post()).status).toBe(401);
    expect((await post('Bearer wrong')).status).toBe(401);

    writeFileSync(file, `collectors:\n${collector('one', 'SELECT 1 AS v')}${collector('two', 'SELECT 2 AS v')}`);
    const ok = await post(`Bearer ${token}`);
    expect(ok.status).toBe(200);
    await eventually(async () => sampleValue(await exporter.metrics(), 'two_v') === 2, 'two published');

    writeFileSync(file, `collectors:\n${collector('one', 'SELECT 1 AS v')}${collector('one', 'SELECT 2 AS v')}`);
    const bad = await post(`Bearer ${token}`);
    expect(bad.status).toBe(500);
    expect(await bad.text()).toMatch(new RegExp(`failed to reload config: ${file}:\\d+: one: a collector of this name is already declared`));
    // /metrics renders at most once a second: wait for the state rather than reading it once.
    const rejected = await eventually(async () => {
      const state = await reloadState(exporter);
      return state.ok === 0 ? state.text : undefined;
    }, 'reload rejected');
    expect(sampleValue(rejected, 'two_v')).toBe(2);
    expect(exporter.logs()).not.toContain(token);
  });
});
