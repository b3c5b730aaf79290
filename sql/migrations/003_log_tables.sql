-- 003_log_tables.sql
-- Query performance log (+ archive for retention) and the sidecar's maintenance job log.

-- query_type is deliberately NOT restricted by a CHECK: the exporter must see unknown
-- types and fold them into an "other" label. duration_ms is nullable: the exporter counts
-- NULL / negative durations as rejected samples.
-- The exporter reads incrementally ("WHERE id > $watermark ORDER BY id"): the primary key
-- index serves that as one index range scan. idx_query_perf_log_ts serves retention and the
-- time-window aggregates (performance_dashboard, system_health_check).
CREATE TABLE query_performance_log (
  id            bigserial        NOT NULL,
  query_type    varchar(50)      NOT NULL,
  duration_ms   double precision,
  rows_returned integer,
  ts            timestamptz      NOT NULL DEFAULT now(),
  query_hash    text,
  error         text,
  CONSTRAINT query_performance_log_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_query_perf_log_ts ON query_performance_log (ts);

-- Same columns, same order (INSERT INTO query_performance_archive SELECT * FROM ... works);
-- id keeps the original value, so it is a plain bigint.
CREATE TABLE query_performance_archive (
  id            bigint           NOT NULL,
  query_type    varchar(50)      NOT NULL,
  duration_ms   double precision,
  rows_returned integer,
  ts            timestamptz      NOT NULL,
  query_hash    text,
  error         text,
  CONSTRAINT query_performance_archive_pkey PRIMARY KEY (id)
);
CREATE INDEX idx_query_perf_archive_ts ON query_performance_archive (ts);


CREATE TABLE maintenance_log (
  id          bigserial   NOT NULL,
  job         text        NOT NULL,
  started_at  timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz,
  status      text        NOT NULL,
  message     text,
  details     jsonb,
  run_by      text        NOT NULL DEFAULT current_user,
  host        text,                       -- which sidecar instance ran the job
  CONSTRAINT maintenance_log_pkey PRIMARY KEY (id),
  CONSTRAINT chk_maintenance_status CHECK (status IN ('running', 'success', 'failed', 'skipped'))
);
CREATE INDEX idx_maintenance_log_job_started ON maintenance_log (job, started_at DESC);
