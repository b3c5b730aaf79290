import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricFamily, Sample } from '../src/collectors/collector.js';
import { COLLECTOR_FACTORIES } from '../src/collectors/index.js';
import { loadConfig } from '../src/config/load.js';
import { freePort } from '../src/db/local-cluster.js';
import { createTestDatabase, type TestDatabase } from './helpers/database.js';
import { collectorContext, connect } from './helpers/collector-context.js';

/**
 * The families marked compatibility: 'postgres_exporter' must have the names, types and labels that
 * Debian's prometheus-postgres-exporter (0.11, installed by scripts/setup-system.sh) publishes for the
 * same database, so community dashboards and alerts work unchanged. Its `server` label is left out on
 * purpose (Prometheus' target labels identify the server); see docs/metrics.md.
 */
const PEER = '/usr/bin/prometheus-postgres-exporter';
/** pg_stat_user_tables comes from the example queries.yaml the Debian package ships (built in from 0.13). */
const PEER_QUERIES = '/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml';
/** Compatible by contract but absent from postgres_exporter 0.11; shaped after the pg_stat_user_indexes view. */
const NOT_IN_PEER = new Set(['pg_stat_user_indexes_idx_scan']);

interface PeerFamily {
  type: string;
  labels: Set<string>;
}

function parseExposition(text: string): Map<string, PeerFamily> {
  const families = new Map<string, PeerFamily>();
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) families.set(type[1]!, { type: type[2]!, labels: new Set() });
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? /.exec(line);
    if (sample && families.has(sample[1]!)) {
      for (const [, name] of (sample[2] ?? '').matchAll(/(\w+)="/g)) families.get(sample[1]!)!.labels.add(name!);
    }
  }
  return families;
}

async function scrapePeer(url: string): Promise<Map<string, PeerFamily>> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const text = await (await fetch(url)).text();
      if (text.includes('pg_up 1') || /pg_up\{[^}]*\} 1/.test(text)) return parseExposition(text);
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`postgres_exporter did not answer at ${url}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe.skipIf(!existsSync(PEER))('postgres_exporter compatibility', () => {
  let db: TestDatabase;
  let client: pg.Client;
  let peer: ChildProcess;
  let peerFamilies: Map<string, PeerFamily>;
  const families: MetricFamily[] = [];
  const samples: Sample[] = [];

  beforeAll(async () => {
    db = await createTestDatabase();
    client = await connect(db.url);
    await client.query('ANALYZE');
    const port = await freePort();
    const url = new URL(db.url);
    url.searchParams.set('sslmode', 'disable');
    peer = spawn(PEER, [`--web.listen-address=127.0.0.1:${port}`, ...(existsSync(PEER_QUERIES) ? [`--extend.query-path=${PEER_QUERIES}`] : [])], {
      env: { ...process.env, DATA_SOURCE_NAME: url.toString() },
      stdio: 'ignore',
    });
    peerFamilies = await scrapePeer(`http://127.0.0.1:${port}/metrics`);

    const config = loadConfig();
    for (const factory of Object.values(COLLECTOR_FACTORIES)) {
      const collector = factory(config);
      families.push(...collector.families);
      if (!collector.families.some((f) => f.compatibility === 'postgres_exporter')) continue;
      samples.push(...(await collector.collect(collectorContext(client))));
    }
  });
  afterAll(async () => {
    peer?.kill('SIGTERM');
    await client?.end();
    await db?.drop();
  });

  it('publishes every compatible family with the peer\'s type and labels (without its server label)', () => {
    const compatible = families.filter((f) => f.compatibility === 'postgres_exporter');
    expect(compatible.length).toBeGreaterThan(20);
    const checked: string[] = [];
    for (const family of compatible) {
      const theirs = peerFamilies.get(family.name);
      if (!theirs) {
        const userTables = family.name.startsWith('pg_stat_user_tables_') && !existsSync(PEER_QUERIES);
        if (!NOT_IN_PEER.has(family.name) && !userTables) expect.fail(`${family.name} is not published by postgres_exporter`);
        continue;
      }
      theirs.labels.delete('server');
      expect({ name: family.name, type: family.type, labels: [...family.labelNames].sort() }).toEqual({
        name: family.name,
        type: theirs.type,
        labels: [...theirs.labels].sort(),
      });
      // And this exporter really publishes it, with exactly those labels.
      const ours = samples.filter((s) => s.family === family.name);
      expect(ours.length, family.name).toBeGreaterThan(0);
      for (const sample of ours) expect(Object.keys(sample.labels ?? {}).sort(), family.name).toEqual([...family.labelNames].sort());
      checked.push(family.name);
    }
    expect(checked).toContain('pg_stat_database_xact_commit');
    expect(checked).toContain('pg_stat_activity_count');
  });
});
