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
  const config = readConfig(args, env);
  const file = configFile(args, env);
  const connection = resolveConnection(args.values['database-url'] as string | undefined, env, config.database_url, file ? `${file}: database_url` : undefined);
  const log = createLogger(config.log_level, undefined, config.log_format);
  return { config, connection, log };
}

/** The config alone, from the same sources (a reload reads it again this way). */
export function readConfig(args: ParsedArgs, env: NodeJS.ProcessEnv = process.env): Config {
  return loadConfig({ flags: args.values, env, file: configFile(args, env) });
}

function configFile(args: ParsedArgs, env: NodeJS.ProcessEnv): string | undefined {
  return (args.values.config as string | undefined) ?? env.CONFIG_FILE;
}
