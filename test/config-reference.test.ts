import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown } from '../src/config/reference.js';
import { loadConfig } from '../src/config/load.js';
import { FIELDS } from '../src/config/schema.js';
import { COLLECTOR_NAMES } from '../src/collectors/index.js';
import { JOB_NAMES } from '../src/jobs/index.js';
import { writeConfig } from './helpers/exporter.js';

describe('configuration reference', () => {
  it('README.md carries the reference generated from the schema (run `npm run docs:config`)', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configReferenceMarkdown());
  });

  it('every default parses, and every key is documented with help', () => {
    const config = loadConfig({});
    expect(config.web.listen_address).toBe(':9188');
    for (const field of FIELDS) expect(field.help.length, field.key).toBeGreaterThan(10);
  });

  it('flags override environment variables, which override the file', () => {
    const file = writeConfig('log_level: error\nweb:\n  listen_address: "127.0.0.1:9999"\napp:\n  pool_max: 70\n');
    const config = loadConfig({ file, flags: { 'log-level': 'debug' }, env: { LOG_LEVEL: 'warn', WEB_LISTEN_ADDRESS: '127.0.0.1:1234' } });
    expect(config.log_level).toBe('debug');
    expect(config.web.listen_address).toBe('127.0.0.1:1234');
    expect(config.app.pool_max).toBe(70);
    expect(loadConfig({ file, env: { LOG_LEVEL: 'warn' } }).log_level).toBe('warn');
    expect(loadConfig({ file }).log_level).toBe('error');
  });

  it('every collector and every job of the factory maps has its settings, and no other name has any', () => {
    const namesUnder = (prefix: string) => new Set(FIELDS.filter((f) => f.key.startsWith(prefix)).map((f) => f.key.slice(prefix.length).split('.')[0]!));
    expect([...namesUnder('collectors.')].sort()).toEqual([...COLLECTOR_NAMES].sort());
    const jobKeys = [...namesUnder('jobs.')].filter((name) => !['enabled', 'api_token', 'window'].includes(name));
    expect(jobKeys.sort()).toEqual([...JOB_NAMES].sort());
    const config = loadConfig({});
    for (const name of COLLECTOR_NAMES) expect(config.collectors[name].interval, name).toBeGreaterThan(0);
    for (const name of JOB_NAMES) expect(config.jobs[name].schedule, name).toBeTruthy();
  });
});
