import type { QueryFn } from './collector.js';

/** SET LOCAL of several settings in one round trip (set_config(..., true): they end with the transaction). */
export async function setLocal(query: QueryFn, settings: Record<string, string>): Promise<void> {
  const entries = Object.entries(settings);
  if (entries.length === 0) return;
  const calls = entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(', ');
  await query(`SELECT ${calls}`, entries.flat());
}

/**
 * Runs `body` in a transaction opened by `begin` (e.g. `BEGIN READ ONLY`) with `settings` SET LOCAL, and
 * always ends it with ROLLBACK (the body only reads): the poller hands a collector one connection per
 * poll, so consecutive statements share the transaction, and the connection never goes back to the
 * pool inside it, also after an error.
 */
export async function inTransaction<T>(query: QueryFn, begin: string, settings: Record<string, string>, body: () => Promise<T>): Promise<T> {
  await query(begin);
  try {
    await setLocal(query, settings);
    return await body();
  } finally {
    await query('ROLLBACK').catch(() => undefined);
  }
}
