import type pg from 'pg';
import { quoteQualified } from '../db/identifiers.js';
import { INDEX_BY_NAME_SQL, ivfflatLists, recommendedLists, type IndexCatalogRow } from '../pgvector/vector-index.js';
import { JobFailure, type Job, type JobContext, type JobPlan } from './job.js';

/**
 * REINDEX INDEX CONCURRENTLY of the vector index, only when needed:
 *  - the index is invalid (an interrupted CREATE INDEX / REINDEX CONCURRENTLY, a failed build);
 *  - rows inserted, updated (non-HOT) or deleted since the last rebuild exceed change_threshold of the
 *    table: an HNSW graph degrades as vectors are replaced, an IVFFlat's centroids go stale;
 *  - IVFFlat only: the table grew so far that the lists chosen at build time no longer fit
 *    (recommendedLists in pgvector/vector-index.ts, the rule the pgvector_ivfflat_recommended_lists metric shows); the rebuild then sets the new lists.
 * --force rebuilds regardless. Leftover invalid `<index>_ccnew*` / `_ccold*` indexes (an interrupted
 * REINDEX CONCURRENTLY leaves them, and every write still maintains them) are dropped first, always.
 *
 * "Since the last rebuild": pg_stat_user_tables counters are cumulative, so each rebuild records them in
 * maintenance_log.details.baseline and the next run subtracts. With no rebuild recorded yet, the baseline
 * is zero, i.e. changes since the statistics were last reset (for a table created with its index, that is
 * exactly "since the build"); at worst this costs one early rebuild, which then records a baseline.
 * Counters below the baseline mean the statistics were reset: the share is unknown, the run skips and
 * records the current counters as the new baseline.
 *
 * Never inside a transaction (REINDEX CONCURRENTLY refuses to). It takes SHARE UPDATE EXCLUSIVE on the
 * table only: searches and writes continue throughout.
 */
export interface ReindexVectorOptions {
  schema: string;
  index: string;
  changeThreshold: number;
  /** IVFFlat: rebuild when the wanted lists exceed this factor times the current lists. */
  listsGrowthFactor: number;
  /** maintenance_work_mem for the rebuild (e.g. '2GB'); undefined = the server's setting. */
  maintenanceWorkMem?: string;
  /** lock_timeout (ms) for ALTER INDEX SET (lists): it takes ACCESS EXCLUSIVE on the index, blocking searches while it waits. */
  alterLockTimeoutMs: number;
}

export const JOB_NAME = 'reindex-vector';

interface IndexState {
  oid: number;
  tableOid: number;
  table: string;
  am: string;
  valid: boolean;
  ready: boolean;
  /** IVFFlat: the lists it was built with (pgvector's default when unset). */
  lists: number;
}

export interface TableCounters {
  inserted: number;
  updated: number;
  hotUpdated: number;
  deleted: number;
}

export interface Baseline extends TableCounters {
  index: string;
  recorded_at: string;
}

export interface ReindexInput {
  force: boolean;
  valid: boolean;
  rows: number;
  counters: TableCounters;
  baseline?: TableCounters;
  changeThreshold: number;
  lists?: number;
  listsGrowthFactor: number;
}

export interface ReindexDecision {
  rebuild: boolean;
  /** Why it rebuilds, or why not. */
  reasons: string[];
  /** Rows changed since the baseline; undefined when the statistics were reset. */
  changed?: number;
  /** The counters should become the new baseline (statistics were reset). */
  rebaseline: boolean;
  /** IVFFlat lists to set before rebuilding. */
  newLists?: number;
}

const percent = (ratio: number) => `${(100 * ratio).toFixed(1)}%`;

