import { execFileSync, spawn, spawnSync, type SpawnOptions } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../free-port.js';

/**
 * A throwaway PostgreSQL cluster from the installed server binaries (initdb/pg_ctl), listening on
 * 127.0.0.1 and a unix socket in its own temp directory, trusted local auth. Used by the tests, the
 * demo and the benchmark. When run as root, the server runs as the `postgres` OS user (initdb refuses root).
 * Development tooling, kept out of db/ (the exporter's own database access): `serve`, `migrate` and
 * `jobs` never import it. It is compiled into dist/ only because the `demo` command ships in the image.
 */
export interface LocalClusterOptions {
  port?: number;
  /** shared_preload_libraries; pg_stat_statements by default. */
  preload?: string[];
  settings?: Record<string, string>;
  /** Parent of the cluster's temp directory. */
  baseDir?: string;
  /** pg_hba.conf lines placed before initdb's trust lines (e.g. to make some roles use passwords). */
  hba?: string[];
}

export function findPostgresBinDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates: string[] = [];
  if (env.PG_BIN) candidates.push(env.PG_BIN);
  if (existsSync('/usr/lib/postgresql')) {
    const majors = readdirSync('/usr/lib/postgresql').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...majors.map((m) => `/usr/lib/postgresql/${m}/bin`));
  }
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    /* no pg_config on PATH */
  }
  return candidates.find((dir) => existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres')));
}

interface OsUser {
  uid: number;
  gid: number;
}

function serverUser(): OsUser | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { uid, gid };
  } catch {
    throw new Error('running as root needs an OS user "postgres" to run the server (initdb refuses root)');
  }
}

export class LocalCluster {
  private constructor(
    readonly binDir: string,
    readonly dir: string,
    readonly port: number,
    private readonly user: OsUser | undefined,
  ) {}

  get dataDir(): string {
    return join(this.dir, 'data');
  }

  get socketDir(): string {
    return this.dir;
  }

  /** Creates and starts a cluster; throws with the server log's tail when it does not come up. */
  static async start(options: LocalClusterOptions = {}): Promise<LocalCluster> {
    const binDir = findPostgresBinDir();
    if (!binDir) throw new Error('no PostgreSQL server binaries found (set PG_BIN or run scripts/setup-system.sh)');
    const user = serverUser();
    const dir = mkdtempSync(join(options.baseDir ?? tmpdir(), 'pgvector-exporter-pg-'));
    if (user) chownSync(dir, user.uid, user.gid);
    const cluster = new LocalCluster(binDir, dir, options.port ?? (await freePort()), user);
    try {
      cluster.run('initdb', ['-D', cluster.dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--locale=C', '--no-sync']);
      cluster.writeSettings(options);
      if (options.hba?.length) cluster.prependHba(options.hba);
      cluster.startServer();
    } catch (err) {
      cluster.remove();
      throw err;
    }
    return cluster;
  }

  /** A streaming standby of this cluster made with pg_basebackup -R. */
  async createStandby(): Promise<LocalCluster> {
    const dir = mkdtempSync(join(tmpdir(), 'pgvector-exporter-standby-'));
    if (this.user) chownSync(dir, this.user.uid, this.user.gid);
    const standby = new LocalCluster(this.binDir, dir, await freePort(), this.user);
    try {
      standby.run('pg_basebackup', ['-D', standby.dataDir, '-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-R', '-X', 'stream', '--checkpoint=fast', '--no-sync']);
      standby.appendConf({ port: String(standby.port), unix_socket_directories: `'${standby.socketDir}'` });
      standby.startServer();
    } catch (err) {
      standby.remove();
      throw err;
    }
    return standby;
  }

  url(database = 'postgres', user = 'postgres'): string {
    return `postgresql://${user}@127.0.0.1:${this.port}/${database}`;
  }

  startServer(): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-l', join(this.dir, 'server.log'), '-w', '-t', '60', 'start']);
  }

  stopServer(mode: 'fast' | 'immediate' = 'fast'): void {
    this.run('pg_ctl', ['-D', this.dataDir, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  isRunning(): boolean {
    return spawnSync(join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, 'status'], this.spawnOptions()).status === 0;
  }

  /** Stops the server (if running) and deletes the cluster directory. Safe to call twice. */
  remove(): void {
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      spawnSync(join(this.binDir, 'pg_ctl'), ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop'], this.spawnOptions());
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Runs a server-side binary (pg_dump, pg_restore, psql...) as the cluster's OS user; throws with its stderr. */
  run(binary: string, args: string[]): string {
    const result = spawnSync(join(this.binDir, binary), args, { ...this.spawnOptions(), encoding: 'utf8' });
    if (result.status !== 0) {
      const logTail = existsSync(join(this.dir, 'server.log')) ? this.serverLogTail() : '';
      throw new Error(`${binary} failed (${result.status ?? result.signal}): ${result.stderr || result.stdout}${logTail}`);
    }
    return result.stdout;
  }

  /** Spawns a binary asynchronously (for long-running work such as pg_dump in a test). */
  spawn(binary: string, args: string[], options: SpawnOptions = {}) {
    return spawn(join(this.binDir, binary), args, { ...this.spawnOptions(), ...options });
  }

  private serverLogTail(): string {
    const result = spawnSync('tail', ['-n', '20', join(this.dir, 'server.log')], { encoding: 'utf8' });
    return result.stdout ? `\nserver log:\n${result.stdout}` : '';
  }

  private spawnOptions(): SpawnOptions {
    return { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'], ...(this.user ? { uid: this.user.uid, gid: this.user.gid } : {}) };
  }

  private writeSettings(options: LocalClusterOptions): void {
    this.appendConf({
      port: String(this.port),
      listen_addresses: "'127.0.0.1'",
      unix_socket_directories: `'${this.socketDir}'`,
      shared_preload_libraries: `'${(options.preload ?? ['pg_stat_statements']).join(',')}'`,
      max_connections: '200',
      fsync: 'off',
      synchronous_commit: 'off',
      full_page_writes: 'off',
      wal_level: 'replica',
      max_wal_senders: '5',
      'pg_stat_statements.track': 'all',
      track_io_timing: 'on',
      ...options.settings,
    });
  }

  private prependHba(lines: string[]): void {
    const file = join(this.dataDir, 'pg_hba.conf');
    const existing = spawnSync('cat', [file], { encoding: 'utf8' }).stdout ?? '';
    writeFileSync(file, `${lines.join('\n')}\n${existing}`);
    if (this.user) chownSync(file, this.user.uid, this.user.gid);
  }

  private appendConf(settings: Record<string, string>): void {
    const lines = Object.entries(settings).map(([k, v]) => `${k} = ${v}`);
    const file = join(this.dataDir, 'postgresql.auto.conf');
    const existing = spawnSync('cat', [file], { encoding: 'utf8' }).stdout ?? '';
    writeFileSync(file, `${existing}\n${lines.join('\n')}\n`);
    if (this.user) chownSync(file, this.user.uid, this.user.gid);
  }
}
