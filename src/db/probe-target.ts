import { probeTargetSettings, type ConnectionSettings } from './connection.js';
import { isConnectionUrl, parseConnectionString, type ConnInfo } from './conninfo.js';
import { ConfigError } from '../errors.js';

/**
 * A /probe target as postgres_exporter reads it (config.DsnFromString and AuthModule.ConfigureTarget):
 *   - a URL, postgresql://[user[:password]@]host[:port][/dbname][?keyword=value...];
 *   - a libpq key=value string, "host=db1 port=5432 dbname=app sslmode=require";
 *   - what Prometheus puts in __address__: host:port, host:port/dbname, [::1]:5432/dbname?sslmode=disable
 *     (read as the URL with postgresql:// in front).
 * An auth module's credentials and options are set on top of the target's own (they win, as upstream).
 * Errors are ConfigErrors naming `target` and never quoting it: a target may carry a password.
 */
export interface TargetCredentials {
  user: string;
  password: string;
  /** libpq keywords, validated at start (config/auth-modules.ts). */
  options: Record<string, string>;
}

/**
 * Keywords that name files on the exporter's host: a scraper's target may not use them (it could make the
 * exporter read, or present, files of its choosing); an auth module's options, from the operator, may.
 */
const FILE_KEYWORDS = ['sslrootcert', 'sslcert', 'sslkey', 'passfile'] as const;

export function probeTargetConnection(target: string, credentials?: TargetCredentials, where = 'target'): ConnectionSettings {
  const info = parseTarget(target, where);
  for (const keyword of FILE_KEYWORDS) {
    if (info[keyword] !== undefined && !(keyword === 'sslrootcert' && info[keyword] === 'system')) {
      throw new ConfigError(`${where}: ${keyword} names a file on the exporter's host: set it in an auth module's options, not in the target`);
    }
  }
  if (credentials) {
    info.user = credentials.user;
    info.password = credentials.password;
    Object.assign(info, credentials.options as Partial<ConnInfo>);
  }
  return probeTargetSettings(info, where);
}

/** A key=value string starts with a libpq-style keyword and "="; anything else without a scheme is host:port[/db]. */
const KEYWORD_VALUE = /^\s*[A-Za-z_]+\s*=/;

function parseTarget(target: string, where: string): ConnInfo {
  if (isConnectionUrl(target) || KEYWORD_VALUE.test(target)) return parseConnectionString(target, where);
  return parseConnectionString(`postgresql://${target.trim()}`, where);
}
