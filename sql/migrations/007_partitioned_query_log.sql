-- 007_partitioned_query_log.sql
-- query_performance_log and query_performance_archive become range-partitioned by day (UTC) on ts,
-- each with a DEFAULT partition, so that retention detaches a whole day from the log and attaches it
-- to the archive (no row is copied, almost no WAL) and expiry drops whole archive days.
-- Why, with the figures: sql/README.md, "The partitioned query log".
--
-- Online conversion. This migration runs in one transaction and copies no rows: it creates the
-- partitioned tables beside the old ones, and at its very end swaps the names (the old tables become
-- query_performance_log_unpartitioned / query_performance_archive_unpartitioned). The swap holds
-- ACCESS EXCLUSIVE on the old tables only for those last statements (lock_timeout 5 s: a long
-- transaction on the log makes the migration fail cleanly, to be run again, instead of queueing the
-- service's inserts behind it). Inserts that queued behind the swap resolve the name again and land
-- in the new table; the id sequence carries on, so ids stay unique and increasing.
-- The old rows are then moved into the new tables by query_log_convert_step() (run by `migrate`
-- right after this file, and by every log-retention run until done): batches of rows, newest first,
-- each batch one transaction (DELETE ... RETURNING into INSERT): interrupted at any point, every row
-- is in exactly one of the two tables, and the next call carries on. The emptied old table is dropped.

-- ---------------------------------------------------------------- the partitioned tables
CREATE TABLE query_performance_log_partitioned (
  id            bigint           NOT NULL DEFAULT nextval('query_performance_log_id_seq'),
  query_type    varchar(50)      NOT NULL,
  duration_ms   double precision,
  rows_returned integer,
  ts            timestamptz      NOT NULL DEFAULT now(),
  query_hash    text,
  error         text,
  CONSTRAINT query_performance_log_partitioned_pkey PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX idx_query_perf_log_partitioned_ts ON query_performance_log_partitioned (ts);
CREATE TABLE query_performance_log_default PARTITION OF query_performance_log_partitioned DEFAULT;

-- Same columns, same order, same indexes: a log partition attaches to the archive as it is.
CREATE TABLE query_performance_archive_partitioned (
  id            bigint           NOT NULL,
  query_type    varchar(50)      NOT NULL,
  duration_ms   double precision,
  rows_returned integer,
  ts            timestamptz      NOT NULL,
  query_hash    text,
  error         text,
  CONSTRAINT query_performance_archive_partitioned_pkey PRIMARY KEY (id, ts)
) PARTITION BY RANGE (ts);
CREATE INDEX idx_query_perf_archive_partitioned_ts ON query_performance_archive_partitioned (ts);
CREATE TABLE query_performance_archive_default PARTITION OF query_performance_archive_partitioned DEFAULT;

-- ---------------------------------------------------------------- functions
-- The partitions of a partitioned table with their bounds (lo inclusive, hi exclusive).
CREATE FUNCTION query_log_partitions(p_parent regclass)
RETURNS TABLE(partition regclass, lo timestamptz, hi timestamptz, is_default boolean)
LANGUAGE sql STABLE
AS $fn$
  SELECT c.oid::regclass,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$))[1]::timestamptz,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \('([^']+)'\) TO \('([^']+)'\)$re$))[2]::timestamptz,
         pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
   WHERE i.inhparent = p_parent
$fn$;

-- Adds the partition of one UTC day to query_performance_log or the archive (if missing) and returns it.
-- Created as a plain table with a CHECK constraint equal to its bound, filled with that day's rows from
-- the DEFAULT partition (if any), then attached: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent
-- (inserts go on) and skips the validation scan (the CHECK implies the bound). The CHECK stays: it
-- also lets the day attach to the archive later without a scan.
CREATE FUNCTION query_log_add_partition(p_parent regclass, p_day date)
RETURNS regclass
LANGUAGE plpgsql
AS $fn$
DECLARE
  v_lo      timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
  v_hi      timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
  v_schema  text;
  v_parent  text;
  v_name    text;
  v_found   regclass;
  v_default regclass;
