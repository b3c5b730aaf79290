import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
import { loadConfig } from '../src/config/load.js';
import { resolveConnection } from '../src/db/connection.js';
import { startExporter, type RunningExporter } from '../src/commands/serve.js';
import { createLogger } from '../src/log.js';
import { adminQuery, createTestDatabase, type TestDatabase } from './helpers/database.js';
import { eventually, sampleValue, writeConfig } from './helpers/exporter.js';

/**
 * The exporter as operators are told to deploy it: a login role whose only right is membership of
 * the pgvector_exporter role the migrations create (pg_monitor plus read access). Every collector
 * works with that alone, and taking one table away fails only the collectors that read it.
 */
const LOGIN = 'pgve_least_privilege';

describe('the exporter with the least-privilege role', () => {
  let db: TestDatabase;
  let exporter: RunningExporter;
  const names = Object.keys(COLLECTOR_FACTORIES).filter((n) => n !== 'recall');

  const metrics = async () => (await fetch(`${exporter.url}/metrics`)).text();
  const success = async (collector: string) => sampleValue(await metrics(), 'pgvector_exporter_collector_success', { collector });

  beforeAll(async () => {
    db = await createTestDatabase();
    await adminQuery(`DO $$ BEGIN
      IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${LOGIN}') THEN CREATE ROLE ${LOGIN} LOGIN; END IF;
    END $$`);
    await adminQuery(`GRANT pgvector_exporter TO ${LOGIN}`);
    const url = new URL(db.url);
    url.username = LOGIN;
    const collectors = names.map((n) => `  ${n}: { enabled: true, interval: 200ms, timeout: 5s }`).join('\n');
    const config = loadConfig({ file: writeConfig(`collectors:\n${collectors}\njobs:\n  enabled: false\n`), flags: { 'web.listen-address': '127.0.0.1:0' } });
    exporter = await startExporter({ config, connection: resolveConnection(url.toString(), {}), log: createLogger('silent') });
  });
  afterAll(async () => {
    await exporter?.stop();
    await db?.drop();
  });

  it('runs every collector successfully', async () => {
    for (const name of names) {
      await eventually(async () => (await success(name)) === 1, `collector ${name} succeeding as ${LOGIN}`, 15_000);
    }
    const text = await metrics();
    expect(sampleValue(text, 'pg_up')).toBe(1);
    expect(sampleValue(text, 'rag_documents')).toBe(0);
  });

  it('turns off the feature of a table whose access was revoked, failing no collector', async () => {
    const feature = async (name: string) => sampleValue(await metrics(), 'pgvector_exporter_feature_enabled', { feature: name });
    await db.pool.query('REVOKE SELECT ON framework_documents FROM pgvector_exporter');
    await eventually(async () => (await feature('embeddings')) === 0, 'embeddings feature off after REVOKE', 15_000);
    // rag_documents (embeddings) and rag_embedding_generation_failures_total (embedding_failures) both read it
    await eventually(async () => {
      const text = await metrics();
      return sampleValue(text, 'rag_documents') === undefined && sampleValue(text, 'rag_embedding_generation_failures_total', { reason: 'query_log' }) === undefined;
    }, 'embeddings series gone after REVOKE', 15_000);
    const text = await metrics();
    for (const name of names.filter((n) => n !== 'statements')) {
      expect(sampleValue(text, 'pgvector_exporter_collector_success', { collector: name }), name).toBe(1);
    }
    await db.pool.query('GRANT SELECT ON framework_documents TO pgvector_exporter');
    await eventually(async () => (await feature('embeddings')) === 1, 'embeddings feature back after GRANT', 15_000);
    await eventually(async () => sampleValue(await metrics(), 'rag_embedding_generation_failures_total', { reason: 'query_log' }) !== undefined, 'embedding failures counted again after GRANT', 15_000);
  });
});
