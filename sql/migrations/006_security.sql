-- 006_security.sql
-- Roles and privileges. Roles are cluster-wide: created only if missing so this migration
-- also succeeds in a second database of the same cluster. All roles are NOLOGIN group roles
-- without passwords; grant them to login roles outside the migrations.
-- Grants are per database and idempotent.

DO $$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['rag_read_only', 'rag_read_write', 'rag_admin', 'pgvector_exporter'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$$;

-- Schema usage (current schema, whatever it is called; not 'public' by assumption).
DO $$
BEGIN
  EXECUTE format('GRANT USAGE ON SCHEMA %I TO rag_read_only, rag_read_write, rag_admin, pgvector_exporter',
                 current_schema());
END
$$;

-- rag_read_only: read the RAG tables.
GRANT SELECT ON framework_documents, chunk_embeddings, framework_metadata,
                key_concepts, document_concepts, source_lines
  TO rag_read_only;

-- rag_read_write: read + write the RAG tables, use their sequences, log queries.
GRANT SELECT, INSERT, UPDATE, DELETE ON framework_documents, chunk_embeddings, framework_metadata,
                                        key_concepts, document_concepts, source_lines
  TO rag_read_write;
GRANT USAGE, SELECT ON SEQUENCE key_concepts_id_seq, source_lines_id_seq, query_performance_log_id_seq
  TO rag_read_write;
GRANT INSERT ON query_performance_log TO rag_read_write;

-- rag_admin: everything on the schema's objects.
GRANT ALL ON framework_documents, chunk_embeddings, framework_metadata, key_concepts,
             document_concepts, source_lines, query_performance_log, query_performance_archive,
             maintenance_log, security_audit_log, performance_dashboard
  TO rag_admin;
GRANT ALL ON SEQUENCE key_concepts_id_seq, source_lines_id_seq, query_performance_log_id_seq,
                      maintenance_log_id_seq, security_audit_log_id_seq
  TO rag_admin;
GRANT EXECUTE ON FUNCTION system_health_check(), set_updated_at() TO rag_admin;

-- Search-related functions: the searches use only operators/functions of the vector extension
-- and core full-text search (<=>, halfvec casts, websearch_to_tsquery), which are executable
-- by PUBLIC; there are no schema-owned search functions to grant.

-- pgvector_exporter: monitoring (pg_monitor), read everything, write its own logs,
-- retention on the query log, run the health check.
DO $$
BEGIN
  IF NOT pg_has_role('pgvector_exporter', 'pg_monitor', 'MEMBER') THEN
    GRANT pg_monitor TO pgvector_exporter;
  END IF;
  -- PostgreSQL 17+: pg_maintain allows VACUUM / ANALYZE / REINDEX / CLUSTER / REFRESH MATVIEW
  -- without owning the tables. On PG15/16 the maintenance login must own the tables
  -- (be granted the owning role) or be superuser — see sql/README.md.
  IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'pg_maintain')
     AND NOT pg_has_role('pgvector_exporter', 'pg_maintain', 'MEMBER') THEN
    EXECUTE 'GRANT pg_maintain TO pgvector_exporter';
  END IF;
END
$$;

GRANT SELECT ON framework_documents, chunk_embeddings, framework_metadata, key_concepts,
                document_concepts, source_lines, query_performance_log, query_performance_archive,
                maintenance_log, security_audit_log, performance_dashboard
  TO pgvector_exporter;
GRANT SELECT, INSERT, UPDATE ON maintenance_log TO pgvector_exporter;
GRANT USAGE, SELECT ON SEQUENCE maintenance_log_id_seq TO pgvector_exporter;
GRANT SELECT, INSERT, DELETE ON query_performance_log, query_performance_archive TO pgvector_exporter;
GRANT EXECUTE ON FUNCTION system_health_check() TO pgvector_exporter;