BEGIN
  SELECT n.nspname, c.relname INTO v_schema, v_parent
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_parent;
  SELECT partition INTO v_found FROM query_log_partitions(p_parent) WHERE NOT is_default AND lo = v_lo AND hi = v_hi;
  IF v_found IS NOT NULL THEN
    RETURN v_found;
  END IF;
  SELECT partition INTO v_default FROM query_log_partitions(p_parent) WHERE is_default;
  v_name := v_parent || '_p' || to_char(p_day, 'YYYYMMDD');
  EXECUTE format('CREATE TABLE %I.%I (LIKE %s INCLUDING DEFAULTS)', v_schema, v_name, p_parent);
  EXECUTE format('ALTER TABLE %I.%I ADD CONSTRAINT %I CHECK (ts >= %L AND ts < %L)',
                 v_schema, v_name, v_name || '_day', v_lo, v_hi);
  IF v_default IS NOT NULL THEN
    EXECUTE format('WITH moved AS (DELETE FROM %s WHERE ts >= %L AND ts < %L RETURNING *) INSERT INTO %I.%I SELECT * FROM moved',
                   v_default, v_lo, v_hi, v_schema, v_name);
  END IF;
  EXECUTE format('ALTER TABLE %s ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)', p_parent, v_schema, v_name, v_lo, v_hi);
  RETURN format('%I.%I', v_schema, v_name)::regclass;
END
$fn$;

-- Moves the rows of the DEFAULT partition into daily partitions, at most p_max_days days per call
-- (rows at +/-infinity stay there). One index probe per day found (a skip scan over ts).
CREATE FUNCTION query_log_split_default(p_parent regclass, p_max_days integer)
RETURNS integer
LANGUAGE plpgsql
AS $fn$
DECLARE
  v_default regclass;
  v_ts      timestamptz;
  v_day     date;
  v_days    integer := 0;
BEGIN
  SELECT partition INTO v_default FROM query_log_partitions(p_parent) WHERE is_default;
  IF v_default IS NULL THEN
    RETURN 0;
  END IF;
  EXECUTE format($q$SELECT min(ts) FROM %s WHERE ts > '-infinity' AND ts < 'infinity'$q$, v_default) INTO v_ts;
  WHILE v_ts IS NOT NULL AND v_days < p_max_days LOOP
    v_day := (v_ts AT TIME ZONE 'UTC')::date;
    PERFORM query_log_add_partition(p_parent, v_day);
    v_days := v_days + 1;
    EXECUTE format($q$SELECT min(ts) FROM %s WHERE ts >= %L AND ts < 'infinity'$q$,
                   v_default, (v_day + 1)::timestamp AT TIME ZONE 'UTC') INTO v_ts;
  END LOOP;
  RETURN v_days;
END
$fn$;

-- The partition job: the log's partitions from yesterday to p_days_ahead days ahead (UTC), then the
-- rows of both DEFAULT partitions into daily partitions. Returns the partitions created.
CREATE FUNCTION query_log_maintain_partitions(p_days_ahead integer, p_max_split_days integer DEFAULT 400)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
  v_before integer;
  v_today  date := (now() AT TIME ZONE 'UTC')::date;
BEGIN
  SELECT (SELECT count(*) FROM query_log_partitions('query_performance_log'))
       + (SELECT count(*) FROM query_log_partitions('query_performance_archive')) INTO v_before;
  FOR i IN -1 .. greatest(p_days_ahead, 0) LOOP
    PERFORM query_log_add_partition('query_performance_log', v_today + i);
  END LOOP;
  PERFORM query_log_split_default('query_performance_log', p_max_split_days);
  PERFORM query_log_split_default('query_performance_archive', p_max_split_days);
  RETURN (SELECT count(*) FROM query_log_partitions('query_performance_log'))
       + (SELECT count(*) FROM query_log_partitions('query_performance_archive')) - v_before;
END
$fn$;

