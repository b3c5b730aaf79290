#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { FIELDS } from './config/schema.js';
import { COMMANDS } from './commands/index.js';
import type { Command, ParsedArgs } from './commands/command.js';
import { redactSecrets } from './log.js';
import { VERSION } from './version.js';

/** Argument parsing only: finds the subcommand, parses its flags, runs it, maps errors to exit codes. */

const GLOBAL_OPTIONS = {
  config: { type: 'string', help: 'YAML config file (or CONFIG_FILE)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
} as const;

function schemaOptions() {
  return Object.fromEntries(
    FIELDS.filter((f) => f.flag).map((f) => [f.flag!, { type: 'string' as const, help: `${f.help}${f.env ? ` [env ${f.env}]` : ''}` }]),
  );
}

function usage(): string {
  const lines = [
    `pgvector-exporter ${VERSION}: Prometheus exporter and maintenance sidecar for PostgreSQL + pgvector`,
    '',
    'Usage: pgvector-exporter <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(10)} ${c.summary}`),
    '',
    'Run "pgvector-exporter <command> --help" for its options; --version prints the version.',
  ];
  return lines.join('\n');
}

function commandUsage(command: Command): string {
  const options = { ...schemaOptions(), ...GLOBAL_OPTIONS, ...command.options };
  const rows = Object.entries(options).map(([name, o]) => `  --${name}${o.type === 'string' ? ' VALUE' : ''}`.padEnd(34) + ` ${o.help}`);
  return [`Usage: ${command.usage}`, '', command.summary, '', 'Options:', ...rows].join('\n');
}

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options = { ...schemaOptions(), ...GLOBAL_OPTIONS, ...command.options };
  const parsed = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, ...('short' in o && o.short ? { short: o.short } : {}) }])),
    allowPositionals: true,
    strict: true,
  });
  return { values: parsed.values as ParsedArgs['values'], positionals: parsed.positionals };
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(`${usage()}\n`);
    return name ? 0 : 2;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`pgvector-exporter ${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`pgvector-exporter: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})\n`);
    return 2;
  }
  let args: ParsedArgs;
  try {
    args = parseCommandArgs(command, rest);
  } catch (err) {
    process.stderr.write(`pgvector-exporter ${name}: ${(err as Error).message}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${commandUsage(command)}\n`);
    return 0;
  }
  if (!command.positionals && args.positionals.length > 0) {
    process.stderr.write(`pgvector-exporter ${name}: unexpected argument "${args.positionals[0]}" (usage: ${command.usage})\n`);
    return 2;
  }
  return command.run(args);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const e = err as { exitCode?: number; message?: string; name?: string };
    const known = e?.name === 'ConfigError' || e?.name === 'FatalError';
    process.stderr.write(`pgvector-exporter: ${redactSecrets(known ? e.message! : `unexpected error: ${e?.message ?? String(err)}`)}\n`);
    process.exitCode = e?.exitCode ?? 1;
  },
);
