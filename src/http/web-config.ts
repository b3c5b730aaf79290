import { readFileSync } from 'node:fs';
import { createSecureContext, type SecureVersion } from 'node:tls';
import { dirname, isAbsolute, join } from 'node:path';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node as YamlNode, type YAMLMap } from 'yaml';
import { ConfigError } from '../errors.js';

/**
 * The Prometheus exporter-toolkit web configuration (--web.config.file), the format every official
 * exporter accepts: https://github.com/prometheus/exporter-toolkit/blob/master/docs/web-configuration.md
 *
 * Every key of that format is either enforced here exactly as exporter-toolkit's Go code does, or refused at
 * start (exit 2, file:line:key): a key that is accepted and then ignored would give a false sense of safety
 * (max_version: TLS12 still negotiating TLS 1.3, RequireAnyClientCert serving a client without a certificate).
 * Refused: `http_server_config.http2: true` (this server speaks HTTP/1.1 only) and `rate_limit`.
 * Relative file names are read from the web config file's directory, as exporter-toolkit does. The file is
 * read once at start (exporter-toolkit re-reads it per request); restart to pick up new certificates.
 */
export interface WebConfig {
  tls?: WebTlsConfig;
  basicAuthUsers: Map<string, string>;
  headers: Record<string, string>;
}

export interface WebTlsConfig {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
  clientAuth: ClientAuthType;
  minVersion: SecureVersion;
  maxVersion: SecureVersion;
  /** OpenSSL names of the allowed TLS 1.2-and-below suites; undefined = Node's defaults. */
  ciphers?: string;
  /** OpenSSL group list, e.g. "X25519:P-256"; undefined = Node's defaults. */
  ecdhCurve?: string;
  honorCipherOrder: boolean;
  /** The client certificate must carry one of these SANs (DNS, IP, e-mail or URI), exactly. */
  clientAllowedSans?: string[];
}

export const CLIENT_AUTH_TYPES = ['NoClientCert', 'RequestClientCert', 'RequireAnyClientCert', 'VerifyClientCertIfGiven', 'RequireAndVerifyClientCert'] as const;
export type ClientAuthType = (typeof CLIENT_AUTH_TYPES)[number];

const TLS_VERSIONS: Record<string, SecureVersion> = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' };
const VERSION_ORDER: SecureVersion[] = ['TLSv1', 'TLSv1.1', 'TLSv1.2', 'TLSv1.3'];

/** Go's crypto/tls CipherSuites() names (TLS 1.0-1.2) -> OpenSSL names. */
const CIPHER_SUITES: Record<string, string> = {
  TLS_RSA_WITH_AES_128_CBC_SHA: 'AES128-SHA',
  TLS_RSA_WITH_AES_256_CBC_SHA: 'AES256-SHA',
  TLS_RSA_WITH_AES_128_GCM_SHA256: 'AES128-GCM-SHA256',
  TLS_RSA_WITH_AES_256_GCM_SHA384: 'AES256-GCM-SHA384',
  TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA: 'ECDHE-ECDSA-AES128-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA: 'ECDHE-ECDSA-AES256-SHA',
  TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA: 'ECDHE-RSA-AES128-SHA',
  TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA: 'ECDHE-RSA-AES256-SHA',
  TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256: 'ECDHE-ECDSA-AES128-GCM-SHA256',
  TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384: 'ECDHE-ECDSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256: 'ECDHE-RSA-AES128-GCM-SHA256',
  TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384: 'ECDHE-RSA-AES256-GCM-SHA384',
  TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-RSA-CHACHA20-POLY1305',
  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256: 'ECDHE-ECDSA-CHACHA20-POLY1305',
};
/** TLS 1.3 suites: Go lists them but never lets a config choose them (they all stay enabled); so here. */
const TLS13_SUITES = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'];
const TLS13_DEFAULT = TLS13_SUITES.join(':');

