import type { Command } from './command.js';
import { demoCommand } from './demo.js';
import { jobsCommand } from './jobs.js';
import { migrateCommand } from './migrate.js';
import { serveCommand } from './serve.js';

/** The one list of subcommands. */
export const COMMANDS: Command[] = [serveCommand, migrateCommand, jobsCommand, demoCommand];
