import { readFileSync } from 'node:fs';
import { isMap, LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { ConfigError } from '../errors.js';

/**
 * The Prometheus exporter-toolkit web configuration (--web.config.file), the format every official
 * exporter accepts: TLS certificate and key, optional client CA, and basic-auth users with bcrypt hashes.
 * https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
 */
export interface WebConfig {
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer; clientAuth: ClientAuthType; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
  basicAuthUsers: Map<string, string>;
  headers: Record<string, string>;
}

const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_KEYS = ['cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'min_version', 'max_version', 'cipher_suites', 'curve_preferences', 'prefer_server_cipher_suites', 'client_allowed_sans'];
const TOP_KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users'];
const HTTP_KEYS = ['http2', 'headers'];

export function loadWebConfig(path: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read web config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter });
  if (doc.errors.length) {
    const line = lineCounter.linePos(doc.errors[0]!.pos[0]).line;
    throw new ConfigError(`${path}:${line}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  }
  const config: WebConfig = { basicAuthUsers: new Map(), headers: {} };
  if (doc.contents === null) return config;
  if (!isMap(doc.contents)) throw new ConfigError(`${path}:1: the web config must be a mapping`);
  const at = (map: YAMLMap, key: string) => {
    const pair = map.items.find((p) => String((p.key as { value?: unknown })?.value) === key);
    const range = (pair?.key as { range?: [number, number, number] } | undefined)?.range;
    return range ? lineCounter.linePos(range[0]).line : 1;
  };
  checkKeys(doc.contents, TOP_KEYS, '', path, at);
  const tls = doc.contents.get('tls_server_config', true);
  if (tls !== undefined && tls !== null) {
    if (!isMap(tls)) throw new ConfigError(`${path}:${at(doc.contents, 'tls_server_config')}: tls_server_config: expected a mapping`);
    config.tls = readTls(tls, path, at);
  }
  const http = doc.contents.get('http_server_config', true);
  if (isMap(http)) {
    checkKeys(http, HTTP_KEYS, 'http_server_config.', path, at);
    config.headers = (http.toJSON() as { headers?: Record<string, string> }).headers ?? {};
  }
  const users = doc.contents.get('basic_auth_users', true);
  if (isMap(users)) {
    for (const [user, hash] of Object.entries(users.toJSON() as Record<string, unknown>)) {
      if (typeof hash !== 'string' || !/^\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw new ConfigError(`${path}:${at(users, user)}: basic_auth_users.${user}: expected a bcrypt hash ($2y$10$...)`);
      }
      config.basicAuthUsers.set(user, hash);
    }
  }
  return config;
}

function checkKeys(map: YAMLMap, allowed: string[], prefix: string, path: string, at: (map: YAMLMap, key: string) => number) {
  for (const pair of map.items) {
    const key = String((pair.key as { value?: unknown })?.value);
    if (!allowed.includes(key)) throw new ConfigError(`${path}:${at(map, key)}: unknown key "${prefix}${key}" (known: ${allowed.join(', ')})`);
  }
}

function readTls(tls: YAMLMap, path: string, at: (map: YAMLMap, key: string) => number): WebConfig['tls'] {
  checkKeys(tls, TLS_KEYS, 'tls_server_config.', path, at);
  const values = tls.toJSON() as Record<string, string | undefined>;
  const read = (key: string) => {
    const file = values[key];
    if (!file) throw new ConfigError(`${path}:${at(tls, key)}: tls_server_config.${key}: required`);
    try {
      return readFileSync(file);
    } catch (err) {
      throw new ConfigError(`${path}:${at(tls, key)}: tls_server_config.${key}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
    }
  };
  const clientAuth = (values.client_auth_type ?? 'NoClientCert') as ClientAuthType;
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) {
    throw new ConfigError(`${path}:${at(tls, 'client_auth_type')}: tls_server_config.client_auth_type: "${clientAuth}" is not one of ${CLIENT_AUTH_TYPES.join(', ')}`);
  }
  const minVersion = values.min_version === 'TLS13' ? 'TLSv1.3' : values.min_version === 'TLS12' || !values.min_version ? 'TLSv1.2' : undefined;
  if (!minVersion) throw new ConfigError(`${path}:${at(tls, 'min_version')}: tls_server_config.min_version: expected TLS12 or TLS13`);
  return {
    cert: read('cert_file'),
    key: read('key_file'),
    ca: values.client_ca_file ? read('client_ca_file') : undefined,
    clientAuth,
    minVersion,
  };
}
