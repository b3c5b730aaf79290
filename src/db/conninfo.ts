import { parse as parseUrl } from 'pg-connection-string';
import { ConfigError } from '../errors.js';

/**
 * libpq's two connection-string forms, read into libpq's own keywords (host, port, dbname, user, password,
 * sslmode, ...): `postgresql://` / `postgres://` URLs and `key=value` strings
 * (https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING).
 *
 * URLs go through node-postgres' pg-connection-string (userinfo, IPv6 hosts, percent-encoded socket
 * directories, dummy hosts); this module only fixes up where it parts from libpq:
 * - an invalid percent escape (`%zz`) is an error in libpq; pg-connection-string keeps it literally;
 * - a raw space makes pg-connection-string re-encode the whole string, which turns a valid `%2F` in the
 *   password into a literal "%2F"; spaces are encoded here first so that path is never taken;
 * - libpq has no URL fragment: a raw `#` belongs to the value it is in (pg-connection-string drops the rest);
 * - query parameters are libpq keywords and are read here (pg-connection-string maps sslmode to its own
 *   meanings and reads certificate files itself; TLS follows libpq in tls.ts).
 *
 * No message of this module ever quotes the input: a malformed string may hold the password anywhere.
 */

export interface ConnInfo {
  host?: string;
  hostaddr?: string;
  port?: string;
  dbname?: string;
  user?: string;
  password?: string;
  sslmode?: string;
  sslrootcert?: string;
  sslcert?: string;
  sslkey?: string;
  sslpassword?: string;
  connect_timeout?: string;
  options?: string;
  application_name?: string;
  passfile?: string;
}

/** The libpq keywords this exporter honours. */
export const CONNINFO_KEYWORDS = [
  'host',
  'hostaddr',
  'port',
  'dbname',
  'user',
  'password',
  'sslmode',
  'sslrootcert',
  'sslcert',
  'sslkey',
  'sslpassword',
  'connect_timeout',
  'options',
  'application_name',
  'passfile',
] as const satisfies readonly (keyof ConnInfo)[];

const SCHEMES = /^postgres(?:ql)?:\/\//i;

const URL_HINT = 'characters @ : / ? # % in a user name or password must be percent-encoded (@ %40, : %3A, / %2F, ? %3F, # %23, % %25)';

/** Parses either form; every problem is a ConfigError that names `where` and never quotes the string. */
export function parseConnectionString(text: string, where: string): ConnInfo {
  const trimmed = text.trim();
  if (trimmed === '') throw new ConfigError(`${where}: empty connection string`);
  return SCHEMES.test(trimmed) ? parseConnectionUrl(trimmed, where) : parseKeywordValue(trimmed, where);
}

export function isConnectionUrl(text: string): boolean {
  return SCHEMES.test(text.trim());
}

