import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrate } from '../../src/db/migrate.js';
import { serverVersions, startTestServer } from './server.js';

export const TEMPLATE_DATABASE = 'pgvector_exporter_template';

declare module 'vitest' {
  export interface ProvidedContext {
    pgAdminUrl: string;
    pgTemplate: string;
    pgClusterDir: string;
  }
}

/**
 * Starts one server for the whole run, migrates a template database once, and hands its URL to
 * every test file; each file then clones the template into a database of its own.
 */
export default async function setup(project: TestProject) {
  const server = await startTestServer();
  const stopOnExit = () => void server.stop();
  process.once('exit', stopOnExit);
  try {
    const versions = await serverVersions(server.adminUrl);
    console.log(`tests run against PostgreSQL ${versions.server} with pgvector ${versions.pgvector} (${server.kind})`);
    await createTemplate(server.adminUrl);
  } catch (err) {
    await server.stop();
    throw err;
  }
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgTemplate', TEMPLATE_DATABASE);
  project.provide('pgClusterDir', server.cluster?.dir ?? '');
  return async () => {
    process.off('exit', stopOnExit);
    await server.stop();
  };
}

async function createTemplate(adminUrl: string): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE_DATABASE}`);
    await admin.query(`CREATE DATABASE ${TEMPLATE_DATABASE}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${TEMPLATE_DATABASE}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    await migrate(client);
  } finally {
    await client.end();
  }
}
