import { adopt, type AdoptResult } from '../db/adopt.js';
import { withClient } from '../db/pool.js';
import { describeDatabaseError } from '../db/errors.js';
import { convertQueryLog, migrate } from '../db/migrate.js';
import { ConfigError, FatalError } from '../errors.js';
import { MIGRATE_APPLICATION_NAME } from './assembly.js';
import type { Command } from './command.js';
import { commandContext } from './context.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

export const migrateCommand: Command = {
  usage: 'pgvector-exporter migrate [--database-url URL] [--adopt [--dry-run]]',
  options: {
    adopt: { type: 'boolean', help: 'adopt a database built by hand (e.g. from the specification): keep matching objects, add what is missing, record the migrations' },
    'dry-run': { type: 'boolean', help: 'with --adopt: print the plan, change nothing' },
  },
  async run(args) {
    const { connection, config } = commandContext(args);
    if (args.values['dry-run'] && !args.values.adopt) throw new ConfigError('migrate: --dry-run is only meaningful with --adopt');
    const fail = (e: unknown): never => {
      if (e instanceof FatalError) throw e;
      throw new FatalError(`migrate: ${describeDatabaseError(e, connection.description)}`);
    };
    if (args.values.adopt) {
      const dryRun = Boolean(args.values['dry-run']);
      out(`migrate --adopt${dryRun ? ' --dry-run' : ''}: ${connection.description} (from ${connection.source})`);
      const result = await withClient(connection, MIGRATE_APPLICATION_NAME, (client) => adopt(client, { dryRun }), config.database.connect_timeout).catch(fail);
      const code = reportAdoption(result, dryRun);
      if (code !== 0 || dryRun) return code;
      // Migrations after ADOPT_THROUGH change what exists (007: the partitioned query log): applied now.
    }
    out(`migrate: ${connection.description} (from ${connection.source})`);
    let lastReport = 0;
    const progress = (moved: number) => {
      if (Date.now() - lastReport < 5000) return;
      lastReport = Date.now();
      out(`converting the query log to partitions: ${moved} row(s) moved so far`);
    };
    const migrateAndConvert = async (client: Parameters<typeof migrate>[0]) => {
      const applied = await migrate(client);
      // The online part of 007: old rows move in small transactions while the service keeps writing.
      return { ...applied, converted: await convertQueryLog(client, 10_000, progress) };
    };
    const result = await withClient(connection, MIGRATE_APPLICATION_NAME, migrateAndConvert, config.database.connect_timeout).catch(fail);
    for (const notice of result.notices) out(`notice: ${notice}`);
    for (const file of result.applied) out(`applied ${file}`);
    if (result.converted > 0) out(`converted the query log to partitions: ${result.converted} row(s) moved`);
    for (const file of result.changed) out(`warning: ${file} was changed after it was applied; it is not run again`);
    out(
      result.applied.length === 0
        ? `database is up to date (${result.alreadyApplied} migrations already applied)`
        : `applied ${result.applied.length} migration(s), ${result.alreadyApplied} already applied`,
    );
    return 0;
  },
};

/** The plan, one line per object, grouped by migration; conflicts on stderr, then exit 1. */
function reportAdoption(result: AdoptResult, dryRun: boolean): number {
  if (result.adopted.length === 0) {
    out(`database is up to date (${result.alreadyApplied.length} migrations already applied); nothing to adopt`);
    return 0;
  }
  let migration = '';
  for (const step of result.steps) {
    if (step.migration !== migration) out((migration = step.migration));
    out(`  ${step.action.padEnd(7)} ${step.object}${step.note ? `: ${step.note}` : ''}`);
  }
  if (result.conflicts.length > 0) {
    for (const conflict of result.conflicts) err(`conflict: ${conflict}`);
    err(`migrate --adopt: ${result.conflicts.length} conflicting object(s); nothing was changed (rename or drop them, or fix them by hand, then run again)`);
    return 1;
  }
  const files = result.adopted.join(', ');
  out(dryRun ? `dry run: nothing was changed; would record as applied: ${files}` : `adopted: recorded as applied: ${files}`);
  return 0;
}
