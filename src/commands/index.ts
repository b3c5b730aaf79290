import type { Command } from './command.js';
import { migrateCommand } from './migrate.js';

/** The one list of subcommands. */
export const COMMANDS: Command[] = [migrateCommand];
