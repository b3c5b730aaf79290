import { loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { resolveConnection, type ConnectionSettings } from '../db/connection.js';
import { createLogger, type Logger } from '../log.js';
import type { ParsedArgs } from './command.js';

export interface CommandContext {
  config: Config;
  connection: ConnectionSettings;
  log: Logger;
}

/** Loads config (flags > environment > --config file > defaults), the connection and the logger, all validated. */
export function commandContext(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): CommandContext {
  const file = (args.values.config as string | undefined) ?? env.CONFIG_FILE;
  const config = loadConfig({ flags: args.values, env, file });
  const connection = resolveConnection(args.values['database-url'] as string | undefined, env, config.database_url, file ? `${file}: database_url` : undefined);
  const log = createLogger(config.log_level, undefined, config.log_format);
  return { config, connection, log };
}
