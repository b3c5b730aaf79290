import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
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
  const tempRoot = useRunTempRoot();
  const server = await startTestServer();
  const stopOnExit = () => {
    void server.stop();
    tempRoot.remove();
  };
  process.once('exit', stopOnExit);
  try {
    const versions = await serverVersions(server.adminUrl);
    console.log(`tests run against PostgreSQL ${versions.server} with pgvector ${versions.pgvector} (${server.kind})`);
    await createTemplate(server.adminUrl);
  } catch (err) {
    await server.stop();
    tempRoot.remove();
    throw err;
  }
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgTemplate', TEMPLATE_DATABASE);
  project.provide('pgClusterDir', server.cluster?.dir ?? '');
  return async () => {
    process.off('exit', stopOnExit);
    await server.stop();
    tempRoot.remove();
  };
}

const RUN_PREFIX = 'pgve-test-run-';

/**
 * One temp directory for the whole run, removed at teardown: every temp file of the run (the test
 * cluster, configs, certificates, backups, Prometheus data) goes under it, because TMPDIR points there
 * before the test workers fork and os.tmpdir() reads TMPDIR. Tests then need no cleanup of their own, and
 * a forked worker's files outlive neither the run nor a test that failed half-way. A run killed hard
 * (SIGKILL, CI timeout) leaves its root behind; the next run removes roots whose process is gone.
 */
function useRunTempRoot(): { remove: () => void } {
  const parent = tmpdir();
  for (const name of readdirSync(parent).filter((n) => n.startsWith(RUN_PREFIX))) {
    const dir = join(parent, name);
    if (!processAlive(readPid(dir))) rmSync(dir, { recursive: true, force: true });
  }
  const root = mkdtempSync(join(parent, RUN_PREFIX));
  // Traversable by the `postgres` user the test cluster runs as (mkdtemp makes 0700).
  chmodSync(root, 0o755);
  writeFileSync(join(root, 'pid'), String(process.pid));
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = root;
  let removed = false;
  return {
    remove() {
      if (removed) return;
      removed = true;
      if (previous === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = previous;
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function readPid(dir: string): number | undefined {
  try {
    return Number(readFileSync(join(dir, 'pid'), 'utf8'));
  } catch {
    return undefined;
  }
}

function processAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
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
