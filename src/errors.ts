/**
 * Errors the CLI turns into one clear line and an exit code, never a stack trace.
 * ConfigError: the user's input (flags, environment, config file) is wrong -> exit 2.
 * FatalError: the command cannot do its work (database unreachable, migration failed) -> exit 1.
 */
export class ConfigError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export class FatalError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'FatalError';
  }
}
