import type { Job } from './job.js';
import { planPerTable, type ManagedTablesOptions } from './managed-tables.js';

/**
 * VACUUM (ANALYZE) of the managed tables: reclaims dead tuples (the RAG tables see bulk re-embedding)
 * and refreshes statistics. Plain VACUUM, never FULL: it takes SHARE UPDATE EXCLUSIVE, so searches and
 * writes go on. It cannot run inside a transaction, so each statement runs on its own.
 */
export function vacuumAnalyzeJob(options: ManagedTablesOptions): Job {
  return {
    name: 'vacuum-analyze',
    plan: (ctx) => planPerTable(ctx, options, 'VACUUM (ANALYZE)', (table) => `VACUUM (ANALYZE) ${table}`),
  };
}
