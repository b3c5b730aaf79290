import { describeDatabaseError } from '../db/errors.js';
import { createPool } from '../db/pool.js';
import { ConfigError } from '../errors.js';
import { createJobRunner, isJobName, JOB_NAMES } from '../jobs/index.js';
import { lastResults, type LastResult } from '../jobs/maintenance-log.js';
import type { RunResult } from '../jobs/runner.js';
import { nextFireTime } from '../jobs/scheduler.js';
import { onShutdownSignal } from '../signals.js';
import { jobRunnerSettings } from './assembly.js';
import type { Command, ParsedArgs } from './command.js';
import { commandContext } from './context.js';

/** Exit codes of `jobs run`: 0 only on success (a dry run that planned is a success). */
export const EXIT_SUCCESS = 0;
export const EXIT_FAILURE = 1;
export const EXIT_SKIPPED = 3;

const out = (line = '') => process.stdout.write(`${line}\n`);

export const jobsCommand: Command = {
  usage: `pgvector-exporter jobs list | jobs run <name> [--dry-run] [--force]   (jobs: ${JOB_NAMES.join(', ')}; exit 0 success, 1 failure, 3 skipped)`,
  options: {
    'dry-run': { type: 'boolean', help: 'print the statements the job would run; change nothing' },
    force: { type: 'boolean', help: 'run even when the job finds nothing to do (reindex-vector)' },
  },
  positionals: true,
  async run(args) {
    const [sub, name, ...extra] = args.positionals;
    if (sub === 'list' && !name) return listJobs(args);
    if (sub === 'run' && name && extra.length === 0) return runJob(args, name);
    throw new ConfigError(`jobs: expected "jobs list" or "jobs run <name>" (jobs: ${JOB_NAMES.join(', ')})`);
  },
};

/**
 * The CLI prints for people: the result is its one line (failures on stderr), details are in
 * maintenance_log; the JSON log on stderr only carries errors unless --log-level/LOG_LEVEL asks for more.
 */
function cliContext(args: ParsedArgs) {
  const ctx = commandContext(args);
  if (args.values['log-level'] === undefined && !process.env.LOG_LEVEL) ctx.log.level = 'error';
  return ctx;
}

async function listJobs(args: ParsedArgs): Promise<number> {
  const { config, connection, log } = cliContext(args);
  const pool = createPool(connection, jobRunnerSettings(config).pool, log);
  let results: Map<string, LastResult> | undefined;
  let problem: string | undefined;
  try {
    results = await lastResults(pool);
  } catch (err) {
    problem = describeDatabaseError(err, connection.description);
  } finally {
    await pool.end().catch(() => undefined);
  }
  const rows = JOB_NAMES.map((job) => {
    const c = config.jobs[job];
    const next = c.enabled ? (nextFireTime(c.schedule, c.timezone)?.toISOString() ?? '-') : '-';
    return [job, c.enabled ? 'yes' : 'no', c.schedule, c.timezone, next, describeLast(results?.get(job), results !== undefined)];
  });
  printTable(['job', 'enabled', 'schedule', 'timezone', 'next run', 'last result'], rows);
  if (!config.jobs.enabled) out('\nthe scheduler is off (jobs.enabled: false): serve runs no job');
  if (problem) {
    process.stderr.write(`pgvector-exporter jobs list: last results unknown: ${problem}\n`);
    return EXIT_FAILURE;
  }
  return EXIT_SUCCESS;
}

function describeLast(last: LastResult | undefined, known: boolean): string {
  if (!known) return 'unknown';
  if (!last) return 'never ran';
  const when = (last.finished_at ?? last.started_at).toISOString();
  const where = last.host ? ` on ${last.host}` : '';
  return `${last.status} ${when}${where}${last.message ? `: ${last.message}` : ''}`;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === header.length - 1 ? 0 : r[i]!.length))));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  out(line(header));
  for (const row of rows) out(line(row));
}

async function runJob(args: ParsedArgs, name: string): Promise<number> {
  if (!isJobName(name)) {
    throw new ConfigError(`jobs run: unknown job "${name}" (known jobs: ${JOB_NAMES.join(', ')})`);
  }
  const job = name;
  const { config, connection, log } = cliContext(args);
  const dryRun = args.values['dry-run'] === true;
  // The runner serve builds, the same way; the CLI prints the result itself.
  const { runner, close } = createJobRunner(jobRunnerSettings(config), connection, log, { logResults: false });
  if (!config.jobs[job].enabled) out(`note: ${job} is disabled in the config (jobs.${job}.enabled); running it because it was asked for by name`);
  // SIGTERM/SIGINT cancel the run at once; it is still recorded. A second signal exits.
  const stopListening = onShutdownSignal(log, () => void runner.shutdown(0), 30_000);
  let result: RunResult;
  try {
    result = await runner.run(job, {
      trigger: 'manual',
      dryRun,
      force: args.values.force === true,
      progress: (e) => out(`  ${e.step}${e.rows !== undefined ? `: ${e.rows} row(s)` : ''} (${((e.finishedAt.getTime() - e.startedAt.getTime()) / 1000).toFixed(2)}s)`),
    });
  } finally {
    stopListening();
    await close();
  }
  printResult(result);
  if (result.result === 'success') return EXIT_SUCCESS;
  return result.result === 'skipped' ? EXIT_SKIPPED : EXIT_FAILURE;
}

function printResult(result: RunResult): void {
  if (result.dryRun) {
    out(`${result.job}: ${result.message}`);
    out(result.statements.length ? 'would run:' : 'would run nothing');
    // One entry per statement or command, continuation lines indented further.
    for (const statement of result.statements) out(`  ${statement.replace(/\n/g, '\n    ')}`);
    return;
  }
  const line = `${result.job}: ${result.result} in ${result.durationSeconds.toFixed(2)}s: ${result.message}`;
  if (result.result === 'failure') process.stderr.write(`pgvector-exporter jobs run: ${line}\n`);
  else out(line);
  if (result.logId !== undefined) out(`recorded in maintenance_log (id ${result.logId})`);
}