/** The pure decision: every input comes from the catalog, pg_stat_user_tables and maintenance_log. */
export function decideReindex(input: ReindexInput): ReindexDecision {
  const reasons: string[] = [];
  const notes: string[] = [];
  if (input.force) reasons.push('forced (--force)');
  if (!input.valid) reasons.push('the index is invalid');

  let newLists: number | undefined;
  if (input.lists !== undefined) {
    const wanted = recommendedLists(input.rows);
    if (wanted > input.lists * input.listsGrowthFactor) {
      newLists = wanted;
      reasons.push(`lists=${input.lists} but ${input.rows} rows want ~${wanted}`);
    } else {
      notes.push(`lists=${input.lists} fits ${input.rows} rows (want ~${wanted})`);
    }
  }

  const base = input.baseline ?? { inserted: 0, updated: 0, hotUpdated: 0, deleted: 0 };
  const c = input.counters;
  const reset = c.inserted < base.inserted || c.updated < base.updated || c.hotUpdated < base.hotUpdated || c.deleted < base.deleted;
  let changed: number | undefined;
  if (reset) {
    notes.push('table statistics were reset since the last rebuild (counters below the recorded ones): share of changed rows unknown, counting again from now');
  } else {
    // HOT updates never touch an index, so they do not age it.
    changed = c.inserted - base.inserted + (c.updated - c.hotUpdated - (base.updated - base.hotUpdated)) + (c.deleted - base.deleted);
    const share = changed / Math.max(input.rows, 1);
    const since = input.baseline ? 'since the last rebuild' : 'since statistics were last reset (no rebuild recorded yet)';
    const text = `${changed} rows inserted/updated/deleted ${since} = ${percent(share)} of ${input.rows} rows`;
    if (share > input.changeThreshold) reasons.push(`${text} > ${percent(input.changeThreshold)}`);
    else notes.push(`${text} <= ${percent(input.changeThreshold)}`);
  }
  const rebuild = reasons.length > 0;
  return { rebuild, reasons: rebuild ? reasons : ['index valid', ...notes], changed, rebaseline: reset && !rebuild, newLists };
}

export function reindexVectorJob(options: ReindexVectorOptions): Job {
  const qualified = quoteQualified(options.schema, options.index);
  return {
    name: JOB_NAME,
    async plan(ctx) {
      const index = await readIndex(ctx.client, options.schema, options.index);
      // One session: the reads run one after the other (pg queues them anyway).
      const counters = await readCounters(ctx.client, index.tableOid);
      const rows = await readRowEstimate(ctx.client, index.tableOid);
      const baseline = await readBaseline(ctx.client, qualified);
      const leftovers = await readLeftovers(ctx.client, options.schema, options.index, index.tableOid);
      const decision = decideReindex({
        force: ctx.force,
        valid: index.valid && index.ready,
        rows,
        counters,
        baseline,
        changeThreshold: options.changeThreshold,
        lists: index.am === 'ivfflat' ? index.lists : undefined,
        listsGrowthFactor: options.listsGrowthFactor,
      });
      return buildPlan(ctx, options, qualified, index, decision, { counters, rows, baseline, leftovers });
    },
  };
}

interface Observed {
  counters: TableCounters;
  rows: number;
  baseline?: Baseline;
  leftovers: string[];
}

function buildPlan(
  ctx: JobContext,
  options: ReindexVectorOptions,
  qualified: string,
  index: IndexState,
  decision: ReindexDecision,
  seen: Observed,
): JobPlan {
  const drops = seen.leftovers.map((name) => `DROP INDEX CONCURRENTLY IF EXISTS ${quoteQualified(options.schema, name)}`);
  const alter = decision.rebuild && decision.newLists ? [`ALTER INDEX ${qualified} SET (lists = ${decision.newLists})`] : [];
  const reindex = decision.rebuild ? [`REINDEX INDEX CONCURRENTLY ${qualified}`] : [];
  const memory = decision.rebuild && options.maintenanceWorkMem ? [`SET maintenance_work_mem = '${options.maintenanceWorkMem}'`] : [];
  const statements = [...drops, ...alter, ...memory, ...reindex];
  const newBaseline: Baseline = { ...seen.counters, index: qualified, recorded_at: new Date().toISOString() };
  const cleanup = seen.leftovers.length ? `dropping leftover invalid index(es) ${seen.leftovers.join(', ')}; ` : '';
  const reason = `${cleanup}${decision.rebuild ? 'rebuild' : 'rebuild not needed'}: ${decision.reasons.join('; ')}`;
  const details: Record<string, unknown> = {
    index: qualified,
    table: index.table,
    access_method: index.am,
    index_oid: index.oid,
    valid: index.valid && index.ready,
    rows: seen.rows,
    changed_rows: decision.changed ?? null,
    change_threshold: options.changeThreshold,
    counters: seen.counters,
    previous_baseline: seen.baseline ?? null,
    leftovers: seen.leftovers,
    rebuild: decision.rebuild,
    reasons: decision.reasons,
    ...(index.am === 'ivfflat' ? { lists: index.lists, wanted_lists: recommendedLists(seen.rows) } : {}),
    // Counters taken before the rebuild: changes made during it count towards the next one.
    ...(decision.rebuild || decision.rebaseline ? { baseline: newBaseline } : {}),
  };
  return {
    needed: statements.length > 0,
    reason,
    statements,
    details,
    execute: async () => {
      for (const statement of drops) await ctx.client.query(statement);
      if (!decision.rebuild) {
        return { message: `dropped ${seen.leftovers.join(', ')}; ${reason.slice(cleanup.length)}`, details: { dropped: seen.leftovers } };
      }
      for (const statement of alter) await withLockTimeout(ctx.client, options.alterLockTimeoutMs, () => ctx.client.query(statement));
      if (options.maintenanceWorkMem) await ctx.client.query("SELECT set_config('maintenance_work_mem', $1, false)", [options.maintenanceWorkMem]);
      const startedAt = new Date();
      await ctx.client.query(reindex[0]!);
      ctx.progress?.({ step: 'REINDEX', startedAt, finishedAt: new Date() });
      const after = await readIndex(ctx.client, options.schema, options.index);
      if (!after.valid || !after.ready) throw new JobFailure(`${qualified} is still invalid after REINDEX`, { index_oid_after: after.oid });
      return {
        message: `${reason}; rebuilt in ${((Date.now() - startedAt.getTime()) / 1000).toFixed(1)}s`,
        details: { dropped: seen.leftovers, index_oid_after: after.oid, ...(decision.newLists ? { lists_after: decision.newLists } : {}) },
      };
    },
  };
}

