#!/usr/bin/env node
import { restoreFetchGlobals } from './hide-fetch.js';
import { parseArgs } from 'node:util';
import { COLLECTOR_NAMES } from './collectors/index.js';
import { FIELDS } from './config/schema.js';
import { COMMANDS } from './commands/index.js';
import type { Command, CommandEntry, ParsedArgs } from './commands/command.js';
import { redactSecrets } from './log.js';
import { VERSION } from './version.js';

/** Argument parsing only: finds the subcommand, parses its flags, runs it, maps errors to exit codes. */

const GLOBAL_OPTIONS = {
  config: { type: 'string', help: 'YAML config file (or CONFIG_FILE)' },
  help: { type: 'boolean', short: 'h', help: 'show help' },
  version: { type: 'boolean', help: 'print the version and exit' },
} as const;

interface OptionSpec {
  type: 'string' | 'boolean';
  help: string;
  short?: string;
}

/**
 * The schema's flags. A bool field's flag is a switch with a --no- twin (node_exporter's
 * --collector.X / --no-collector.X); other flags take a value.
 */
function schemaOptions(): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {};
  for (const f of FIELDS) {
    if (!f.flag) continue;
    const help = `${f.help}${f.env ? ` [env ${f.env}]` : ''}`;
    if (f.type === 'bool') {
      options[f.flag] = { type: 'boolean', help };
      options[`no-${f.flag}`] = { type: 'boolean', help: `the opposite of --${f.flag}` };
    } else {
      options[f.flag] = { type: 'string', help };
    }
    for (const alias of f.flagAliases ?? []) options[alias] = { type: 'string', help: `same as --${f.flag}` };
  }
  return options;
}

/** --collector.foo for a collector that does not exist: name the known ones (parseArgs would only say "unknown option"). */
function checkCollectorFlags(argv: string[]): void {
  for (const arg of argv) {
    if (arg === '--') break;
    const match = /^--(?:no-)?collector\.([^=]*)/.exec(arg);
    if (match && !(COLLECTOR_NAMES as readonly string[]).includes(match[1]!)) {
      throw new Error(`unknown collector "${match[1]}" in ${arg.split('=')[0]} (known collectors: ${COLLECTOR_NAMES.join(', ')})`);
    }
  }
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

function commandUsage(entry: CommandEntry, command: Command): string {
  const options: Record<string, OptionSpec> = { ...schemaOptions(), ...GLOBAL_OPTIONS, ...command.options };
  const rows = Object.entries(options).map(([name, o]) => `  --${name}${o.type === 'string' ? ' VALUE' : ''}`.padEnd(34) + ` ${o.help}`);
  return [`Usage: ${command.usage}`, '', entry.summary, '', 'Options:', ...rows].join('\n');
}

export function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  checkCollectorFlags(argv);
  const options: Record<string, OptionSpec> = { ...schemaOptions(), ...GLOBAL_OPTIONS, ...command.options };
  const parsed = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.entries(options).map(([k, o]) => [k, { type: o.type, ...(o.short ? { short: o.short } : {}) }])),
    allowPositionals: true,
    strict: true,
  });
  const values = parsed.values as ParsedArgs['values'];
  // Switches reach the config loader as the strings a YAML file or an environment variable would hold.
  for (const f of FIELDS) {
    if (!f.flag || f.type !== 'bool') continue;
    const on = values[f.flag];
    const off = values[`no-${f.flag}`];
    if (on === true && off === true) throw new Error(`--${f.flag} and --no-${f.flag} contradict each other`);
    if (on === true) values[f.flag] = 'true';
    if (off === true) values[f.flag] = 'false';
    delete values[`no-${f.flag}`];
  }
  return { values, positionals: parsed.positionals };
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
  const entry = COMMANDS.find((c) => c.name === name);
  if (!entry) {
    process.stderr.write(`pgvector-exporter: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.name).join(', ')})\n`);
    return 2;
  }
  const command = await entry.load();
  restoreFetchGlobals();
  let args: ParsedArgs;
  try {
    args = parseCommandArgs(command, rest);
  } catch (err) {
    // node's parseArgs words some refusals over several lines (a value that starts with "-"): one line here.
    process.stderr.write(`pgvector-exporter ${name}: ${(err as Error).message.replace(/\s*\n\s*/g, ' ').trim()}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${commandUsage(entry, command)}\n`);
    return 0;
  }
  if (args.values.version) {
    process.stdout.write(`pgvector-exporter ${VERSION}\n`);
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
