-- 010_health_check_runs.sql
-- system_health_check() as in 009, with the estimate's sample read as runs of consecutive keys instead
-- of whole heap pages probed row by row. 009 looked up each of the ~10,000 sampled documents in
-- idx_embeddings_document_id: one descent of the index per row, on a leaf page of its own (the ids are
-- random), which at 1,000,000 documents cost 60-110 ms a call in a warm session and 250 ms on a fresh
-- connection (a backend's first touch of each shared buffer is slow), against 12-22 ms for the exact
-- count at 10,000 (npm run bench:scale -- corpus). Now a TABLESAMPLE SYSTEM of the same pages picks
-- about one start document per page (random() below 1 / rows per page), and each start reads the next
-- rows-per-page ids of framework_documents_pkey and the same key range of idx_embeddings_document_id,
-- merged: the same number of sampled documents, in clusters of the same size as 009's pages (so a
-- sample no less precise, whatever the order of the ids: random uuids make the runs random documents),
-- for two index descents per run instead of one per document. The recent documents are still counted
-- exactly and left out of the sample (a hash join of the sampled ids with them). The function also gets
-- jit = off: its statements are small, and the planner's cost of the runs' lateral sub-selects can
-- exceed jit_above_cost, which would spend a second compiling them. Nothing else changes.

CREATE OR REPLACE FUNCTION system_health_check()
RETURNS TABLE(component text, status text, details text)
LANGUAGE plpgsql STABLE
AS $fn$
DECLARE
  c_rag_tables constant text[] := ARRAY['framework_documents', 'chunk_embeddings', 'framework_metadata',
                                        'key_concepts', 'document_concepts', 'source_lines'];
  c_log_tables constant text[] := ARRAY['query_performance_log', 'query_performance_archive',
                                        'maintenance_log', 'security_audit_log'];
  -- thresholds (custom settings with defaults)
  s_conn_warn      numeric  := coalesce(nullif(current_setting('rag.health_connections_warning_pct', true), ''), '80')::numeric;
  s_conn_crit      numeric  := coalesce(nullif(current_setting('rag.health_connections_critical_pct', true), ''), '95')::numeric;
  s_cache_warn     numeric  := coalesce(nullif(current_setting('rag.health_cache_hit_warning', true), ''), '0.95')::numeric;
  s_cache_crit     numeric  := coalesce(nullif(current_setting('rag.health_cache_hit_critical', true), ''), '0.90')::numeric;
  s_cache_min      bigint   := coalesce(nullif(current_setting('rag.health_cache_min_blocks', true), ''), '10000')::bigint;
  s_missing_crit   numeric  := coalesce(nullif(current_setting('rag.health_missing_embeddings_critical_ratio', true), ''), '0.10')::numeric;
  s_stats_age      interval := coalesce(nullif(current_setting('rag.health_stats_max_age', true), ''), '7 days')::interval;
  s_dead_warn      numeric  := coalesce(nullif(current_setting('rag.health_dead_tuple_warning', true), ''), '0.2')::numeric;
  s_dead_crit      numeric  := coalesce(nullif(current_setting('rag.health_dead_tuple_critical', true), ''), '0.5')::numeric;
  s_dead_min_rows  bigint   := coalesce(nullif(current_setting('rag.health_dead_tuple_min_rows', true), ''), '1000')::bigint;
  s_p95_ms         numeric  := coalesce(nullif(current_setting('rag.health_vector_p95_ms', true), ''), '500')::numeric;
  s_p95_window     interval := coalesce(nullif(current_setting('rag.health_vector_p95_window', true), ''), '15 minutes')::interval;
  s_exact_max      bigint   := coalesce(nullif(current_setting('rag.health_exact_count_max_rows', true), ''), '100000')::bigint;
  s_sample_rows    bigint   := coalesce(nullif(current_setting('rag.health_sample_rows', true), ''), '10000')::bigint;
  s_recent         interval := coalesce(nullif(current_setting('rag.health_recent_window', true), ''), '1 hour')::interval;

  v_rag_oids  oid[];
  v_all_oids  oid[];
  v_emb_oid   oid;
  v_int       bigint;
  v_int2      bigint;
  v_num       numeric;
  v_num2      numeric;
  v_text      text;
  v_bool      boolean;
  v_bool2     boolean;
  v_oid       oid;
  v_est       bigint;
  v_recent    bigint;
  v_recent_missing bigint;
  v_sampled   bigint;
  v_sample_missing bigint;
  v_pct       float8;
  v_run       integer;
