-- 004_audit.sql
-- Row-level audit trail for framework_documents and chunk_embeddings.

CREATE TABLE security_audit_log (
  id         bigserial   NOT NULL,
  table_name text        NOT NULL,
  operation  text        NOT NULL,
  row_id     uuid,
  changed_by text        NOT NULL DEFAULT current_user,
  changed_at timestamptz NOT NULL DEFAULT now(),
  old_data   jsonb,
  new_data   jsonb,
  CONSTRAINT security_audit_log_pkey PRIMARY KEY (id),
  CONSTRAINT chk_audit_operation CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE'))
);
CREATE INDEX idx_audit_changed_at   ON security_audit_log (changed_at);
CREATE INDEX idx_audit_table_row_id ON security_audit_log (table_name, row_id);

-- SECURITY DEFINER so writers without INSERT on security_audit_log are still audited.
-- search_path is pinned below (ALTER FUNCTION ... SET search_path) to the schema this
-- migration runs in, so the function cannot be hijacked via the caller's search_path.
-- changed_by: inside a SECURITY DEFINER function current_user is the owner, so the
-- effective role of the caller is reconstructed from SET ROLE / session_user.
-- For chunk_embeddings the 3,072 floats are NOT copied: the row is stored minus the
-- 'embedding' key plus 'embedding_dims'.
CREATE FUNCTION audit_row_change() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
  v_old jsonb;
  v_new jsonb;
  v_who text;
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    v_old := to_jsonb(OLD);
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    v_new := to_jsonb(NEW);
  END IF;

  IF TG_TABLE_NAME = 'chunk_embeddings' THEN
    IF v_old IS NOT NULL THEN
      v_old := (v_old - 'embedding') || jsonb_build_object('embedding_dims', vector_dims(OLD.embedding));
    END IF;
    IF v_new IS NOT NULL THEN
      v_new := (v_new - 'embedding') || jsonb_build_object('embedding_dims', vector_dims(NEW.embedding));
    END IF;
  END IF;

  v_who := coalesce(nullif(current_setting('role', true), 'none'), session_user::text);

  INSERT INTO security_audit_log (table_name, operation, row_id, changed_by, old_data, new_data)
  VALUES (TG_TABLE_NAME, TG_OP, (coalesce(v_new, v_old) ->> 'id')::uuid, v_who, v_old, v_new);

  RETURN NULL;  -- AFTER trigger: return value ignored
END
$$;

DO $$
DECLARE
  v_ext_schema text;
BEGIN
  SELECT n.nspname INTO v_ext_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
   WHERE e.extname = 'vector';
  EXECUTE format('ALTER FUNCTION audit_row_change() SET search_path = %s',
                 CASE WHEN v_ext_schema IS NULL OR v_ext_schema = current_schema()
                      THEN quote_ident(current_schema())
                      ELSE quote_ident(current_schema()) || ', ' || quote_ident(v_ext_schema) END
                 || ', pg_temp');
END
$$;

REVOKE ALL ON FUNCTION audit_row_change() FROM PUBLIC;

CREATE TRIGGER trg_audit_framework_documents
  AFTER INSERT OR UPDATE OR DELETE ON framework_documents
  FOR EACH ROW EXECUTE FUNCTION audit_row_change();

CREATE TRIGGER trg_audit_chunk_embeddings
  AFTER INSERT OR UPDATE OR DELETE ON chunk_embeddings
  FOR EACH ROW EXECUTE FUNCTION audit_row_change();
