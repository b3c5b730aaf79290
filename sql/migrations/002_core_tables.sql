-- 002_core_tables.sql
-- RAG content tables: documents (chunks), embeddings, metadata, concepts, source line ranges.
-- Every CHECK / FK / UNIQUE constraint is named explicitly: tests and alerts refer to the names.

CREATE TABLE framework_documents (
  id          uuid         NOT NULL DEFAULT gen_random_uuid(),
  chunk_id    varchar(255) NOT NULL,
  source_file varchar(255) NOT NULL,
  section     varchar(255) NOT NULL,
  title       text         NOT NULL,
  description text,
  content     text         NOT NULL,
  created_at  timestamptz  NOT NULL DEFAULT now(),
  updated_at  timestamptz  NOT NULL DEFAULT now(),
  CONSTRAINT framework_documents_pkey PRIMARY KEY (id),
  CONSTRAINT uq_documents_chunk_id UNIQUE (chunk_id),
  CONSTRAINT chk_documents_source_file_format CHECK (source_file ~ '^[A-Za-z0-9_.-]+$'),
  -- trim() strips only spaces: '\n\t' would pass length(trim(content)) > 0. Require a character
  -- that is not whitespace of any kind (space, tab, newline, CR, VT, FF).
  CONSTRAINT chk_documents_content_not_empty CHECK (content ~ '[^[:space:]]')
);
-- chunk_id is indexed by uq_documents_chunk_id.
CREATE INDEX idx_documents_section     ON framework_documents (section);
CREATE INDEX idx_documents_source_file ON framework_documents (source_file);
CREATE INDEX idx_documents_created_at  ON framework_documents (created_at);
-- Full-text indexes; queries must use exactly to_tsvector('english', <column>) to use them.
CREATE INDEX idx_documents_content_fts ON framework_documents USING gin (to_tsvector('english', content));
CREATE INDEX idx_documents_title_fts   ON framework_documents USING gin (to_tsvector('english', title));

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.updated_at := now();
  RETURN NEW;
END
$$;

CREATE TRIGGER trg_documents_updated_at
  BEFORE UPDATE ON framework_documents
  FOR EACH ROW EXECUTE FUNCTION set_updated_at();


CREATE TABLE chunk_embeddings (
  id          uuid         NOT NULL DEFAULT gen_random_uuid(),
  document_id uuid         NOT NULL,
  embedding   vector(3072) NOT NULL,
  model_name  varchar(100) NOT NULL DEFAULT 'text-embedding-3-large',
  created_at  timestamptz  NOT NULL DEFAULT now(),
  CONSTRAINT chunk_embeddings_pkey PRIMARY KEY (id),
  CONSTRAINT fk_embeddings_document FOREIGN KEY (document_id)
    REFERENCES framework_documents (id) ON DELETE CASCADE,
  CONSTRAINT chk_embeddings_dimensions CHECK (vector_dims(embedding) = 3072),
  CONSTRAINT chk_embeddings_model_name CHECK (model_name IN ('text-embedding-3-large', 'text-embedding-3-small'))
);
CREATE INDEX idx_embeddings_document_id ON chunk_embeddings (document_id);
CREATE INDEX idx_embeddings_model_name  ON chunk_embeddings (model_name);
CREATE INDEX idx_embeddings_created_at  ON chunk_embeddings (created_at);
-- THE vector index. pgvector cannot build HNSW/IVFFlat on vector columns with > 2000 dims;
-- halfvec supports up to 4000, so the index is on the expression embedding::halfvec(3072).
-- Queries must use exactly: embedding::halfvec(3072) <=> $1::halfvec(3072)
-- The name idx_embeddings_vector is fixed (alerts, maintenance jobs and system_health_check use it).
CREATE INDEX idx_embeddings_vector ON chunk_embeddings
  USING hnsw ((embedding::halfvec(3072)) halfvec_cosine_ops) WITH (m = 16, ef_construction = 64);