BEGIN
  SELECT array_agg(r) INTO v_rag_oids
    FROM unnest(c_rag_tables) t(n), LATERAL to_regclass(t.n) r WHERE r IS NOT NULL;
  SELECT array_agg(r) INTO v_all_oids
    FROM unnest(c_rag_tables || c_log_tables) t(n), LATERAL to_regclass(t.n) r WHERE r IS NOT NULL;
  v_emb_oid := to_regclass('chunk_embeddings');

  ------------------------------------------------------------------ database_connections
  component := 'database_connections';
  BEGIN
    v_int2 := current_setting('max_connections')::bigint;
    SELECT count(*) INTO v_int FROM pg_stat_activity WHERE backend_type = 'client backend';
    v_num := round(100.0 * v_int / v_int2, 1);
    status := CASE WHEN v_num > s_conn_crit THEN 'CRITICAL'
                   WHEN v_num > s_conn_warn THEN 'WARNING'
                   ELSE 'HEALTHY' END;
    details := format('%s of %s connections in use (%s%%; warning > %s%%, critical > %s%%)',
                      v_int, v_int2, v_num, s_conn_warn, s_conn_crit);
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ cache_hit_ratio
  component := 'cache_hit_ratio';
  BEGIN
    SELECT blks_hit, blks_read INTO v_int, v_int2
      FROM pg_stat_database WHERE datname = current_database();
    IF coalesce(v_int, 0) + coalesce(v_int2, 0) < s_cache_min THEN
      status := 'HEALTHY';
      details := format('too little traffic to judge (%s block accesses < %s)',
                        coalesce(v_int, 0) + coalesce(v_int2, 0), s_cache_min);
    ELSE
      v_num := round(v_int::numeric / (v_int + v_int2), 4);
      status := CASE WHEN v_num < s_cache_crit THEN 'CRITICAL'
                     WHEN v_num < s_cache_warn THEN 'WARNING'
                     ELSE 'HEALTHY' END;
      details := format('cache hit ratio %s (%s hits, %s reads; warning < %s, critical < %s)',
                        v_num, v_int, v_int2, s_cache_warn, s_cache_crit);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ vector_index
  component := 'vector_index';
  BEGIN
    v_oid := NULL;
    SELECT c.oid, i.indisvalid, i.indisready, a.amname
      INTO v_oid, v_bool, v_bool2, v_text
      FROM pg_class c
      JOIN pg_index i ON i.indexrelid = c.oid
      JOIN pg_am a    ON a.oid = c.relam
     WHERE c.relname = 'idx_embeddings_vector'
       AND c.relkind = 'i'
       AND i.indrelid = v_emb_oid;
    IF v_oid IS NULL THEN
      status := 'CRITICAL';
      details := 'index idx_embeddings_vector on chunk_embeddings is missing: vector search falls back to sequential scans';
    ELSIF NOT v_bool OR NOT v_bool2 THEN
      status := 'CRITICAL';
      details := format('index idx_embeddings_vector is INVALID (indisvalid=%s, indisready=%s): rebuild it with REINDEX INDEX CONCURRENTLY', v_bool, v_bool2);
    ELSE
      status := 'HEALTHY';
      details := format('%s index idx_embeddings_vector is valid, size %s (%s bytes)', v_text,
                        pg_size_pretty(pg_relation_size(v_oid)), pg_relation_size(v_oid));
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ invalid_indexes
  component := 'invalid_indexes';
  BEGIN
    SELECT count(*), string_agg(format('%s (on %s)', c.relname, t.relname), ', ' ORDER BY c.relname)
      INTO v_int, v_text
      FROM pg_index i
      JOIN pg_class c ON c.oid = i.indexrelid
      JOIN pg_class t ON t.oid = i.indrelid
     WHERE i.indrelid = ANY (coalesce(v_all_oids, '{}'))
       AND (NOT i.indisvalid OR NOT i.indisready OR c.relname ~ '_cc(new|old)[0-9]*$');
    IF v_int > 0 THEN
      status := 'CRITICAL';
      details := format('%s invalid index(es): %s (drop leftovers of interrupted CREATE INDEX / REINDEX CONCURRENTLY, then rebuild)', v_int, v_text);
    ELSE
      status := 'HEALTHY';
      details := format('no invalid indexes on %s RAG/log tables', coalesce(cardinality(v_all_oids), 0));
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ embedding_completeness
  -- Exact while the table is small (up to rag.health_exact_count_max_rows by its catalog statistics).
  -- Above that an estimate whose cost does not grow with the corpus: the documents created in the
  -- last rag.health_recent_window are counted exactly (idx_documents_created_at: where embeddings go
  -- missing, and bounded by the write rate), the older ones by a sample of about
  -- rag.health_sample_rows rows (runs of consecutive ids from the documents of a TABLESAMPLE SYSTEM
  -- of that many rows' pages: it reads those pages and two index ranges per run, not the table),
  -- scaled to the catalog's row count. The details say which it is ("about", "estimated").
  component := 'embedding_completeness';
  BEGIN
    SELECT greatest(c.reltuples::bigint, coalesce(s.n_live_tup, 0), 0)
      INTO v_est
      FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
     WHERE c.oid = to_regclass('framework_documents');
    IF coalesce(v_est, 0) <= s_exact_max THEN
      SELECT count(*),
             count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id))
        INTO v_int, v_int2
        FROM framework_documents d;
      IF v_int = 0 THEN
        status := 'HEALTHY';
        details := '0 documents, nothing to embed';
      ELSIF v_int2 = 0 THEN
        status := 'HEALTHY';
        details := format('all %s documents have an embedding', v_int);
      ELSE
        v_num := v_int2::numeric / v_int;
        status := CASE WHEN v_num > s_missing_crit THEN 'CRITICAL' ELSE 'WARNING' END;
        details := format('%s of %s documents have no embedding (%s%%; critical > %s%%)',
                          v_int2, v_int, round(100 * v_num, 2), round(100 * s_missing_crit, 2));
      END IF;
    ELSE
      -- The sample: about one start document per page of a TABLESAMPLE SYSTEM of ~rag.health_sample_rows
      -- rows, each followed by the next v_run (rows per heap page) ids in key order; a run's documents
      -- without an embedding come from a merge of its id range in framework_documents_pkey and
      -- idx_embeddings_document_id (index-only, two descents per run). The recent documents (counted
      -- exactly, one idx_embeddings_document_id probe each: (SELECT ... LIMIT 1) IS NULL rather than
      -- NOT EXISTS, which let the planner hash the whole of chunk_embeddings) are taken out of the sample.
      v_pct := least(100.0, 100.0 * greatest(s_sample_rows, 1) / v_est);
      v_run := least(greatest(round(v_est / greatest(pg_relation_size(to_regclass('framework_documents'))
                                                      / current_setting('block_size')::bigint, 1)), 1), 1000)::integer;
      IF v_pct >= 100 THEN
        v_run := 1; -- a sample of the whole table: every document its own run, counted once (exact)
      END IF;
      WITH recent AS MATERIALIZED (
        SELECT d.id, (SELECT 1 FROM chunk_embeddings e WHERE e.document_id = d.id LIMIT 1) IS NULL AS missing
          FROM framework_documents d
         WHERE d.created_at >= now() - s_recent
      ), starts AS MATERIALIZED (
        SELECT d.id FROM framework_documents d TABLESAMPLE SYSTEM (v_pct) WHERE random() * v_run < 1
      ), runs AS MATERIALIZED (
        SELECT r.ids,
               (SELECT count(*)
                  FROM unnest(r.ids) u(id)
                  LEFT JOIN (SELECT DISTINCT e.document_id FROM chunk_embeddings e
                              WHERE e.document_id >= r.ids[1] AND e.document_id <= r.ids[cardinality(r.ids)]) e
                    ON e.document_id = u.id
                 WHERE e.document_id IS NULL) AS missing
          FROM starts s,
               LATERAL (SELECT array_agg(k.id) AS ids
                          FROM (SELECT d.id FROM framework_documents d WHERE d.id >= s.id ORDER BY d.id LIMIT v_run) k) r
      ), recent_sampled AS MATERIALIZED (
        SELECT r.missing FROM recent r JOIN (SELECT unnest(runs.ids) AS id FROM runs) x ON x.id = r.id
      )
      SELECT (SELECT count(*) FROM recent),
             (SELECT count(*) FROM recent WHERE missing),
             (SELECT coalesce(sum(cardinality(ids)), 0) FROM runs) - (SELECT count(*) FROM recent_sampled),
             (SELECT coalesce(sum(missing), 0) FROM runs) - (SELECT count(*) FROM recent_sampled WHERE missing)
        INTO v_recent, v_recent_missing, v_sampled, v_sample_missing;
      v_int := greatest(v_est, v_recent);
      v_int2 := v_recent_missing
                + CASE WHEN v_sampled = 0 THEN 0
                       ELSE round(v_sample_missing::numeric / v_sampled * greatest(v_int - v_recent, 0)) END;
      v_num := v_int2::numeric / v_int;
      status := CASE WHEN v_num > s_missing_crit THEN 'CRITICAL'
                     WHEN v_int2 > 0 THEN 'WARNING'
                     ELSE 'HEALTHY' END;
      details := format('about %s of about %s documents have no embedding (%s%%; critical > %s%%; estimated: the %s documents of the last %s counted, %s of %s sampled older ones missing)',
                        v_int2, v_int, round(100 * v_num, 2), round(100 * s_missing_crit, 2),
                        v_recent, s_recent, v_sample_missing, v_sampled);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ embedding_quality
  -- Scanning 3,072-dim vectors is expensive, so a property is only scanned when it is not
  -- already guaranteed: dims by a validated chk_embeddings_dimensions or the vector(3072)
  -- typmod, model by a validated chk_embeddings_model_name.
  component := 'embedding_quality';
  BEGIN
    IF v_emb_oid IS NULL THEN
      RAISE EXCEPTION 'table chunk_embeddings not found';
    END IF;
    SELECT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = v_emb_oid AND conname = 'chk_embeddings_dimensions' AND convalidated)
           OR EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = v_emb_oid AND attname = 'embedding' AND atttypmod = 3072),
           EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = v_emb_oid AND conname = 'chk_embeddings_model_name' AND convalidated)
      INTO v_bool, v_bool2;
    v_int := 0; v_int2 := 0;
    -- Above rag.health_exact_count_max_rows a scan that is needed reads a TABLESAMPLE SYSTEM of about
    -- rag.health_sample_rows rows instead of the table (the details then say "sampled").
    SELECT greatest(c.reltuples::bigint, coalesce(s.n_live_tup, 0), 0)
      INTO v_est
      FROM pg_class c LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
     WHERE c.oid = v_emb_oid;
    v_pct := CASE WHEN coalesce(v_est, 0) <= s_exact_max THEN 100.0
                  ELSE least(100.0, 100.0 * greatest(s_sample_rows, 1) / v_est) END;
    IF NOT v_bool THEN
      SELECT count(*) INTO v_int FROM chunk_embeddings TABLESAMPLE SYSTEM (v_pct) WHERE vector_dims(embedding) <> 3072;
    END IF;
    IF NOT v_bool2 THEN
      SELECT count(*) INTO v_int2 FROM chunk_embeddings TABLESAMPLE SYSTEM (v_pct)
       WHERE model_name IS NULL OR model_name NOT IN ('text-embedding-3-large', 'text-embedding-3-small');
    END IF;
    IF v_int + v_int2 > 0 THEN
      status := 'CRITICAL';
      details := format('%s embedding(s) with dimensions <> 3072, %s with a model_name not in (text-embedding-3-large, text-embedding-3-small)%s',
                        v_int, v_int2, CASE WHEN v_pct < 100 THEN format(' in a sample of %s%% of the table', round(v_pct::numeric, 3)) ELSE '' END);
    ELSE
      status := 'HEALTHY';
      details := format('dimensions: %s; model_name: %s',
                        CASE WHEN v_bool THEN 'enforced by vector(3072)/validated constraint' WHEN v_pct < 100 THEN 'sampled, all 3072' ELSE 'scanned, all 3072' END,
                        CASE WHEN v_bool2 THEN 'enforced by validated constraint' WHEN v_pct < 100 THEN 'sampled, all allowed' ELSE 'scanned, all allowed' END);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ statistics_freshness
  -- Only tables that have rows (n_live_tup > 0); empty tables never warn.
  component := 'statistics_freshness';
  BEGIN
    SELECT count(*),
           string_agg(format('%s (%s)', s.relname,
                             coalesce('last analyzed ' || greatest(s.last_analyze, s.last_autoanalyze)::text, 'never analyzed')),
                      ', ' ORDER BY s.relname)
      INTO v_int, v_text
      FROM pg_stat_user_tables s
     WHERE s.relid = ANY (coalesce(v_rag_oids, '{}'))
       AND s.n_live_tup > 0
       AND (greatest(s.last_analyze, s.last_autoanalyze) IS NULL
            OR greatest(s.last_analyze, s.last_autoanalyze) < now() - s_stats_age);
    IF v_int > 0 THEN
      status := 'WARNING';
      details := format('%s table(s) with stale statistics (older than %s): %s', v_int, s_stats_age, v_text);
    ELSE
      status := 'HEALTHY';
      details := format('statistics of all non-empty RAG tables are younger than %s', s_stats_age);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ dead_tuples
  component := 'dead_tuples';
  BEGIN
    v_text := NULL;
    SELECT s.relname, s.n_dead_tup::numeric / (s.n_live_tup + s.n_dead_tup), s.n_dead_tup, s.n_live_tup
      INTO v_text, v_num, v_int, v_int2
      FROM pg_stat_user_tables s
     WHERE s.relid = ANY (coalesce(v_rag_oids, '{}'))
       AND s.n_live_tup + s.n_dead_tup >= greatest(s_dead_min_rows, 1)
     ORDER BY 2 DESC, 1
     LIMIT 1;
    IF v_text IS NULL THEN
      status := 'HEALTHY';
      details := format('no RAG table with >= %s rows', s_dead_min_rows);
    ELSE
      status := CASE WHEN v_num > s_dead_crit THEN 'CRITICAL'
                     WHEN v_num > s_dead_warn THEN 'WARNING'
                     ELSE 'HEALTHY' END;
      details := format('highest dead tuple ratio %s on %s (%s dead, %s live; warning > %s, critical > %s)',
                        round(v_num, 4), v_text, v_int, v_int2, s_dead_warn, s_dead_crit);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;

  ------------------------------------------------------------------ query_performance
  component := 'query_performance';
  BEGIN
    SELECT count(*), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
      INTO v_int, v_num2
      FROM query_performance_log
     WHERE query_type = 'vector_search'
       AND ts >= now() - s_p95_window
       AND duration_ms >= 0;
    IF v_int = 0 THEN
      status := 'HEALTHY';
      details := format('no vector_search queries logged in the last %s', s_p95_window);
    ELSE
      v_num2 := round(v_num2, 2);
      status := CASE WHEN v_num2 > s_p95_ms THEN 'WARNING' ELSE 'HEALTHY' END;
      details := format('vector_search p95 %s ms over %s queries in the last %s (threshold %s ms)',
                        v_num2, v_int, s_p95_window, s_p95_ms);
    END IF;
  EXCEPTION WHEN OTHERS THEN
    status := 'WARNING'; details := 'check failed: ' || SQLERRM;
  END;
  RETURN NEXT;
END
$fn$;

-- Pin search_path to the schema the migration runs in (+ the vector extension's schema).
DO $$
DECLARE
  v_ext_schema text;
BEGIN
  SELECT n.nspname INTO v_ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'vector';
  EXECUTE format('ALTER FUNCTION system_health_check() SET search_path = %s',
                 CASE WHEN v_ext_schema IS NULL OR v_ext_schema = current_schema()
                      THEN quote_ident(current_schema())
                      ELSE quote_ident(current_schema()) || ', ' || quote_ident(v_ext_schema) END
                 || ', pg_temp');
END
$$;

ALTER FUNCTION system_health_check() SET jit = off;
