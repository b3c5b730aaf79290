-- 001_extensions.sql
-- Extensions required by the RAG schema.
--   vector              required, >= 0.7 (halfvec type + HNSW on halfvec up to 4000 dims)
--   pg_stat_statements  optional; created only when it is in shared_preload_libraries
-- gen_random_uuid() is core since PostgreSQL 13, so pgcrypto is not needed.
-- Runs inside one transaction (applied by `pgvector-exporter migrate`); re-runnable per database.

CREATE EXTENSION IF NOT EXISTS vector;

DO $$
DECLARE
  v_version text;
  v_parts   int[];
BEGIN
  SELECT extversion INTO v_version FROM pg_extension WHERE extname = 'vector';
  IF v_version IS NULL THEN
    RAISE EXCEPTION 'pgvector extension "vector" is not installed in database %', current_database();
  END IF;
  -- '0.8.0' -> {0,8,0}; tolerate suffixes such as '0.8.0-dev'
  v_parts := string_to_array(regexp_replace(v_version, '[^0-9.].*$', ''), '.')::int[];
  IF v_parts[1] = 0 AND coalesce(v_parts[2], 0) < 7 THEN
    RAISE EXCEPTION 'pgvector % is too old: version >= 0.7.0 is required (halfvec type and HNSW indexes on halfvec)', v_version
      USING HINT = 'Install pgvector >= 0.7 on the server and run: ALTER EXTENSION vector UPDATE;';
  END IF;
END
$$;

DO $$
BEGIN
  IF 'pg_stat_statements' = ANY (
       string_to_array(replace(replace(current_setting('shared_preload_libraries', true), ' ', ''), '"', ''), ',')
     ) THEN
    BEGIN
      CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
    EXCEPTION WHEN insufficient_privilege THEN
      RAISE NOTICE 'pg_stat_statements is preloaded but the migration role may not create it (%); skipping', SQLERRM;
    END;
  ELSE
    RAISE NOTICE 'pg_stat_statements is not in shared_preload_libraries; skipping CREATE EXTENSION pg_stat_statements';
  END IF;
END
$$;
