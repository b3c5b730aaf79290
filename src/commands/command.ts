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

/**
 * What the CLI knows of a subcommand before loading it: `serve` never loads the demo, the migrations or
 * the jobs CLI (each module graph it does not load is memory it does not hold; docs/operations.md, "Memory").
 */
export interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

export interface Command {
  usage: string;
  /** Options beyond the config schema's flags (which every command accepts). */
  options: Record<string, CommandOption>;
  /** True when the command reads positional arguments itself (jobs list/run); otherwise any is exit 2. */
  positionals?: boolean;
  /** Resolves to the process exit code. Throws ConfigError (exit 2) or FatalError (exit 1) for a one-line message. */
  run(args: ParsedArgs): Promise<number>;
}
