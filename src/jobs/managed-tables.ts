import type pg from 'pg';
import { quoteQualified } from '../db/identifiers.js';
import { describeDatabaseError, errorCode, PERMISSION_DENIED_CODE } from '../db/errors.js';
import { JobFailure, type JobContext, type JobPlan } from './job.js';

export interface ManagedTablesOptions {
  schema: string;
  tables: readonly string[];
}

export interface ResolvedTables {
  /** Tables that exist and that this role may ANALYZE/VACUUM. */
  present: string[];
  missing: string[];
  /** Tables that exist but that this role may not maintain. */
  forbidden: string[];
}

/**
 * Splits the configured tables into those that exist (as tables), those that do not, and those this
 * role may not maintain. That last check matters: ANALYZE and VACUUM of a table the role may not
 * maintain do not fail, they print a WARNING and skip it, which would read as a success. Up to
 * PostgreSQL 16 the role must own the table (or the database, or be superuser); from 17 on the MAINTAIN
 * privilege (pg_maintain) suffices.
 */
export async function resolveTables(client: pg.Client, options: ManagedTablesOptions): Promise<ResolvedTables> {
  const { rows } = await client.query<{ relname: string; allowed: boolean }>(
    `SELECT c.relname,
            CASE WHEN current_setting('server_version_num')::int >= 170000 THEN has_table_privilege(c.oid, 'MAINTAIN')
                 ELSE pg_has_role(c.relowner, 'USAGE')
                      OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE') END AS allowed
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = $1 AND c.relname = ANY ($2::text[]) AND c.relkind IN ('r', 'p', 'm')`,
    [options.schema, options.tables],
  );
  const allowed = new Map(rows.map((r) => [r.relname, r.allowed]));
  return {
    present: options.tables.filter((t) => allowed.get(t) === true),
    missing: options.tables.filter((t) => !allowed.has(t)),
    forbidden: options.tables.filter((t) => allowed.get(t) === false),
  };
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
  const { present, missing, forbidden } = await resolveTables(ctx.client, options);
  const statements = present.map((t) => statementFor(quoteQualified(options.schema, t)));
  const missingNote = missing.length ? `; not found in schema ${options.schema}: ${missing.join(', ')}` : '';
  const forbiddenNote = forbidden.length ? `; not allowed to maintain (not owner, no MAINTAIN): ${forbidden.join(', ')}` : '';
  return {
    needed: present.length + forbidden.length > 0,
    reason: `${present.length} managed table(s)${missingNote}${forbiddenNote}`,
    statements,
    details: { tables: present, missing_tables: missing, forbidden_tables: forbidden },
    execute: async () => {
      const done: string[] = [];
      const failed: { table: string; error: string; code?: string }[] = forbidden.map((table) => ({
        table,
        error: `permission denied: ${verb} would skip it (the job's role must own the table, or have MAINTAIN on PostgreSQL 17+)`,
        code: PERMISSION_DENIED_CODE,
      }));
      for (const [i, statement] of statements.entries()) {
        if (ctx.signal.aborted) throw new JobFailure('interrupted by shutdown', { tables: done, failed, missing_tables: missing, forbidden_tables: forbidden });
        const startedAt = new Date();
        try {
          await ctx.client.query(statement);
          done.push(present[i]!);
        } catch (err) {
          failed.push({ table: present[i]!, error: describeDatabaseError(err), code: errorCode(err) });
          ctx.log.warn({ table: present[i], error: describeDatabaseError(err) }, `${verb} failed`);
        }
        ctx.progress?.({ step: `${verb} ${present[i]}`, startedAt, finishedAt: new Date() });
      }
      const details = { tables: done, failed, missing_tables: missing, forbidden_tables: forbidden };
      if (failed.length > 0) {
        throw new JobFailure(`${verb} failed on ${failed.map((f) => `${f.table} (${f.error})`).join('; ')}; ${done.length} table(s) done`, details);
      }
      return { message: `${verb} of ${done.length} table(s)${missingNote}`, details };
    },
  };
}
