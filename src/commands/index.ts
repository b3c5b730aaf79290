import type { CommandEntry } from './command.js';

/** The one list of subcommands; each module is imported only when its command runs. */
export const COMMANDS: CommandEntry[] = [
  {
    name: 'serve',
    summary: 'poll the database and serve Prometheus metrics (GET /metrics, /healthz, /readyz, /probe?target=...)',
    load: async () => (await import('./serve.js')).serveCommand,
  },
  {
    name: 'migrate',
    summary: 'apply the schema migrations in sql/migrations (each once, in a transaction); --adopt takes over a database built by hand',
    load: async () => (await import('./migrate.js')).migrateCommand,
  },
  {
    name: 'jobs',
    summary: 'list the maintenance jobs, or run one now (same lock and maintenance_log as a scheduled run)',
    load: async () => (await import('./jobs.js')).jobsCommand,
  },
  {
    name: 'demo',
    summary: 'run everything on a throwaway database: seeded corpus, search workload, exporter, Prometheus, Alertmanager',
    load: async () => (await import('./demo.js')).demoCommand,
  },
];
