import { Agent } from 'node:http';
import type pg from 'pg';
import type { BenchDatabase } from './database.js';
import { OUR_DEFAULTS_ROLE } from './database.js';
import { imageNodeFlags, startOurExporter } from './exporters.js';
import { get } from './load.js';
import { cpuMillis, residentBytes, residentSplit, type ExporterProcess } from './processes.js';
import { sleep } from '../src/sleep.js';

/**
 * `serve` at its default settings (default intervals, the maintenance scheduler on) for `seconds`,
 * once as the previous design ran it (plain `node`) and once with the image's Node flags (read from
 * the Dockerfile's ENTRYPOINT, so the bench runs what the image runs), side by side on one database.
 * The search service's weather meanwhile: `rowsPerSecond` query-log rows and a scrape of each
 * exporter every 15 s (Prometheus' default). RSS (/proc VmRSS) is sampled every 30 s.
 */
export interface HourSoakFigures {
  seconds: number;
  rowsPerSecond: number;
  imageFlags: string[];
  runs: { name: string; flags: string[]; cpuSeconds: number; samples: { t: number; bytes: number; anonBytes: number; fileBytes: number }[]; endBytes: number; maxBytes: number; maxAfter10MinBytes: number }[];
}

export async function runHourSoak(db: BenchDatabase, seconds: number, rowsPerSecond: number, log: (line: string) => void): Promise<HourSoakFigures> {
  const imageFlags = imageNodeFlags();
  // BENCH_SOAK_BASELINE_CLI: a build of the previous code (its dist/cli.js), run with plain node beside this one.
  const baseline = process.env.BENCH_SOAK_BASELINE_CLI;
  const variants: { name: string; flags: string[]; cli?: string }[] = [
    ...(baseline ? [{ name: 'previous code, plain node', flags: [], cli: baseline }] : []),
    { name: 'this code, plain node', flags: [] },
    { name: `this code, image flags: ${imageFlags.join(' ')}`, flags: imageFlags },
  ];
  const procs: ExporterProcess[] = [];
  for (const v of variants) {
    procs.push(await startOurExporter(db, { name: v.name, role: OUR_DEFAULTS_ROLE, jobs: true, nodeFlags: v.flags, ...(v.cli ? { cli: v.cli } : {}) }));
  }
  const writer = await db.connect('bench-soak-writer');
  const agent = new Agent({ keepAlive: true });
  const samples = variants.map(() => [] as { t: number; bytes: number; anonBytes: number; fileBytes: number }[]);
  const cpu = variants.map(() => 0);
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  let nextScrape = 0;
  let nextSample = 0;
  let nextLog = 0;
  try {
    while (elapsed() < seconds) {
      const t = elapsed();
      await writeRows(writer, rowsPerSecond);
      if (t >= nextScrape) {
        nextScrape += 15;
        await Promise.all(procs.map((p) => get(`${p.url}/metrics`, agent).catch(() => undefined)));
      }
      if (t >= nextSample) {
        nextSample += 30;
        procs.forEach((p, i) => samples[i]!.push({ t: Math.round(t), ...residentSplit(p.child.pid!) }));
      }
      if (t >= nextLog) {
        nextLog += 300;
        log(`  soak ${Math.round(t)} s: ${procs.map((p) => `${(residentBytes(p.child.pid!) / 2 ** 20).toFixed(1)} MiB`).join(' / ')}`);
      }
      await sleep(Math.max(0, 1000 - (elapsed() - t) * 1000));
    }
    procs.forEach((p, i) => samples[i]!.push({ t: Math.round(elapsed()), ...residentSplit(p.child.pid!) }));
    procs.forEach((p, i) => (cpu[i] = cpuMillis(p.child.pid!) / 1000));
  } finally {
    agent.destroy();
    await writer.end().catch(() => undefined);
    for (const p of procs) await p.stop();
  }
  return {
    seconds,
    rowsPerSecond,
    imageFlags,
    runs: variants.map((v, i) => {
      const s = samples[i]!;
      return {
        ...v,
        cpuSeconds: cpu[i]!,
        samples: s,
        endBytes: s.at(-1)!.bytes,
        maxBytes: Math.max(...s.map((x) => x.bytes)),
        maxAfter10MinBytes: Math.max(...s.filter((x) => x.t >= 600).map((x) => x.bytes), 0),
      };
    }),
  };
}

async function writeRows(client: pg.Client, rows: number): Promise<void> {
  await client.query(
    `INSERT INTO query_performance_log (query_type, duration_ms, rows_returned)
     SELECT (ARRAY['vector_search','hybrid_search','insert','keyword_search'])[1 + g % 4], random() * 600, 10 FROM generate_series(1, $1::int) g`,
    [rows],
  );
}
