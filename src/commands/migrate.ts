import { withClient } from '../db/pool.js';
import { describeDatabaseError } from '../db/errors.js';
import { migrate } from '../db/migrate.js';
import { FatalError } from '../errors.js';
import type { Command } from './command.js';
import { commandContext } from './context.js';

export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply the schema migrations in sql/migrations (each once, in a transaction)',
  usage: 'pgvector-exporter migrate [--database-url URL]',
  options: {},
  async run(args) {
    const { connection, config } = commandContext(args);
    const out = (line: string) => process.stdout.write(`${line}\n`);
    out(`migrate: ${connection.description} (from ${connection.source})`);
    const result = await withClient(connection, 'pgvector-exporter-migrate', migrate, config.database.connect_timeout).catch((err: unknown) => {
      if (err instanceof FatalError) throw err;
      throw new FatalError(`migrate: ${describeDatabaseError(err, connection.description)}`);
    });
    for (const notice of result.notices) out(`notice: ${notice}`);
    for (const file of result.applied) out(`applied ${file}`);
    for (const file of result.changed) out(`warning: ${file} was changed after it was applied; it is not run again`);
    out(
      result.applied.length === 0
        ? `database is up to date (${result.alreadyApplied} migrations already applied)`
        : `applied ${result.applied.length} migration(s), ${result.alreadyApplied} already applied`,
    );
    return 0;
  },
};