const CURVES: Record<string, string> = { CurveP256: 'P-256', CurveP384: 'P-384', CurveP521: 'P-521', X25519: 'X25519' };

/** exporter-toolkit's allowed extra headers, with the values it accepts (undefined = any). */
const HEADERS: Record<string, string[] | undefined> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

const TLS_KEYS = ['cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'min_version', 'max_version', 'cipher_suites', 'curve_preferences', 'prefer_server_cipher_suites', 'client_allowed_sans'];
const TOP_KEYS = ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit'];
const HTTP_KEYS = ['http2', 'headers'];

type At = (map: YAMLMap, key: string) => number;

export function loadWebConfig(path: string): WebConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${path}: cannot read web config file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true });
  if (doc.errors.length) {
    const line = lineCounter.linePos(doc.errors[0]!.pos[0]).line;
    throw new ConfigError(`${path}:${line}: invalid YAML: ${doc.errors[0]!.message.split('\n')[0]}`);
  }
  const config: WebConfig = { basicAuthUsers: new Map(), headers: {} };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return config;
  if (!isMap(doc.contents)) throw new ConfigError(`${path}:1: the web config must be a mapping`);
  const at: At = (map, key) => {
    const pair = map.items.find((p) => String((p.key as { value?: unknown })?.value) === key);
    const node = (pair?.value ?? pair?.key) as YamlNode | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : 1;
  };
  const fail = (map: YAMLMap, key: string, name: string, message: string): never => {
    throw new ConfigError(`${path}:${at(map, key)}: ${name}: ${message}`);
  };
  checkKeys(doc.contents, TOP_KEYS, '', path, at);
  if (doc.contents.has('rate_limit')) {
    fail(doc.contents, 'rate_limit', 'rate_limit', 'not supported by pgvector-exporter (limit request rates in a reverse proxy); remove the key');
  }
  const tls = doc.contents.get('tls_server_config', true) as YamlNode | null | undefined;
  if (tls !== undefined && tls !== null && !(isScalar(tls) && tls.value === null)) {
    if (!isMap(tls)) fail(doc.contents, 'tls_server_config', 'tls_server_config', 'expected a mapping');
    config.tls = readTls(tls as YAMLMap, dirname(path), path, at);
  }
  const http = doc.contents.get('http_server_config', true) as YamlNode | null | undefined;
  if (http !== undefined && http !== null && !(isScalar(http) && http.value === null)) {
    if (!isMap(http)) fail(doc.contents, 'http_server_config', 'http_server_config', 'expected a mapping');
    config.headers = readHttp(http as YAMLMap, fail, path, at);
  }
  const users = doc.contents.get('basic_auth_users', true) as YamlNode | null | undefined;
  if (users !== undefined && users !== null && !(isScalar(users) && users.value === null)) {
    if (!isMap(users)) fail(doc.contents, 'basic_auth_users', 'basic_auth_users', 'expected a mapping of user names to bcrypt hashes');
    for (const [user, hash] of Object.entries((users as YAMLMap).toJSON() as Record<string, unknown>)) {
      if (typeof hash !== 'string' || !/^\$2[aby]?\$\d{2}\$[./A-Za-z0-9]{53}$/.test(hash)) {
        fail(users as YAMLMap, user, `basic_auth_users.${user}`, 'expected a bcrypt hash ($2y$10$...)');
      }
      config.basicAuthUsers.set(user, hash as string);
    }
  }
  return config;
}

function checkKeys(map: YAMLMap, allowed: string[], prefix: string, path: string, at: At) {
  for (const pair of map.items) {
    const key = String((pair.key as { value?: unknown })?.value);
    if (!allowed.includes(key)) throw new ConfigError(`${path}:${at(map, key)}: unknown key "${prefix}${key}" (known: ${allowed.join(', ')})`);
  }
}

