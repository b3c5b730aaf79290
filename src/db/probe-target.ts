import { probeTargetSettings, type ConnectionSettings } from './connection.js';
import { isConnectionUrl, parseConnectionString, type ConnInfo } from './conninfo.js';

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

export function probeTargetConnection(target: string, credentials?: TargetCredentials, where = 'target'): ConnectionSettings {
  const info = parseTarget(target, where);
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