-- Retention, one day: detaches a partition of the log whose whole range is older than the horizon
-- and attaches it to the archive (renamed query_performance_archive_pYYYYMMDD). No row is copied;
-- DETACH takes ACCESS EXCLUSIVE on the log for a moment (the caller's lock_timeout bounds the wait).
-- Returns the rows moved according to the statistics (reltuples; -1 = never analyzed).
-- Only if the archive already holds that day (rows that reached the log again later) are the rows
-- copied into it and the partition dropped.
CREATE FUNCTION query_log_archive_partition(p_partition regclass, p_horizon timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
  v_lo      timestamptz;
  v_hi      timestamptz;
  v_rows    bigint;
  v_target  regclass;
  v_schema  text;
  v_name    text;
  v_day     date;
BEGIN
  SELECT lo, hi INTO v_lo, v_hi FROM query_log_partitions('query_performance_log')
   WHERE partition = p_partition AND NOT is_default;
  IF v_lo IS NULL THEN
    RAISE EXCEPTION '% is not a daily partition of query_performance_log', p_partition;
  END IF;
  IF v_hi > p_horizon THEN
    RAISE EXCEPTION 'partition % ends at %, after the retention horizon %', p_partition, v_hi, p_horizon;
  END IF;
  SELECT c.reltuples::bigint, n.nspname INTO v_rows, v_schema
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_partition;
  v_day := (v_lo AT TIME ZONE 'UTC')::date;
  EXECUTE format('ALTER TABLE query_performance_log DETACH PARTITION %s', p_partition);
  SELECT partition INTO v_target FROM query_log_partitions('query_performance_archive')
   WHERE NOT is_default AND lo = v_lo AND hi = v_hi;
  IF v_target IS NULL AND EXISTS (SELECT 1 FROM query_performance_archive_default WHERE ts >= v_lo AND ts < v_hi) THEN
    v_target := query_log_add_partition('query_performance_archive', v_day);
  END IF;
  IF v_target IS NOT NULL THEN
    EXECUTE format('INSERT INTO %s SELECT * FROM %s', v_target, p_partition);
    GET DIAGNOSTICS v_rows = ROW_COUNT;
    EXECUTE format('DROP TABLE %s', p_partition);
    RETURN v_rows;
  END IF;
  v_name := 'query_performance_archive_p' || to_char(v_day, 'YYYYMMDD');
  EXECUTE format('ALTER TABLE %s ALTER COLUMN id DROP DEFAULT', p_partition);
  EXECUTE format('ALTER TABLE %s RENAME TO %I', p_partition, v_name);
  EXECUTE format('ALTER TABLE query_performance_archive ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                 v_schema, v_name, v_lo, v_hi);
  RETURN v_rows;
END
$fn$;

-- Expiry, one day: drops an archive partition whose whole range is older than the archive horizon.
CREATE FUNCTION query_log_drop_archive_partition(p_partition regclass, p_horizon timestamptz)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
  v_hi   timestamptz;
  v_rows bigint;
BEGIN
  SELECT hi INTO v_hi FROM query_log_partitions('query_performance_archive') WHERE partition = p_partition AND NOT is_default;
  IF v_hi IS NULL OR v_hi > p_horizon THEN
    RAISE EXCEPTION '% is not a daily partition of query_performance_archive older than %', p_partition, p_horizon;
  END IF;
  SELECT reltuples::bigint INTO v_rows FROM pg_class WHERE oid = p_partition;
  EXECUTE format('DROP TABLE %s', p_partition);
  RETURN v_rows;
END
$fn$;

-- What is left in the DEFAULT partitions after splitting (rows at -infinity, or more days than one
-- split handles) is retired row by row, at most p_limit rows per call: log rows older than the
-- horizon into the archive, archived rows older than the archive horizon deleted.
CREATE FUNCTION query_log_retire_default_rows(p_horizon timestamptz, p_archive_horizon timestamptz, p_limit integer)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
  v_moved   bigint;
  v_deleted bigint;
BEGIN
  WITH moved AS (
    DELETE FROM query_performance_log_default WHERE ctid = ANY (ARRAY(
      SELECT ctid FROM query_performance_log_default WHERE ts < p_horizon LIMIT p_limit))
    RETURNING id, query_type, duration_ms, rows_returned, ts, query_hash, error)
  INSERT INTO query_performance_archive (id, query_type, duration_ms, rows_returned, ts, query_hash, error)
  SELECT id, query_type, duration_ms, rows_returned, ts, query_hash, error FROM moved;
  GET DIAGNOSTICS v_moved = ROW_COUNT;
  DELETE FROM query_performance_archive_default WHERE ctid = ANY (ARRAY(
    SELECT ctid FROM query_performance_archive_default WHERE ts < p_archive_horizon LIMIT p_limit));
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_moved + v_deleted;
END
$fn$;

-- The online conversion, one step: moves at most p_batch rows, newest first, from
-- query_performance_log_unpartitioned (then query_performance_archive_unpartitioned) into the
-- partitioned table, creating the partitions of their days first; drops an old table once it is
-- empty. Returns the rows moved: 0 = nothing left to convert. Each call is one transaction.
CREATE FUNCTION query_log_convert_step(p_batch integer)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
AS $fn$
DECLARE
  v_pair   text[];
  v_old    regclass;
  v_moved  bigint;
  v_min    timestamptz;
  v_max    timestamptz;
  v_day    date;
  v_cols   constant text := 'id, query_type, duration_ms, rows_returned, ts, query_hash, error';
BEGIN
  FOREACH v_pair SLICE 1 IN ARRAY ARRAY[['query_performance_log_unpartitioned', 'query_performance_log'],
                                        ['query_performance_archive_unpartitioned', 'query_performance_archive']] LOOP
    v_old := to_regclass(v_pair[1]);
    CONTINUE WHEN v_old IS NULL;
    -- The days of the next batch get their partitions first (rows never detour through DEFAULT).
    EXECUTE format('SELECT min(ts), max(ts) FROM (SELECT ts FROM %s ORDER BY id DESC LIMIT %s) b', v_old, p_batch) INTO v_min, v_max;
    IF v_min IS NULL THEN
      EXECUTE format('DROP TABLE %s', v_old);
      CONTINUE;
    END IF;
    IF v_min > '-infinity' AND v_max < 'infinity' AND (v_max - v_min) < interval '400 days' THEN
      v_day := (v_min AT TIME ZONE 'UTC')::date;
      WHILE v_day <= (v_max AT TIME ZONE 'UTC')::date LOOP
        PERFORM query_log_add_partition(v_pair[2]::regclass, v_day);
        v_day := v_day + 1;
      END LOOP;
    END IF;
    EXECUTE format('WITH moved AS (DELETE FROM %1$s WHERE id IN (SELECT id FROM %1$s ORDER BY id DESC LIMIT %2$s) RETURNING %3$s) '
                   'INSERT INTO %4$I (%3$s) SELECT %3$s FROM moved', v_old, p_batch, v_cols, v_pair[2]);
    GET DIAGNOSTICS v_moved = ROW_COUNT;
    RETURN v_moved;
  END LOOP;
  RETURN 0;
END
$fn$;

-- ---------------------------------------------------------------- the swap
-- Every statement above takes no lock on the old tables; from here to COMMIT they are held.
SET LOCAL lock_timeout = '5s';
LOCK TABLE query_performance_log, query_performance_archive IN ACCESS EXCLUSIVE MODE;

ALTER TABLE query_performance_log RENAME TO query_performance_log_unpartitioned;
ALTER INDEX query_performance_log_pkey RENAME TO query_performance_log_unpartitioned_pkey;
ALTER INDEX idx_query_perf_log_ts RENAME TO idx_query_perf_log_unpartitioned_ts;
ALTER TABLE query_performance_archive RENAME TO query_performance_archive_unpartitioned;
ALTER INDEX query_performance_archive_pkey RENAME TO query_performance_archive_unpartitioned_pkey;
ALTER INDEX idx_query_perf_archive_ts RENAME TO idx_query_perf_archive_unpartitioned_ts;

ALTER TABLE query_performance_log_partitioned RENAME TO query_performance_log;
ALTER INDEX query_performance_log_partitioned_pkey RENAME TO query_performance_log_pkey;
ALTER INDEX idx_query_perf_log_partitioned_ts RENAME TO idx_query_perf_log_ts;
ALTER TABLE query_performance_archive_partitioned RENAME TO query_performance_archive;
ALTER INDEX query_performance_archive_partitioned_pkey RENAME TO query_performance_archive_pkey;
ALTER INDEX idx_query_perf_archive_partitioned_ts RENAME TO idx_query_perf_archive_ts;
ALTER SEQUENCE query_performance_log_id_seq OWNED BY query_performance_log.id;

-- Today's partitions (and a week ahead) exist before the first insert reaches the new table.
SELECT query_log_maintain_partitions(7, 0);

-- Views bind to a table, not a name: performance_dashboard is re-created on the new log (same text as 005).
CREATE OR REPLACE VIEW performance_dashboard AS
SELECT
  l.query_type,
  count(*)                                                                        AS query_count,
  count(*) FILTER (WHERE l.duration_ms IS NULL OR l.duration_ms < 0)              AS rejected_count,
  count(*) FILTER (WHERE l.error IS NOT NULL)                                     AS error_count,
  avg(l.duration_ms) FILTER (WHERE l.duration_ms >= 0)                            AS avg_duration_ms,
  percentile_cont(0.50) WITHIN GROUP (ORDER BY l.duration_ms) FILTER (WHERE l.duration_ms >= 0) AS p50_duration_ms,
  percentile_cont(0.95) WITHIN GROUP (ORDER BY l.duration_ms) FILTER (WHERE l.duration_ms >= 0) AS p95_duration_ms,
  percentile_cont(0.99) WITHIN GROUP (ORDER BY l.duration_ms) FILTER (WHERE l.duration_ms >= 0) AS p99_duration_ms,
  max(l.duration_ms) FILTER (WHERE l.duration_ms >= 0)                            AS max_duration_ms,
  sum(l.rows_returned)                                                            AS total_rows_returned,
  avg(l.rows_returned)                                                            AS avg_rows_returned,
  t.threshold_ms                                                                  AS slow_threshold_ms,
  count(*) FILTER (WHERE l.duration_ms > t.threshold_ms)                          AS slow_query_count
FROM query_performance_log l
LEFT JOIN (VALUES ('vector_search', 500::double precision),
                  ('hybrid_search', 1000::double precision),
                  ('insert',        300::double precision)) AS t(query_type, threshold_ms)
       ON t.query_type = l.query_type
WHERE l.ts >= now() - interval '1 hour'
GROUP BY l.query_type, t.threshold_ms;

-- Empty old tables (a fresh install) go now; the rest is moved by query_log_convert_step().
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM query_performance_log_unpartitioned) THEN
    DROP TABLE query_performance_log_unpartitioned;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM query_performance_archive_unpartitioned) THEN
    DROP TABLE query_performance_archive_unpartitioned;
  END IF;
END
$$;

-- ---------------------------------------------------------------- privileges (as 006 gave the old tables)
GRANT INSERT ON query_performance_log TO rag_read_write;
GRANT ALL ON query_performance_log, query_performance_archive TO rag_admin;
GRANT SELECT, INSERT, DELETE ON query_performance_log, query_performance_archive TO pgvector_exporter;
REVOKE ALL ON FUNCTION query_log_maintain_partitions(integer, integer), query_log_archive_partition(regclass, timestamptz),
                       query_log_drop_archive_partition(regclass, timestamptz),
                       query_log_retire_default_rows(timestamptz, timestamptz, integer),
                       query_log_convert_step(integer),
                       query_log_add_partition(regclass, date), query_log_split_default(regclass, integer)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION query_log_maintain_partitions(integer, integer), query_log_archive_partition(regclass, timestamptz),
                          query_log_drop_archive_partition(regclass, timestamptz),
                          query_log_retire_default_rows(timestamptz, timestamptz, integer),
                          query_log_convert_step(integer)
  TO pgvector_exporter, rag_admin;

-- SECURITY DEFINER functions run with a pinned search_path: the migration's schema, then pg_temp.
DO $$
DECLARE
  v_fn text;
BEGIN
  FOREACH v_fn IN ARRAY ARRAY['query_log_partitions(regclass)', 'query_log_add_partition(regclass, date)',
                              'query_log_split_default(regclass, integer)', 'query_log_maintain_partitions(integer, integer)',
                              'query_log_archive_partition(regclass, timestamptz)', 'query_log_drop_archive_partition(regclass, timestamptz)',
                              'query_log_retire_default_rows(timestamptz, timestamptz, integer)', 'query_log_convert_step(integer)'] LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = %I, pg_temp', v_fn, current_schema());
  END LOOP;
END
$$;
