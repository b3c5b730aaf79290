import type { Job } from './job.js';
import { planPerTable, type ManagedTablesOptions } from './managed-tables.js';

/**
 * ANALYZE of the managed tables: fresh planner statistics, what the schema's update_vector_statistics()
 * does. ANALYZE takes SHARE UPDATE EXCLUSIVE: searches and writes go on; it waits only behind DDL,
 * VACUUM or another ANALYZE of the same table, and then for at most lock_timeout.
 */
export function analyzeJob(options: ManagedTablesOptions): Job {
  return {
    name: 'analyze',
    plan: (ctx) => planPerTable(ctx, options, 'ANALYZE', (table) => `ANALYZE ${table}`),
  };
}
