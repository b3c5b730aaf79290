import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
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
      const existing = listDumps(options.directory, prefix);
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
          for (const name of existing.partials) unlinkSync(join(options.directory, name));
          const entries = await dumpAndVerify(ctx, options, dumpArgs, partial);
          renameSync(partial, target);
          const size = statSync(target).size;
          for (const name of expired) unlinkSync(join(options.directory, name));
          return {
            message: `dumped ${database} to ${target} (${size} bytes, ${entries} archive entries verified); deleted ${expired.length} expired dump(s)`,
            details: { size_bytes: size, archive_entries: entries, deleted: expired },
            backupSizeBytes: size,
          };
        },
      };
    },
  };
}

async function dumpAndVerify(ctx: JobContext, options: BackupOptions, dumpArgs: string[], partial: string): Promise<number> {
  try {
    mkdirSync(options.directory, { recursive: true });
  } catch (err) {
    throw new JobFailure(`cannot create backup directory ${options.directory}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const env = clientEnvironment(ctx.connection);
  try {
    await runProgram(options.pgDump, dumpArgs, env, ctx.signal, options.timeoutMs);
    const listing = await runProgram(options.pgRestore, ['--list', partial], env, ctx.signal, options.timeoutMs);
    const entries = listing.split('\n').filter((line) => /^\d+;/.test(line)).length;
    if (entries === 0) throw new JobFailure(`${partial}: pg_restore --list found no archive entries`);
    return entries;
  } catch (err) {
    try {
      unlinkSync(partial);
    } catch {
      /* pg_dump may not have created it */
    }
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
  if (c.ssl) set('PGSSLMODE', c.ssl === true ? 'verify-full' : 'require');
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

function listDumps(directory: string, prefix: string): { dumps: DumpFile[]; partials: string[] } {
  let names: string[];
  try {
    names = readdirSync(directory);
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
