-- The tables as the database specification writes them (its "Physical Schema Design" and
-- "Security Architecture" DDL), without indexes or code. `migrate --adopt` builds these in a scratch
-- schema it rolls back, and accepts an existing table whose columns match either this shape or the
-- migrations' one (same names and types; extra columns, nullability and constraint names may differ).
-- Where the shapes differ: key_concepts, document_concepts and source_lines use uuid keys (the
-- migrations: identity integers), framework_metadata has its own id, and security_audit_log records
-- (user_name, action, record_id, old_values, new_values, ip_address, application_name).

CREATE TABLE framework_documents (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    chunk_id VARCHAR(255) UNIQUE NOT NULL,
    source_file VARCHAR(255) NOT NULL,
    section VARCHAR(255) NOT NULL,
    title TEXT NOT NULL,
    description TEXT,
    content TEXT NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE chunk_embeddings (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id UUID REFERENCES framework_documents(id) ON DELETE CASCADE,
    embedding vector(3072),
    model_name VARCHAR(100) DEFAULT 'text-embedding-3-large' NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE framework_metadata (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id UUID REFERENCES framework_documents(id) ON DELETE CASCADE,
    character_count INTEGER NOT NULL,
    word_count INTEGER NOT NULL,
    chunk_type VARCHAR(50) NOT NULL,
    framework_name VARCHAR(255),
    preserves_complete_concept BOOLEAN DEFAULT TRUE,
    overlap_with_previous TEXT,
    contains_formula BOOLEAN DEFAULT FALSE,
    contains_list BOOLEAN DEFAULT FALSE,
    contains_example BOOLEAN DEFAULT FALSE,
    business_logic_intact BOOLEAN DEFAULT TRUE,
    validation_passed BOOLEAN DEFAULT FALSE,
    processing_date DATE,
    guidelines_compliance VARCHAR(255)
);

CREATE TABLE key_concepts (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    concept_name VARCHAR(255) UNIQUE NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW()
);

CREATE TABLE document_concepts (
    document_id UUID REFERENCES framework_documents(id) ON DELETE CASCADE,
    concept_id UUID REFERENCES key_concepts(id) ON DELETE CASCADE,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    PRIMARY KEY (document_id, concept_id)
);

CREATE TABLE source_lines (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    document_id UUID REFERENCES framework_documents(id) ON DELETE CASCADE,
    start_line INTEGER,
    end_line INTEGER
);

CREATE TABLE security_audit_log (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    timestamp TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    table_name TEXT,
    record_id TEXT,
    old_values JSONB,
    new_values JSONB,
    ip_address INET,
    application_name TEXT
);
