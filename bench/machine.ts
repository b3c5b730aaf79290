import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { serverVersions, type BenchDatabase } from './database.js';
import { PEER_BINARY } from './exporters.js';

export interface MachineInfo {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  loadAverage: string;
  os: string;
  node: string;
  postgres: string;
  pgvector: string;
  peer: string;
  exporterVersion: string;
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

export async function machineInfo(db: BenchDatabase): Promise<MachineInfo> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const versions = await serverVersions(db);
  // postgres_exporter (kingpin) prints its version on stderr.
  const version = spawnSync(PEER_BINARY, ['--version'], { encoding: 'utf8' });
  const peer = firstLine(`${version.stdout ?? ''}${version.stderr ?? ''}`) || 'unknown';
  const pkg = JSON.parse(readFileSync(new URL(import.meta.url.includes('/dist-bench/') ? '../../package.json' : '../package.json', import.meta.url), 'utf8')) as { version: string };
  return {
    date: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
    cpus: cpus().length,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? 'unknown',
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: loadavg().map((l) => l.toFixed(2)).join(', '),
    os: /^PRETTY_NAME="?([^"\n]*)"?/m.exec(osRelease)?.[1] ?? 'unknown',
    node: process.version,
    postgres: versions.postgres,
    pgvector: versions.pgvector,
    peer,
    exporterVersion: pkg.version,
  };
}
