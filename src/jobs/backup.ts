import { spawn } from 'node:child_process';
import { chmod, mkdir, open, readdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { ConnectionSettings } from '../db/connection.js';
import { redactSecrets } from '../log.js';
import { JobFailure, type Job, type JobContext } from './job.js';

/**
 * pg_dump --format=custom of the database into `directory`, as <database>-<UTC timestamp>.dump.
 * The dump is written under a `.partial` name and renamed only after `pg_restore --list` has read it
 * back, so a file without that suffix is always a complete, readable archive. Dumps of this database
 * older than `retention` (by the timestamp in their name) are then deleted, as are `.partial` leftovers
 * of an interrupted run. The password reaches pg_dump through PGPASSWORD, never its command line
 * (which any local user can read in /proc).
 *
 * Dumps hold the whole database: they are written mode 0600 (created empty 0600 before pg_dump opens it, so it is never readable by others) into a
 * directory created 0700. Every file-system call is asynchronous and checks the job's AbortSignal
 * between steps, so a slow or strange file system (procfs, where a recursive mkdir never returns)
 * neither freezes the event loop nor outlives SIGTERM.
 */
export interface BackupOptions {
  directory: string;
  retentionMs: number;
  pgDump: string;
  pgRestore: string;
  /** pg_dump --lock-wait-timeout (ms, 0 = none): fail instead of queueing behind an ACCESS EXCLUSIVE lock. */
  lockTimeoutMs: number;
  /** Time limit of the whole pg_dump (ms, 0 = none). */
  timeoutMs: number;
}

interface DumpFile {
  name: string;
  takenAt: Date;
}

export function backupJob(options: BackupOptions): Job {
  return {
    name: 'backup',
    async plan(ctx) {
      const { rows } = await ctx.client.query<{ db: string }>('SELECT current_database() AS db');
      const database = rows[0]!.db;
      const prefix = `${safeFileName(database)}-`;
      const now = new Date();
      const target = join(options.directory, `${prefix}${timestamp(now)}.dump`);
      const partial = `${target}.partial`;
      const existing = await listDumps(options.directory, prefix);
      const expired = existing.dumps.filter((d) => now.getTime() - d.takenAt.getTime() > options.retentionMs).map((d) => d.name);
      const dumpArgs = ['--format=custom', `--file=${partial}`, ...(options.lockTimeoutMs > 0 ? [`--lock-wait-timeout=${options.lockTimeoutMs}`] : [])];
      return {
        needed: true,
        reason: `dump ${database} to ${target}; ${expired.length} dump(s) older than the retention to delete`,
        statements: [
          `${options.pgDump} ${dumpArgs.join(' ')}   # connection from PGHOST/PGPORT/PGUSER/PGDATABASE/PGPASSWORD (password not shown)`,
          `${options.pgRestore} --list ${partial}`,
          `mv ${partial} ${target}`,
          ...[...existing.partials, ...expired].map((name) => `rm ${join(options.directory, name)}`),
        ],
        details: { database, file: target, directory: options.directory, expired, stale_partials: existing.partials },
        execute: async () => {
          for (const name of existing.partials) await unlink(join(options.directory, name)).catch(() => undefined);
          const entries = await dumpAndVerify(ctx, options, dumpArgs, partial);
          ctx.signal.throwIfAborted();
          await chmod(partial, 0o600);
          await rename(partial, target);
          const size = (await stat(target)).size;
          for (const name of expired) await unlink(join(options.directory, name)).catch(() => undefined);
          return {
            message: `dumped ${database} to ${target} (${size} bytes, ${entries} archive entries verified); deleted ${expired.length} expired dump(s)`,
            // size_bytes is also rag_backup_last_size_bytes (jobs/metrics.ts), now and after a restart.
            details: { size_bytes: size, archive_entries: entries, deleted: expired },
          };
        },
      };
    },
  };
}

async function dumpAndVerify(ctx: JobContext, options: BackupOptions, dumpArgs: string[], partial: string): Promise<number> {
  await makeBackupDirectory(options.directory, ctx.signal);
  const env = clientEnvironment(ctx.connection);
  try {
    // pg_dump --file opens with O_TRUNC and keeps the mode of an existing file.
    await (await open(partial, 'wx', 0o600)).close();
    await runProgram(options.pgDump, dumpArgs, env, ctx.signal, options.timeoutMs);
    const listing = await runProgram(options.pgRestore, ['--list', partial], env, ctx.signal, options.timeoutMs);
    const entries = listing.split('\n').filter((line) => /^\d+;/.test(line)).length;
    if (entries === 0) throw new JobFailure(`${partial}: pg_restore --list found no archive entries`);
    return entries;
  } catch (err) {
    await unlink(partial).catch(() => undefined); // pg_dump may not have created it
    throw err;
  }
}

/** libpq's environment for the client programs: the password goes here, never into argv. */
export function clientEnvironment(connection: ConnectionSettings, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const c = connection.client;
  const env: NodeJS.ProcessEnv = { ...base };
  const set = (name: string, value: unknown) => {
    if (value !== undefined && value !== null && value !== '') env[name] = String(value);
  };
  set('PGHOST', c.host);
  set('PGPORT', c.port);
  set('PGUSER', c.user);
  set('PGDATABASE', c.database);
  if (typeof c.password === 'string') set('PGPASSWORD', c.password);
  // The same TLS as the exporter's own connections: libpq reads these exactly as the connection string meant them.
  set('PGSSLMODE', connection.tls.mode);
  set('PGSSLROOTCERT', connection.tls.files.sslrootcert);
  set('PGSSLCERT', connection.tls.files.sslcert);
  set('PGSSLKEY', connection.tls.files.sslkey);
  set('PGAPPNAME', 'pgvector-exporter-backup');
  return env;
}

function runProgram(program: string, args: string[], env: NodeJS.ProcessEnv, signal: AbortSignal, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { env, stdio: ['ignore', 'pipe', 'pipe'], signal, timeout: timeoutMs > 0 ? timeoutMs : undefined });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') reject(new JobFailure(`${program} not found (set jobs.backup.pg_dump / pg_restore or PATH)`));
      else if (err.name === 'AbortError') reject(new JobFailure(`${program} interrupted by shutdown`));
      else reject(new JobFailure(`${program}: ${err.message}`));
    });
    child.on('close', (code, sig) => {
      if (code === 0) return resolve(stdout);
      const why = sig ? `killed by ${sig}${sig === 'SIGTERM' && timeoutMs > 0 ? ` (time limit ${timeoutMs} ms)` : ''}` : `exit code ${code}`;
      reject(new JobFailure(`${program} failed (${why}): ${redactSecrets(stderr.trim().split('\n').slice(-3).join(' | '))}`));
    });
  });
}

