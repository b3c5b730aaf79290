import type pg from 'pg';

/**
 * One PostgreSQL advisory lock per job, so that when several sidecar replicas share a database each run
 * happens once. Session-level and taken with pg_try_advisory_lock (never waiting): a replica that does
 * not get it records `skipped`. The lock lives on the job's own session, so if the process dies or the
 * connection drops, PostgreSQL releases it at once; there is no lease to expire.
 */
export const JOB_LOCK_PREFIX = 'pgvector-exporter:job:';

export function jobLockKey(job: string): string {
  return `${JOB_LOCK_PREFIX}${job}`;
}

export async function tryAdvisoryLock(client: pg.Client, key: string): Promise<boolean> {
  const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock(hashtext($1)) AS locked', [key]);
  return rows[0]!.locked;
}

export async function releaseAdvisoryLock(client: pg.Client, key: string): Promise<void> {
  await client.query('SELECT pg_advisory_unlock(hashtext($1))', [key]);
}

export interface LockHolder {
  pid: number;
  applicationName: string;
  clientAddr: string | null;
}

/**
 * Who holds the lock, for the skip reason. A bigint advisory key shows in pg_locks as classid = high
 * 32 bits, objid = low 32 bits, objsubid = 1; hashtext() is an int4, sign-extended to bigint.
 */
export async function advisoryLockHolder(client: pg.Pool | pg.Client, key: string): Promise<LockHolder | undefined> {
  const { rows } = await client.query<{ pid: number; application_name: string; client_addr: string | null}>(
    `WITH k AS (SELECT hashtext($1)::int8 AS key)
     SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid, k
      WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid::int8 = (k.key >> 32) & 4294967295 AND l.objid::int8 = k.key & 4294967295
      LIMIT 1`,
    [key],
  );
  const row = rows[0];
  return row ? { pid: row.pid, applicationName: row.application_name, clientAddr: row.client_addr } : undefined;
}
