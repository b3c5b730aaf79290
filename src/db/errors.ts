/**
 * What this project knows about PostgreSQL's error codes (SQLSTATEs) and socket errors, in one place:
 * one line an operator can act on for each, and the named predicates the rest of the code asks
 * (isStatementTimeout, isTransientDatabaseError, ...). No other module compares an error code.
 * Codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

interface SqlState {
  /** The one line an operator reads in a log or a maintenance_log row. */
  meaning: string;
  /** Worth retrying with backoff: the server or the connection may come back. */
  transient?: boolean;
}

/** The SQLSTATEs this project recognises, by code. */
const SQLSTATES = {
  // Class 08, connection exception: the connection is gone or never came up; a new one may work.
  '08000': { meaning: 'connection exception', transient: true },
  '08001': { meaning: 'the client could not establish a connection', transient: true },
  '08003': { meaning: 'connection does not exist', transient: true },
  '08004': { meaning: 'the server rejected the connection', transient: true },
  '08006': { meaning: 'connection failure', transient: true },
  // Class 0A, feature not supported.
  '0A000': { meaning: 'feature not supported' },
  // Class 28, invalid authorization: the role or password is wrong; retrying does not help.
  '28000': { meaning: 'connection rejected by pg_hba.conf or invalid authorization' },
  '28P01': { meaning: 'password authentication failed' },
  // Class 3D: the database named in the connection string does not exist.
  '3D000': { meaning: 'database does not exist' },
  // Class 42: the role lacks a privilege.
  '42501': { meaning: 'permission denied' },
  // Class 53: the server is out of a resource; connections free up as clients leave.
  '53300': { meaning: 'too many connections', transient: true },
  // Class 55, object not in prerequisite state.
  // 55000: e.g. pg_stat_statements created but not loaded via shared_preload_libraries.
  '55000': { meaning: 'object not in prerequisite state' },
  '55P03': { meaning: 'lock not available within lock_timeout' },
  // Class 57, operator intervention.
  // 57014: statement_timeout expired, or pg_cancel_backend() (a shutdown cancelling a job).
  '57014': { meaning: 'statement cancelled by statement_timeout' },
  '57P01': { meaning: 'server is shutting down (admin shutdown)', transient: true },
  '57P02': { meaning: 'server crashed and is restarting (crash shutdown)', transient: true },
  '57P03': { meaning: 'server is starting up or in recovery', transient: true },
  // Class 58, system error.
  '58P01': { meaning: 'file not found on the server (is the extension installed?)' },
} satisfies Record<string, SqlState>;

type KnownSqlState = keyof typeof SQLSTATES;

/** Errors of the client's socket (Node's errno codes): every one of them is worth retrying. */
const SOCKET_MEANINGS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
  ETIMEDOUT: 'connection timed out',
  ECONNRESET: 'connection reset by the server',
  EHOSTUNREACH: 'host unreachable',
  ENOENT: 'no server socket at that path',
};

/** The error's code (a SQLSTATE from the server, an errno code from the socket), or undefined. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

function sqlState(err: unknown): SqlState | undefined {
  const code = errorCode(err);
  return code !== undefined && Object.hasOwn(SQLSTATES, code) ? SQLSTATES[code as KnownSqlState] : undefined;
}

const hasCode = (err: unknown, code: KnownSqlState) => errorCode(err) === code;

/** statement_timeout cancelled the statement (57014; also what pg_cancel_backend() produces). */
export const isStatementTimeout = (err: unknown): boolean => hasCode(err, '57014');

/** lock_timeout expired while the statement waited for a lock (55P03). */
export const isLockTimeout = (err: unknown): boolean => hasCode(err, '55P03');

/** The object is not in the state the statement needs (55000), e.g. pg_stat_statements not preloaded. */
export const isObjectNotInPrerequisiteState = (err: unknown): boolean => hasCode(err, '55000');

/** pg_hba.conf rejected the connection or the authorization is invalid (28000), e.g. only hostssl lines match. */
export const isAuthorizationRejected = (err: unknown): boolean => hasCode(err, '28000');

/** The database named in the connection does not exist (3D000): e.g. dropped since it was discovered. */
export const isDatabaseMissing = (err: unknown): boolean => hasCode(err, '3D000');

/** The SQLSTATE of "permission denied", for results that report a refusal the code decided itself. */
export const PERMISSION_DENIED_CODE: KnownSqlState = '42501';

/**
 * The connection an error came from may not be reused: the error carries no code (the client or the
 * protocol broke), or a transient one (the server or the socket went away). An error with any other
 * SQLSTATE failed one statement and leaves the connection usable.
 */
export function isConnectionBroken(err: unknown): boolean {
  return errorCode(err) === undefined || isTransientDatabaseError(err);
}

/** SQLSTATEs and socket errors worth retrying with backoff: the server may come back. */
export function isTransientDatabaseError(err: unknown): boolean {
  const code = errorCode(err);
  if (code === undefined) return false;
  return code in SOCKET_MEANINGS || sqlState(err)?.transient === true;
}

export function describeDatabaseError(err: unknown, target?: string): string {
  const e = err as { code?: string; message?: string };
  const code = errorCode(err);
  const where = target ? ` (${target})` : '';
  if (code !== undefined && Object.hasOwn(SOCKET_MEANINGS, code)) {
    return `cannot reach PostgreSQL${where}: ${SOCKET_MEANINGS[code]}`;
  }
  const message = e?.message ?? String(err);
  if (/timeout expired|Connection terminated due to connection timeout/i.test(message)) {
    return `cannot reach PostgreSQL${where}: connection timed out`;
  }
  if (isStatementTimeout(err) && /user request/.test(message)) return `statement cancelled on request${where}: ${message}`;
  const known = sqlState(err);
  if (known) return `${known.meaning}${where}: ${message}`;
  return `${message}${where}`;
}
