/**
 * SQL identifiers that come from configuration (schema, table and index names) are quoted here, never
 * spliced: a name like `Chunks` or `a"b` stays one identifier and cannot end the statement.
 * Same rules as PostgreSQL's quote_ident() applied unconditionally (and pg's Client#escapeIdentifier).
 */
export function quoteIdentifier(name: string): string {
  if (name.length === 0) throw new Error('an SQL identifier cannot be empty');
  if (name.includes('\0')) throw new Error('an SQL identifier cannot contain a NUL character');
  return `"${name.replace(/"/g, '""')}"`;
}

/** schema.name, each part quoted. */
export function quoteQualified(schema: string, name: string): string {
  return `${quoteIdentifier(schema)}.${quoteIdentifier(name)}`;
}
