import type pg from 'pg';
import { quoteQualified } from '../db/identifiers.js';
import { describeDatabaseError } from '../db/errors.js';
import { JobFailure, type JobContext, type JobPlan } from './job.js';

export interface ManagedTablesOptions {
  schema: string;
  tables: string[];
}

/** Splits the configured tables into those that exist (as tables) and those that do not. */
export async function resolveTables(client: pg.Client, options: ManagedTablesOptions): Promise<{ present: string[]; missing: string[] }> {
  const { rows } = await client.query<{ relname: string }>(
    `SELECT c.relname
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p', 'm')`,
    [options.schema, options.tables],
  );
  const found = new Set(rows.map((r) => r.relname));
  return { present: options.tables.filter((t) => found.has(t)), missing: options.tables.filter((t) => !found.has(t)) };
}

/**
 * Plans one statement per managed table (ANALYZE or VACUUM (ANALYZE)). One statement per table, not one
 * for all, so each waits at most lock_timeout for its own table, and a table that cannot be locked does
 * not stop the others: the run then ends `failed`, naming the tables that failed and why.
 */
export async function planPerTable(
  ctx: JobContext,
  options: ManagedTablesOptions,
  verb: string,
  statementFor: (qualified: string) => string,
): Promise<JobPlan> {
  const { present, missing } = await resolveTables(ctx.client, options);
  const statements = present.map((t) => statementFor(quoteQualified(options.schema, t)));
  const missingNote = missing.length ? `; not found in schema ${options.schema}: ${missing.join(', ')}` : '';
  return {
    needed: present.length > 0,
    reason: present.length > 0 ? `${present.length} managed table(s)${missingNote}` : `no managed table exists${missingNote}`,
    statements,
    details: { tables: present, missing_tables: missing },
    execute: async () => {
      const done: string[] = [];
      const failed: { table: string; error: string; code?: string }[] = [];
      for (const [i, statement] of statements.entries()) {
        if (ctx.signal.aborted) throw new JobFailure('interrupted by shutdown', { tables: done, failed, missing_tables: missing });
        const startedAt = new Date();
        try {
          await ctx.client.query(statement);
          done.push(present[i]!);
        } catch (err) {
          failed.push({ table: present[i]!, error: describeDatabaseError(err), code: (err as { code?: string }).code });
          ctx.log.warn({ table: present[i], error: describeDatabaseError(err) }, `${verb} failed`);
        }
        ctx.progress?.({ step: `${verb} ${present[i]}`, startedAt, finishedAt: new Date() });
      }
      const details = { tables: done, failed, missing_tables: missing };
      if (failed.length > 0) {
        throw new JobFailure(`${verb} failed on ${failed.map((f) => `${f.table} (${f.error})`).join('; ')}; ${done.length} table(s) done`, details);
      }
      return { message: `${verb} of ${done.length} table(s)${missingNote}`, details };
    },
  };
}