async function withLockTimeout<T>(client: pg.Client, ms: number, fn: () => Promise<T>): Promise<T> {
  const { rows } = await client.query<{ previous: string }>("SELECT current_setting('lock_timeout') AS previous");
  await client.query("SELECT set_config('lock_timeout', $1, false)", [`${ms}ms`]);
  try {
    return await fn();
  } finally {
    await client.query("SELECT set_config('lock_timeout', $1, false)", [rows[0]!.previous]);
  }
}

async function readIndex(client: pg.Client, schema: string, name: string): Promise<IndexState> {
  const { rows } = await client.query<IndexCatalogRow>(INDEX_BY_NAME_SQL, [schema, name]);
  const row = rows[0];
  if (!row) throw new JobFailure(`index ${quoteQualified(schema, name)} not found (jobs.reindex-vector.index / schema)`);
  return {
    oid: Number(row.index_oid),
    tableOid: Number(row.table_oid),
    table: row.relname,
    am: row.method,
    valid: row.valid,
    ready: row.ready,
    lists: ivfflatLists(row.lists),
  };
}

async function readCounters(client: pg.Client, tableOid: number): Promise<TableCounters> {
  const { rows } = await client.query<{ ins: string; upd: string; hot: string; del: string }>(
    `SELECT n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot, n_tup_del AS del
       FROM pg_stat_user_tables WHERE relid = $1::oid`,
    [tableOid],
  );
  const r = rows[0] ?? { ins: '0', upd: '0', hot: '0', del: '0' };
  return { inserted: Number(r.ins), updated: Number(r.upd), hotUpdated: Number(r.hot), deleted: Number(r.del) };
}

/** reltuples (-1 = never analyzed or vacuumed) else the live-tuple count of the statistics. */
async function readRowEstimate(client: pg.Client, tableOid: number): Promise<number> {
  const { rows } = await client.query<{ rows: string }>(
    `SELECT CASE WHEN c.reltuples >= 0 THEN c.reltuples::int8 ELSE coalesce(s.n_live_tup, 0) END AS rows
       FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = $1::oid`,
    [tableOid],
  );
  return Number(rows[0]?.rows ?? 0);
}

async function readBaseline(client: pg.Client, qualified: string): Promise<Baseline | undefined> {
  const { rows } = await client.query<{ baseline: Baseline }>(
    `SELECT details->'baseline' AS baseline FROM maintenance_log
      WHERE job = $1 AND status = 'success' AND details->'baseline'->>'index' = $2
      ORDER BY started_at DESC, id DESC LIMIT 1`,
    [JOB_NAME, qualified],
  );
  return rows[0]?.baseline;
}

/** Invalid indexes named <index>_ccnew[N] / <index>_ccold[N] on the same table: leftovers of REINDEX CONCURRENTLY. */
async function readLeftovers(client: pg.Client, schema: string, index: string, tableOid: number): Promise<string[]> {
  const { rows } = await client.query<{ relname: string }>(
    `SELECT c.relname
       FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE i.indrelid = $3::oid AND n.nspname = $1 AND NOT i.indisvalid
        AND left(c.relname, length($2)) = $2
        AND substr(c.relname, length($2) + 1) ~ '^_cc(new|old)[0-9]*$'
      ORDER BY c.relname`,
    [schema, index, tableOid],
  );
  return rows.map((r) => r.relname);
}