function readHttp(http: YAMLMap, fail: (map: YAMLMap, key: string, name: string, message: string) => never, path: string, at: At): Record<string, string> {
  checkKeys(http, HTTP_KEYS, 'http_server_config.', path, at);
  const http2 = http.get('http2');
  if (http2 !== undefined && http2 !== null && http2 !== false) {
    fail(http, 'http2', 'http_server_config.http2', http2 === true ? 'HTTP/2 is not supported (the server speaks HTTP/1.1); set false or remove the key' : 'expected true or false');
  }
  const node = http.get('headers', true) as YamlNode | null | undefined;
  if (node === undefined || node === null || (isScalar(node) && node.value === null)) return {};
  if (!isMap(node)) fail(http, 'headers', 'http_server_config.headers', 'expected a mapping of header names to values');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries((node as YAMLMap).toJSON() as Record<string, unknown>)) {
    const key = `http_server_config.headers.${name}`;
    if (!(name in HEADERS)) fail(node as YAMLMap, name, key, `this header can not be configured (allowed: ${Object.keys(HEADERS).join(', ')})`);
    if (typeof value !== 'string' || /[\r\n\0]/.test(value)) fail(node as YAMLMap, name, key, 'expected a one-line string');
    const allowed = HEADERS[name];
    if (value === '') continue; // "unset if blank"
    if (allowed && !allowed.includes(value as string)) fail(node as YAMLMap, name, key, `"${String(value)}" is not one of ${allowed.join(', ')}`);
    headers[name] = value as string;
  }
  return headers;
}

