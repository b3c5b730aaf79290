/**
 * Which databases auto-discovery watches (--include-databases, --exclude-databases): the same lists for
 * the per-database pollers and for the statements collector, which reads every database's entries of
 * pg_stat_statements at once.
 */

/** A `*` pattern (any run of characters) or an exact name, postgres_exporter's list entries being exact names. */
export function databasePattern(pattern: string): (name: string) => boolean {
  if (!pattern.includes('*')) return (name) => name === pattern;
  const re = new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return (name) => re.test(name);
}

/** Whether include/exclude let a database be watched: include (if any) must match, exclude must not. */
export function databaseSelector(include: readonly string[], exclude: readonly string[]): (name: string) => boolean {
  const included = include.map(databasePattern);
  const excluded = exclude.map(databasePattern);
  return (name) => (included.length === 0 || included.some((m) => m(name))) && !excluded.some((m) => m(name));
}
