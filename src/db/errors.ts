/**
 * Turns a node-postgres or socket error into one line an operator can act on.
 * Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */
const SQLSTATE_MEANINGS: Record<string, string> = {
  '28P01': 'password authentication failed',
  '28000': 'connection rejected by pg_hba.conf or invalid authorization',
  '3D000': 'database does not exist',
  '42501': 'permission denied',
  '57014': 'statement cancelled by statement_timeout',
  '55P03': 'lock not available within lock_timeout',
  '57P01': 'server is shutting down (admin shutdown)',
  '57P03': 'server is starting up or in recovery',
  '53300': 'too many connections',
  '0A000': 'feature not supported',
  '58P01': 'file not found on the server (is the extension installed?)',
};

const SOCKET_MEANINGS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable',
  ENOENT: 'no server socket at that path',
};

export function describeDatabaseError(err: unknown, target?: string): string {
  const e = err as { code?: string; message?: string };
  const where = target ? ` (${target})` : '';
  if (e && typeof e.code === 'string' && SOCKET_MEANINGS[e.code]) {
    return `cannot reach PostgreSQL${where}: ${SOCKET_MEANINGS[e.code]}`;
  }
  const message = e?.message ?? String(err);
  if (/timeout expired|Connection terminated due to connection timeout/i.test(message)) {
    return `cannot reach PostgreSQL${where}: connection timed out`;
  }
  // 57014 is also what pg_cancel_backend() (a shutdown cancelling a job) produces.
  if (e?.code === '57014' && /user request/.test(message)) return `statement cancelled on request${where}: ${message}`;
  if (e && typeof e.code === 'string' && SQLSTATE_MEANINGS[e.code]) {
    return `${SQLSTATE_MEANINGS[e.code]}${where}: ${message}`;
  }
  return `${message}${where}`;
}

/** SQLSTATEs and socket errors worth retrying with backoff: the server may come back. */
export function isTransientDatabaseError(err: unknown): boolean {
  const code = (err as { code?: string })?.code ?? '';
  return code in SOCKET_MEANINGS || ['57P01', '57P02', '57P03', '53300', '08000', '08003', '08006', '08001', '08004'].includes(code);
}
