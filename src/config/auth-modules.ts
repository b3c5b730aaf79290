import { CONNINFO_KEYWORDS } from '../db/conninfo.js';
import { SSL_MODES } from '../db/tls.js';
import { NestedValueError } from './values.js';

/**
 * postgres_exporter's auth modules, in its shape (its README, "Multi-Target Support"): credentials and
 * connection options by name, chosen per probe with `/probe?target=...&auth_module=NAME`, so the
 * passwords stay in the config file and never travel in a scrape URL.
 *
 *   auth_modules:
 *     replicas:
 *       type: userpass
 *       userpass: { username: monitor, password: s3cret }
 *       options: { sslmode: verify-full, sslrootcert: /etc/ssl/ca.pem }
 *
 * The option keys are libpq's connection keywords (the same list the connection-string parser honours,
 * as the collector names come from their factory map): an unknown key fails at start, not at the first probe.
 */
export interface AuthModuleConfig {
  type: 'userpass';
  username: string;
  password: string;
  /** libpq keywords set on every target of this module (they win over the target's own). */
  options: Record<string, string>;
}

export const AUTH_MODULE_TYPES = ['userpass'] as const;

/** Keywords an auth module may set in `options`: libpq's, but the credentials, which belong in `userpass`. */
export const AUTH_MODULE_OPTION_KEYS: readonly string[] = CONNINFO_KEYWORDS.filter((k) => k !== 'user' && k !== 'password' && k !== 'passfile');

export function parseAuthModules(value: unknown): Record<string, AuthModuleConfig> {
  const modules = mapping(value, []);
  const out: Record<string, AuthModuleConfig> = {};
  for (const [name, raw] of Object.entries(modules)) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new NestedValueError(`module name "${name.slice(0, 64)}" may hold only letters, digits, "_", "." and "-"`, [name]);
    out[name] = parseModule(raw, name);
  }
  return out;
}

function parseModule(value: unknown, name: string): AuthModuleConfig {
  const module = mapping(value, [name]);
  for (const key of Object.keys(module)) {
    if (!['type', 'userpass', 'options'].includes(key)) throw new NestedValueError(`unknown key "${key}" (known here: type, userpass, options)`, [name, key]);
  }
  if (module.type === undefined || module.type === null) throw new NestedValueError(`type is required (${AUTH_MODULE_TYPES.join(', ')})`, [name]);
  if (!AUTH_MODULE_TYPES.includes(module.type as 'userpass')) {
    throw new NestedValueError(`"${String(module.type)}" is not an auth module type (known: ${AUTH_MODULE_TYPES.join(', ')})`, [name, 'type']);
  }
  const userpass = mapping(module.userpass, [name, 'userpass'], 'userpass: { username, password } is required for type userpass');
  for (const key of Object.keys(userpass)) {
    if (key !== 'username' && key !== 'password') throw new NestedValueError(`unknown key "${key}" (known here: username, password)`, [name, 'userpass', key]);
  }
  // postgres_exporter refuses a module without both at probe time; here it is refused at start.
  const username = text(userpass.username, [name, 'userpass', 'username'], 'username is required');
  const password = text(userpass.password, [name, 'userpass', 'password'], 'password is required');
  const options: Record<string, string> = {};
  if (module.options !== undefined && module.options !== null) {
    for (const [key, raw] of Object.entries(mapping(module.options, [name, 'options']))) {
      if (!AUTH_MODULE_OPTION_KEYS.includes(key)) {
        throw new NestedValueError(`unknown connection option "${key}" (libpq keywords: ${AUTH_MODULE_OPTION_KEYS.join(', ')}; credentials go in userpass)`, [name, 'options', key]);
      }
      const value = text(raw, [name, 'options', key], `${key}: a value is required`);
      if (key === 'sslmode' && !(SSL_MODES as readonly string[]).includes(value)) {
        throw new NestedValueError(`"${value}" is not an sslmode (${SSL_MODES.join(', ')})`, [name, 'options', key]);
      }
      if ((key === 'port' || key === 'connect_timeout') && !/^\d+$/.test(value)) throw new NestedValueError(`"${value}" is not a number`, [name, 'options', key]);
      options[key] = value;
    }
  }
  return { type: 'userpass', username, password, options };
}

function mapping(value: unknown, path: string[], missing = 'expected a mapping of keys'): Record<string, unknown> {
  if (value === null || value === undefined) throw new NestedValueError(missing, path);
  if (typeof value !== 'object' || Array.isArray(value)) throw new NestedValueError('expected a mapping of keys', path);
  return value as Record<string, unknown>;
}

/** A scalar as text; never quoted back in the message (it may be a password). */
function text(value: unknown, path: string[], missing: string): string {
  // A missing key is named at its parent's line: "auth_modules.x.userpass: password is required".
  if (value === null || value === undefined || value === '') throw new NestedValueError(missing, path.slice(0, -1));
  if (typeof value === 'object') throw new NestedValueError('expected a single value', path);
  return String(value);
}
