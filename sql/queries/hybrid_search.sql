-- hybrid_search.sql — weighted vector + full-text search (default 70 % vector / 30 % text).
--
-- Parameters:
--   $1  query embedding, text form '[0.01,-0.02,...]' with exactly 3072 values
--   $2  query text (websearch syntax: words, "phrases", OR, -exclusion)
--   $3  limit (integer, number of rows to return)
--   $4  vector weight (double precision, normally 0.7)
--   $5  text weight   (double precision, normally 0.3)
-- Returns: document_id, chunk_id, title, section, source_file,
--          distance (cosine distance, NULL if the chunk only matched the text),
--          similarity (1 - distance, NULL if no vector candidate),
--          text_rank (ts_rank_cd normalised to 0..1, 0 if no text match),
--          score ($4 * similarity + $5 * text_rank), ordered by score descending.
--
-- Vector candidates: index-ordered top ($3 * 4) by
--   embedding::halfvec(3072) <=> $1::halfvec(3072)        (uses idx_embeddings_vector)
-- Text candidates: top ($3 * 4) by rank among
--   to_tsvector('english', content) @@ websearch_to_tsquery('english', $2)  (uses idx_documents_content_fts)
-- Both expressions must stay exactly as written to match the indexes.
-- HNSW returns at most hnsw.ef_search (default 40) candidates: raise it when $3 * 4 > 40.
WITH vector_candidates AS (
  SELECT e.document_id,
         e.embedding::halfvec(3072) <=> $1::halfvec(3072) AS distance
  FROM chunk_embeddings e
  ORDER BY e.embedding::halfvec(3072) <=> $1::halfvec(3072)
  LIMIT $3::integer * 4
),
vector_scores AS (
  SELECT document_id, min(distance) AS distance
  FROM vector_candidates
  GROUP BY document_id
),
text_candidates AS (
  SELECT d.id AS document_id,
         ts_rank_cd(to_tsvector('english', d.content), websearch_to_tsquery('english', $2::text), 32) AS text_rank
  FROM framework_documents d
  WHERE to_tsvector('english', d.content) @@ websearch_to_tsquery('english', $2::text)
  ORDER BY text_rank DESC
  LIMIT $3::integer * 4
),
combined AS (
  SELECT coalesce(v.document_id, t.document_id) AS document_id,
         v.distance,
         1 - v.distance AS similarity,
         coalesce(t.text_rank, 0) AS text_rank
  FROM vector_scores v
  FULL JOIN text_candidates t ON t.document_id = v.document_id
)
SELECT d.id AS document_id,
       d.chunk_id,
       d.title,
       d.section,
       d.source_file,
       c.distance,
       c.similarity,
       c.text_rank,
       $4::double precision * coalesce(c.similarity, 0)
         + $5::double precision * c.text_rank AS score
FROM combined c
JOIN framework_documents d ON d.id = c.document_id
ORDER BY score DESC, c.distance ASC NULLS LAST
LIMIT $3::integer;