function readTls(tls: YAMLMap, baseDir: string, path: string, at: At): WebTlsConfig {
  checkKeys(tls, TLS_KEYS, 'tls_server_config.', path, at);
  const fail = (key: string, message: string): never => {
    throw new ConfigError(`${path}:${at(tls, key)}: tls_server_config.${key}: ${message}`);
  };
  const values = tls.toJSON() as Record<string, unknown>;
  const string = (key: string): string | undefined => {
    const value = values[key];
    if (value === undefined || value === null || value === '') return undefined;
    if (typeof value !== 'string') fail(key, 'expected a string');
    return value as string;
  };
  const list = (key: string): string[] | undefined => {
    const node = tls.get(key, true) as YamlNode | null | undefined;
    if (node === undefined || node === null || (isScalar(node) && node.value === null)) return undefined;
    if (!isSeq(node)) fail(key, 'expected a list');
    const items = (node as { toJSON(): unknown[] }).toJSON();
    if (items.some((item) => typeof item !== 'string' || item === '')) fail(key, 'expected a list of names');
    return items as string[];
  };
  const file = (key: string): Buffer | undefined => {
    const name = string(key);
    if (name === undefined) return undefined;
    const resolved = isAbsolute(name) ? name : join(baseDir, name);
    try {
      return readFileSync(resolved);
    } catch (err) {
      return fail(key, `cannot read ${resolved}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const either = (inline: string, fileKey: string): Buffer | undefined => {
    const text = string(inline);
    if (text !== undefined && string(fileKey) !== undefined) fail(inline, `set either ${inline} or ${fileKey}, not both`);
    return text !== undefined ? Buffer.from(text) : file(fileKey);
  };

  const cert = either('cert', 'cert_file') ?? fail(tls.has('key') ? 'key' : 'key_file', 'missing one of cert or cert_file');
  const key = either('key', 'key_file') ?? fail('cert_file', 'missing one of key or key_file');
  const ca = either('client_ca', 'client_ca_file');

  const clientAuth = (string('client_auth_type') ?? 'NoClientCert').replace(/^RequireClientCert$/, 'RequireAnyClientCert') as ClientAuthType;
  if (!CLIENT_AUTH_TYPES.includes(clientAuth)) fail('client_auth_type', `"${clientAuth}" is not one of ${CLIENT_AUTH_TYPES.join(', ')}`);
  if (ca && clientAuth === 'NoClientCert') {
    fail(tls.has('client_ca') ? 'client_ca' : 'client_ca_file', 'a client CA is configured but client_auth_type is NoClientCert (set RequireAndVerifyClientCert)');
  }

  const version = (key: string, fallback: SecureVersion): SecureVersion => {
    const value = string(key);
    if (value === undefined) return fallback;
    return TLS_VERSIONS[value] ?? fail(key, `"${value}" is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`);
  };
  const minVersion = version('min_version', 'TLSv1.2');
  const maxVersion = version('max_version', 'TLSv1.3');
  if (VERSION_ORDER.indexOf(maxVersion) < VERSION_ORDER.indexOf(minVersion)) fail('max_version', `is below min_version`);

  const suites = list('cipher_suites');
  let ciphers: string | undefined;
  if (suites) {
    const names = suites.map((suite) => {
      if (TLS13_SUITES.includes(suite)) return fail('cipher_suites', `${suite} is a TLS 1.3 suite: TLS 1.3 suites are not configurable (as in exporter-toolkit); list only TLS 1.2 suites`);
      return CIPHER_SUITES[suite] ?? fail('cipher_suites', `unknown cipher suite "${suite}" (known: ${Object.keys(CIPHER_SUITES).join(', ')})`);
    });
    // The TLS 1.3 suites stay enabled, as in Go, where cipher_suites only concerns TLS 1.2 and below.
    ciphers = [TLS13_DEFAULT, ...names].join(':');
  }
  const curves = list('curve_preferences');
  const ecdhCurve = curves?.map((curve) => CURVES[curve] ?? fail('curve_preferences', `unknown curve "${curve}" (known: ${Object.keys(CURVES).join(', ')})`)).join(':');

  const prefer = values.prefer_server_cipher_suites;
  if (prefer !== undefined && prefer !== null && typeof prefer !== 'boolean') fail('prefer_server_cipher_suites', 'expected true or false');

  const clientAllowedSans = list('client_allowed_sans');
  if (clientAllowedSans && clientAuth !== 'RequireAnyClientCert' && clientAuth !== 'RequireAndVerifyClientCert') {
    fail('client_allowed_sans', 'requires client_auth_type RequireAnyClientCert or RequireAndVerifyClientCert');
  }

  const config: WebTlsConfig = {
    cert,
    key,
    ca,
    clientAuth,
    minVersion,
    maxVersion,
    ciphers,
    ecdhCurve,
    honorCipherOrder: prefer !== false,
    clientAllowedSans,
  };
  // Load it the way the server will: a key that does not match its certificate, an unreadable PEM or a
  // cipher/curve OpenSSL refuses is exit 2 now, not a crash when the server starts.
  try {
    createSecureContext(secureContextOptions(config));
  } catch (err) {
    const message = (err as Error).message;
    const culprit = /curve|group/i.test(message) && ecdhCurve ? 'curve_preferences' : /cipher/i.test(message) && ciphers ? 'cipher_suites' : /ca|certificate/i.test(message) && ca && !/key/i.test(message) ? (tls.has('client_ca') ? 'client_ca' : 'client_ca_file') : tls.has('key') ? 'key' : 'key_file';
    fail(culprit, `${/mismatch/i.test(message) ? 'the key does not match the certificate' : 'TLS setup failed'} (${message})`);
  }
  return config;
}

/** The options of node:tls that carry this config (shared by the check at load time and the server). */
export function secureContextOptions(tls: WebTlsConfig) {
  return {
    cert: tls.cert,
    key: tls.key,
    ca: tls.ca,
    minVersion: tls.minVersion,
    maxVersion: tls.maxVersion,
    ...(tls.ciphers ? { ciphers: tls.ciphers } : {}),
    ...(tls.ecdhCurve ? { ecdhCurve: tls.ecdhCurve } : {}),
    honorCipherOrder: tls.honorCipherOrder,
  };
}
