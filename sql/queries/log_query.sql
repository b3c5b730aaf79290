-- log_query.sql — record one query execution in query_performance_log.
--
-- Parameters:
--   $1  query_type    (text, e.g. 'vector_search', 'hybrid_search', 'text_search', 'insert';
--                      not restricted — the exporter folds unknown types)
--   $2  duration_ms   (double precision; NULL/negative are counted as rejected by the exporter)
--   $3  rows_returned (integer, may be NULL)
--   $4  query_hash    (text, may be NULL)
--   $5  error         (text, NULL on success)
-- Returns: id, ts of the new row. ts defaults to now() (transaction start time).
INSERT INTO query_performance_log (query_type, duration_ms, rows_returned, query_hash, error)
VALUES ($1::varchar(50), $2::double precision, $3::integer, $4::text, $5::text)
RETURNING id, ts;
