import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { configReferenceMarkdown } from '../src/config/reference.js';
import { loadConfig } from '../src/config/load.js';
import { COLLECTOR_NAMES, FIELDS } from '../src/config/schema.js';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
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

  it('the configurable collectors and the one list of collectors are the same set', () => {
    expect(Object.keys(COLLECTOR_FACTORIES).sort()).toEqual([...COLLECTOR_NAMES].sort());
  });
});