/**
 * mkdir -p, one component at a time and mode 0700 for what it creates (an existing directory keeps its
 * mode: the operator chose it). Node's recursive mkdir loops forever where mkdir answers ENOENT for a
 * parent that exists (procfs, sysfs); here such an answer is a clear failure, and the walk is bounded by
 * the path's depth and stops at SIGTERM.
 */
export async function makeBackupDirectory(directory: string, signal: AbortSignal): Promise<void> {
  const target = resolve(directory);
  const chain: string[] = [];
  for (let dir = target; dir !== dirname(dir); dir = dirname(dir)) chain.unshift(dir);
  for (const dir of chain) {
    signal.throwIfAborted();
    try {
      await mkdir(dir, { mode: 0o700 });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EEXIST') throw new JobFailure(`cannot create backup directory ${target}: ${code ?? String(err)} at ${dir}`);
    }
    const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      throw new JobFailure(`cannot create backup directory ${target}: ${err.code ?? String(err)} at ${dir}`);
    });
    if (!info.isDirectory()) throw new JobFailure(`cannot create backup directory ${target}: ${dir} is not a directory`);
  }
}

async function listDumps(directory: string, prefix: string): Promise<{ dumps: DumpFile[]; partials: string[] }> {
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return { dumps: [], partials: [] };
  }
  const pattern = /^(\d{8}T\d{6}Z)\.dump(\.partial)?$/;
  const dumps: DumpFile[] = [];
  const partials: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const match = pattern.exec(name.slice(prefix.length));
    if (!match) continue;
    if (match[2]) partials.push(name);
    else dumps.push({ name, takenAt: parseTimestamp(match[1]!) });
  }
  return { dumps, partials };
}

/** 20260124T020000Z: sorts by time, no characters that need quoting in a shell or on Windows. */
function timestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function parseTimestamp(text: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text)!;
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

function safeFileName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}
