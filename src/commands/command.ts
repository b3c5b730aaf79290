/** What every subcommand provides to the CLI; commands/ is thin wiring of config, db, poller, jobs and http. */
export interface CommandOption {
  type: 'string' | 'boolean';
  short?: string;
  help: string;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

export interface Command {
  name: string;
  summary: string;
  usage: string;
  /** Options beyond the config schema's flags (which every command accepts). */
  options: Record<string, CommandOption>;
  /** True when the command reads positional arguments itself (jobs list/run); otherwise any is exit 2. */
  positionals?: boolean;
  /** Resolves to the process exit code. Throws ConfigError (exit 2) or FatalError (exit 1) for a one-line message. */
  run(args: ParsedArgs): Promise<number>;
}