function parseConnectionUrl(text: string, where: string): ConnInfo {
  if (/%(?![0-9a-f]{2})/i.test(text)) {
    throw new ConfigError(`${where}: malformed connection string (URL): invalid percent-encoding (a % must be followed by two hex digits; write a literal % as %25)`);
  }
  // libpq ends the query at the end of the string; it has no fragment, so `#` and spaces are literal.
  const encoded = text.replace(/ /g, '%20').replace(/#/g, '%23');
  const queryStart = encoded.indexOf('?');
  const base = queryStart === -1 ? encoded : encoded.slice(0, queryStart);
  const query = new URLSearchParams(queryStart === -1 ? '' : encoded.slice(queryStart + 1));
  let parsed: ReturnType<typeof parseUrl>;
  try {
    parsed = parseUrl(base);
  } catch {
    throw new ConfigError(`${where}: malformed connection string (URL; expected postgresql://user:password@host:port/dbname?sslmode=...; ${URL_HINT})`);
  }
  const info: ConnInfo = {};
  const set = (key: keyof ConnInfo, value: unknown) => {
    if (typeof value === 'string' && value !== '') info[key] = value;
  };
  set('host', parsed.host);
  set('port', parsed.port);
  set('dbname', parsed.database);
  set('user', parsed.user);
  set('password', parsed.password);
  if (info.port !== undefined && !/^\d+$/.test(info.port)) {
    throw new ConfigError(`${where}: malformed connection string (URL): the port is not a number (${URL_HINT})`);
  }
  for (const [key, value] of query) {
    // libpq's URL spelling "ssl=true" means sslmode=require.
    if (key === 'ssl' && value === 'true') {
      info.sslmode = 'require';
      continue;
    }
    setKeyword(info, key, value, where);
  }
  return info;
}

/**
 * libpq's conninfo_parse: `keyword = value` pairs separated by whitespace; a value is either a run of
 * non-space characters or single-quoted; a backslash escapes the next character in both.
 */
function parseKeywordValue(text: string, where: string): ConnInfo {
  const info: ConnInfo = {};
  let i = 0;
  const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
  while (i < text.length) {
    while (isSpace(text[i])) i++;
    if (i >= text.length) break;
    const keyStart = i;
    while (i < text.length && text[i] !== '=' && !isSpace(text[i])) i++;
    const key = text.slice(keyStart, i);
    while (isSpace(text[i])) i++;
    if (text[i] !== '=') {
      // The "key" may be a password someone pasted: name only what it looks like.
      throw new ConfigError(
        `${where}: malformed connection string: missing "=" after ${describeKey(key)} (expected key=value pairs such as host=... port=... dbname=..., or a postgresql:// URL)`,
      );
    }
    i++;
    while (isSpace(text[i])) i++;
    let value = '';
    if (text[i] === "'") {
      i++;
      let closed = false;
      while (i < text.length) {
        const c = text[i]!;
        if (c === '\\' && i + 1 < text.length) {
          value += text[i + 1];
          i += 2;
        } else if (c === "'") {
          closed = true;
          i++;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) throw new ConfigError(`${where}: malformed connection string: unterminated quoted value of "${safeKey(key)}"`);
    } else {
      while (i < text.length && !isSpace(text[i])) {
        if (text[i] === '\\' && i + 1 < text.length) i++;
        value += text[i];
        i++;
      }
    }
    setKeyword(info, key, value, where);
  }
  return info;
}

function setKeyword(info: ConnInfo, key: string, value: string, where: string): void {
  if (!(CONNINFO_KEYWORDS as readonly string[]).includes(key)) {
    const what = OTHER_LIBPQ_KEYWORDS.has(key) ? `connection option "${key}" is not supported` : `unknown connection option ${describeKey(key)}`;
    throw new ConfigError(`${where}: ${what} (supported: ${CONNINFO_KEYWORDS.join(', ')})`);
  }
  if (value === '') return; // libpq: an empty value is the same as not given
  info[key as keyof ConnInfo] = value;
}

/** libpq's other keywords: named in messages ("not supported"); any other word may be part of a secret. */
const OTHER_LIBPQ_KEYWORDS = new Set([
  'service', 'fallback_application_name', 'keepalives', 'keepalives_idle', 'keepalives_interval', 'keepalives_count',
  'tcp_user_timeout', 'replication', 'gssencmode', 'sslnegotiation', 'sslcompression', 'sslcertmode', 'sslcrl', 'sslcrldir',
  'sslsni', 'requirepeer', 'ssl_min_protocol_version', 'ssl_max_protocol_version', 'krbsrvname', 'gsslib', 'gssdelegation',
  'target_session_attrs', 'load_balance_hosts', 'channel_binding', 'require_auth', 'client_encoding', 'ssl',
]);

function safeKey(key: string): string {
  return (CONNINFO_KEYWORDS as readonly string[]).includes(key) || OTHER_LIBPQ_KEYWORDS.has(key) ? key : '(a word that is no libpq keyword)';
}

function describeKey(key: string): string {
  return (CONNINFO_KEYWORDS as readonly string[]).includes(key) || OTHER_LIBPQ_KEYWORDS.has(key) ? `"${key}"` : 'a word that is no libpq keyword';
}