-- IVFFlat alternative (build AFTER loading data; lists = rows/1000 up to 1M rows, sqrt(rows) above):
-- CREATE INDEX idx_embeddings_vector ON chunk_embeddings
--   USING ivfflat ((embedding::halfvec(3072)) halfvec_cosine_ops) WITH (lists = 100);


CREATE TABLE framework_metadata (
  document_id                uuid         NOT NULL,
  character_count            integer      NOT NULL,
  word_count                 integer      NOT NULL,
  chunk_type                 varchar(50)  NOT NULL,
  framework_name             varchar(255),
  preserves_complete_concept boolean      NOT NULL DEFAULT true,
  contains_formula           boolean      NOT NULL DEFAULT false,
  contains_list              boolean      NOT NULL DEFAULT false,
  contains_example           boolean      NOT NULL DEFAULT false,
  business_logic_intact      boolean      NOT NULL DEFAULT true,
  validation_passed          boolean      NOT NULL DEFAULT false,
  overlap_with_previous      text,
  processing_date            date,
  guidelines_compliance      varchar(255),
  CONSTRAINT framework_metadata_pkey PRIMARY KEY (document_id),
  CONSTRAINT fk_metadata_document FOREIGN KEY (document_id)
    REFERENCES framework_documents (id) ON DELETE CASCADE,
  CONSTRAINT chk_metadata_character_count CHECK (character_count BETWEEN 1 AND 50000),
  CONSTRAINT chk_metadata_word_count      CHECK (word_count BETWEEN 1 AND 15000),
  CONSTRAINT chk_metadata_chars_per_word CHECK (character_count >= word_count * 3),
  CONSTRAINT chk_metadata_chunk_type      CHECK (chunk_type IN ('atomic_framework', 'framework_section', 'supporting'))
);
CREATE INDEX idx_metadata_framework_name    ON framework_metadata (framework_name);
CREATE INDEX idx_metadata_chunk_type        ON framework_metadata (chunk_type);
CREATE INDEX idx_metadata_processing_date   ON framework_metadata (processing_date);
CREATE INDEX idx_metadata_validation_passed ON framework_metadata (validation_passed);


CREATE TABLE key_concepts (
  id           integer      GENERATED BY DEFAULT AS IDENTITY,
  concept_name varchar(255) NOT NULL,
  CONSTRAINT key_concepts_pkey PRIMARY KEY (id),
  CONSTRAINT uq_concepts_name UNIQUE (concept_name),
  CONSTRAINT chk_concepts_name_not_empty CHECK (length(trim(concept_name)) > 0),
  CONSTRAINT chk_concepts_name_pattern   CHECK (concept_name ~ '^[A-Za-z0-9 &-]+$')
);

CREATE TABLE document_concepts (
  document_id uuid    NOT NULL,
  concept_id  integer NOT NULL,
  CONSTRAINT document_concepts_pkey PRIMARY KEY (document_id, concept_id),
  CONSTRAINT fk_document_concepts_document FOREIGN KEY (document_id)
    REFERENCES framework_documents (id) ON DELETE CASCADE,
  CONSTRAINT fk_document_concepts_concept FOREIGN KEY (concept_id)
    REFERENCES key_concepts (id) ON DELETE CASCADE
);
CREATE INDEX idx_document_concepts_concept_id ON document_concepts (concept_id);


CREATE TABLE source_lines (
  id          bigint  GENERATED BY DEFAULT AS IDENTITY,
  document_id uuid    NOT NULL,
  start_line  integer NOT NULL,
  end_line    integer NOT NULL,
  CONSTRAINT source_lines_pkey PRIMARY KEY (id),
  CONSTRAINT fk_source_lines_document FOREIGN KEY (document_id)
    REFERENCES framework_documents (id) ON DELETE CASCADE,
  CONSTRAINT chk_source_lines_start_positive   CHECK (start_line > 0),
  CONSTRAINT chk_source_lines_end_after_start  CHECK (end_line >= start_line),
  CONSTRAINT chk_source_lines_max_span         CHECK (end_line - start_line <= 10000)
);
CREATE INDEX idx_source_lines_document_id ON source_lines (document_id);
CREATE INDEX idx_source_lines_range       ON source_lines (start_line, end_line);
