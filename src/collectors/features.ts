import type { CollectContext, QueryFn } from './collector.js';

/**
 * The optional parts of a database. A pgvector database with its own schema has no
 * system_health_check(), no query_performance_log and maybe no pg_stat_statements; a least-privilege
 * role may lack a grant. What a collector needs is checked (a cheap catalog lookup) before it is
 * queried: absent means not collected, reported as pgvector_exporter_feature_enabled{feature} 0 with one
 * info line naming what is missing (the object, or the GRANT to run), never a failed poll. The check is
 * repeated on every poll, so a feature appears as soon as the schema or the grant does.
 */
export const FEATURES = ['health_check', 'query_log', 'embeddings', 'embedding_failures', 'recall', 'expected_indexes', 'pg_stat_statements', 'pg_monitor'] as const;
export type Feature = (typeof FEATURES)[number];

interface Requirement {
  kind: 'table' | 'function';
  /** As to_regclass() / to_regprocedure() read it: resolved through the search_path. */
  name: string;
}

/** The objects each RAG feature reads (the schema of sql/migrations). */
const REQUIREMENTS: Partial<Record<Feature, readonly Requirement[]>> = {
  health_check: [{ kind: 'function', name: 'system_health_check()' }],
  query_log: [{ kind: 'table', name: 'query_performance_log' }],
  embeddings: [
    { kind: 'table', name: 'framework_documents' },
    { kind: 'table', name: 'chunk_embeddings' },
  ],
  embedding_failures: [
    { kind: 'table', name: 'query_performance_log' },
    { kind: 'table', name: 'framework_documents' },
    { kind: 'table', name: 'chunk_embeddings' },
  ],
  recall: [{ kind: 'table', name: 'chunk_embeddings' }],
};

export const REQUIREMENTS_SQL = `
SELECT r.kind, r.name, o.oid IS NOT NULL AS present,
       CASE WHEN o.oid IS NULL THEN NULL
            WHEN r.kind = 'function' THEN has_function_privilege(o.oid, 'EXECUTE')
            ELSE has_table_privilege(o.oid, 'SELECT') END AS granted,
       current_user AS role
  FROM unnest($1::text[], $2::text[]) AS r(kind, name)
  CROSS JOIN LATERAL (SELECT CASE WHEN r.kind = 'function' THEN to_regprocedure(r.name)::oid
                                  ELSE to_regclass(r.name)::oid END AS oid) o`;

interface RequirementRow extends Record<string, unknown> {
  kind: string;
  name: string;
  present: boolean;
  granted: boolean | null;
  role: string;
}

export interface FeatureState {
  enabled: boolean;
  /** Why not, in words an operator acts on: the missing object, or the GRANT to run. */
  reason?: string;
}

/** Whether the database has the objects of a RAG feature and the role may read them. */
export async function ragFeatureState(query: QueryFn, feature: Feature): Promise<FeatureState> {
  const requirements = REQUIREMENTS[feature] ?? [];
  const rows = await query<RequirementRow>(REQUIREMENTS_SQL, [requirements.map((r) => r.kind), requirements.map((r) => r.name)]);
  const missing = rows.filter((r) => !r.present).map((r) => (r.kind === 'function' ? `function ${r.name}` : `table ${r.name}`));
  if (missing.length > 0) {
    return { enabled: false, reason: `${missing.join(' and ')} not found (the RAG schema of sql/migrations is not installed in this database)` };
  }
  const denied = rows.filter((r) => !r.granted);
  if (denied.length > 0) {
    const grants = denied.map((r) => (r.kind === 'function' ? `GRANT EXECUTE ON FUNCTION ${r.name} TO ${r.role}` : `GRANT SELECT ON ${r.name} TO ${r.role}`));
    return { enabled: false, reason: `permission denied: ${grants.join('; ')}` };
  }
  return { enabled: true };
}

/** Checks a RAG feature, reports it, and tells the collector whether to go on. */
export async function requireFeature(ctx: CollectContext, feature: Feature): Promise<boolean> {
  const state = await ragFeatureState(ctx.query, feature);
  ctx.reportFeature(feature, state.enabled, state.reason);
  return state.enabled;
}
