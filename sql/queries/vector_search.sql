-- vector_search.sql — nearest chunks by cosine distance (HNSW index idx_embeddings_vector).
--
-- Parameters:
--   $1  query embedding, text form '[0.01,-0.02,...]' with exactly 3072 values
--   $2  limit (integer, number of rows to return)
-- Returns: document_id, chunk_id, title, section, source_file,
--          distance (cosine distance, 0 = identical, lower is better),
--          similarity (1 - distance), ordered by distance ascending.
--
-- The ORDER BY must use exactly `embedding::halfvec(3072) <=> $1::halfvec(3072)` (the
-- expression of idx_embeddings_vector) or the planner cannot use the index.
-- An HNSW scan returns at most hnsw.ef_search rows (default 40): for $2 > 40 run
-- `SET hnsw.ef_search = <>= $2>` (or hnsw.iterative_scan = relaxed_order, pgvector >= 0.8).
SELECT d.id          AS document_id,
       d.chunk_id,
       d.title,
       d.section,
       d.source_file,
       v.distance,
       1 - v.distance AS similarity
FROM (
  SELECT e.document_id,
         e.embedding::halfvec(3072) <=> $1::halfvec(3072) AS distance
  FROM chunk_embeddings e
  ORDER BY e.embedding::halfvec(3072) <=> $1::halfvec(3072)
  LIMIT $2::integer
) v
JOIN framework_documents d ON d.id = v.document_id
-- Not `ORDER BY v.distance`: the planner takes that order from the index scan and skips the sort,
-- but HNSW ranks by its own normalised half-precision arithmetic, so near-ties (~1e-5) came back
-- out of order relative to the distance column. A different expression forces a real sort of
-- the <= $2 rows.
ORDER BY similarity DESC, d.chunk_id;
