import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpServer, type RunningHttpServer } from '../src/http/server.js';
import { loadWebConfig } from '../src/http/web-config.js';
import { createLogger } from '../src/log.js';
import { ScrapeCache } from '../src/metrics/scrape-cache.js';

/**
 * Every key of the exporter-toolkit web configuration, enforced as Go's crypto/tls would, checked with
 * real TLS clients (curl and openssl s_client) against the real HTTPS server.
 */

const dir = mkdtempSync(join(tmpdir(), 'pgve-webtls-'));
const f = (name: string) => join(dir, name);
const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });

function makeCa(name: string) {
  openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.pem`));
}
function makeCert(name: string, ca: string, san: string) {
  openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${name}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`));
  writeFileSync(f(`${name}.ext`), `subjectAltName=${san}\n`);
  openssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f(`${ca}.pem`), '-CAkey', f(`${ca}.key`), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`));
}

interface Attempt {
  /** curl's exit code (0 = an HTTP answer came). */
  exit: number;
  status: number;
  headers: string;
}

function curl(url: string, extra: string[] = []): Promise<Attempt> {
  return new Promise((resolve) => {
    execFile('curl', ['-sS', '--max-time', '20', '--cacert', f('ca.pem'), '-D', '-', '-o', '/dev/null', '-w', '\n%{http_code}', ...extra, url], (err, stdout) => {
      const lines = stdout.trim().split('\n');
      resolve({ exit: err ? Number((err as { code?: number }).code ?? 1) : 0, status: Number(lines.at(-1)), headers: stdout });
    });
  });
}
const withCert = (name: string) => ['--cert', f(`${name}.pem`), '--key', f(`${name}.key`)];

/** openssl s_client's handshake: the negotiated protocol and cipher, or undefined when it failed. */
function handshake(port: number, args: string[]): Promise<{ protocol: string; cipher: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', f('ca.pem'), '-brief', ...args], { timeout: 20_000 }, (err, stdout, stderr) => {
      const text = `${stdout}\n${stderr}`;
      const protocol = /Protocol version: (\S+)/.exec(text)?.[1];
      const cipher = /Ciphersuite: (\S+)/.exec(text)?.[1];
      resolve(!err && protocol && cipher ? { protocol, cipher } : undefined);
    });
    child.stdin?.end();
  });
}

const servers: RunningHttpServer[] = [];
let configs = 0;
async function serve(yaml: string): Promise<{ url: string; port: number }> {
  const file = f(`web-${configs++}.yml`);
  writeFileSync(file, `tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n${yaml}`);
  const server = await startHttpServer({
    listenAddress: '127.0.0.1:0',
    telemetryPath: '/metrics',
    metrics: () => new ScrapeCache(async () => 'up 1\n').body(),
    contentType: 'text/plain; version=0.0.4',
    ready: () => true,
    webConfig: loadWebConfig(file),
    log: createLogger('silent'),
  });
  servers.push(server);
  const port = Number(server.address.split(':').at(-1));
  return { url: `https://127.0.0.1:${port}/metrics`, port };
}

function refusal(yaml: string): string {
  const file = f(`bad-${configs++}.yml`);
  writeFileSync(file, yaml);
  try {
    loadWebConfig(file);
  } catch (err) {
    expect((err as { exitCode?: number }).exitCode).toBe(2);
    return (err as Error).message;
  }
  return 'accepted';
}

beforeAll(() => {
  makeCa('ca');
  makeCa('otherca');
  makeCert('server', 'ca', 'IP:127.0.0.1');
  makeCert('scraper', 'ca', 'DNS:prometheus.example,URI:spiffe://cluster/prometheus');
  makeCert('intruder', 'ca', 'DNS:intruder.example');
  makeCert('foreign', 'otherca', 'DNS:prometheus.example');
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
  rmSync(dir, { recursive: true, force: true });
});

describe('web config: TLS versions, suites and curves', () => {
  it('max_version TLS12 refuses TLS 1.3; min_version TLS13 refuses TLS 1.2', async () => {
    const capped = await serve('  max_version: TLS12\n');
    expect((await handshake(capped.port, []))?.protocol).toBe('TLSv1.2');
    expect(await handshake(capped.port, ['-tls1_3'])).toBeUndefined();
    expect((await curl(capped.url, ['--tlsv1.3'])).exit).not.toBe(0);
    expect((await curl(capped.url)).status).toBe(200);

    const modern = await serve('  min_version: TLS13\n');
    expect(await handshake(modern.port, ['-tls1_2'])).toBeUndefined();
    expect((await handshake(modern.port, []))?.protocol).toBe('TLSv1.3');
  });

  it('cipher_suites limits TLS 1.2 to the listed suites', async () => {
    const server = await serve('  max_version: TLS12\n  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]\n');
    expect(await handshake(server.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'])).toBeUndefined();
    expect((await handshake(server.port, ['-tls1_2']))?.cipher).toBe('ECDHE-RSA-AES256-GCM-SHA384');
  });

  it('curve_preferences limits the key-exchange groups', async () => {
    const server = await serve('  curve_preferences: [CurveP384]\n');
    expect(await handshake(server.port, ['-groups', 'X25519'])).toBeUndefined();
    expect(await handshake(server.port, ['-groups', 'P-384'])).toBeDefined();
  });

  it('http_server_config.headers are sent on every response', async () => {
    const server = await serve('http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n');
    const answer = await curl(server.url);
    expect(answer.status).toBe(200);
    expect(answer.headers).toMatch(/^x-frame-options: deny\r?$/im);
    expect(answer.headers).toMatch(/^strict-transport-security: max-age=31536000\r?$/im);
  });
});

describe('web config: client_auth_type in all five values', () => {
  const outcomes = async (url: string) => ({
    none: (await curl(url)).status,
    foreign: (await curl(url, withCert('foreign'))).status,
    trusted: (await curl(url, withCert('scraper'))).status,
  });

  it('NoClientCert and RequestClientCert let every client in', async () => {
    expect(await outcomes((await serve('  client_auth_type: NoClientCert\n')).url)).toEqual({ none: 200, foreign: 200, trusted: 200 });
    expect(await outcomes((await serve('  client_auth_type: RequestClientCert\n')).url)).toEqual({ none: 200, foreign: 200, trusted: 200 });
  });

  it('RequireAnyClientCert refuses a client without a certificate, verifies nothing', async () => {
    expect(await outcomes((await serve('  client_auth_type: RequireAnyClientCert\n')).url)).toEqual({ none: 0, foreign: 200, trusted: 200 });
  });

  it('VerifyClientCertIfGiven lets a client without a certificate in, refuses one the CA did not sign', async () => {
    const server = await serve('  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n');
    expect(await outcomes(server.url)).toEqual({ none: 200, foreign: 0, trusted: 200 });
  });

  it('RequireAndVerifyClientCert admits only certificates of the client CA', async () => {
    const server = await serve('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n');
    expect(await outcomes(server.url)).toEqual({ none: 0, foreign: 0, trusted: 200 });
  });

  it('client_allowed_sans admits only a certificate carrying one of the names', async () => {
    const server = await serve('  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [spiffe://cluster/prometheus]\n');
    expect((await curl(server.url, withCert('scraper'))).status).toBe(200);
    expect((await curl(server.url, withCert('intruder'))).status).toBe(0);
  });
});

describe('web config: what cannot be enforced is refused at start, naming the key', () => {
  it.each([
    ['max_version below min_version', '  min_version: TLS13\n  max_version: TLS12\n', /:\d+: tls_server_config\.max_version: is below min_version/],
    ['an unknown version', '  max_version: TLS14\n', /tls_server_config\.max_version: "TLS14" is not one of/],
    ['an unknown cipher suite', '  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n', /tls_server_config\.cipher_suites: unknown cipher suite "TLS_RSA_WITH_RC4_128_SHA"/],
    ['a TLS 1.3 suite', '  cipher_suites: [TLS_AES_128_GCM_SHA256]\n', /tls_server_config\.cipher_suites: TLS_AES_128_GCM_SHA256 is a TLS 1\.3 suite/],
    ['an unknown curve', '  curve_preferences: [CurveP224]\n', /tls_server_config\.curve_preferences: unknown curve "CurveP224"/],
    ['an unknown client_auth_type', '  client_auth_type: Whatever\n', /tls_server_config\.client_auth_type: "Whatever" is not one of/],
    ['a client CA without client auth', '  client_ca_file: ca.pem\n', /tls_server_config\.client_ca_file: a client CA is configured but client_auth_type is NoClientCert/],
    ['SANs where no certificate is required', '  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.pem\n  client_allowed_sans: [x]\n', /tls_server_config\.client_allowed_sans: requires client_auth_type/],
  ])('refuses %s', (_what, yaml, message) => {
    expect(refusal(`tls_server_config:\n  cert_file: ${f('server.pem')}\n  key_file: ${f('server.key')}\n${yaml.replace(/ca\.pem/g, f('ca.pem'))}`)).toMatch(message);
  });

  it('refuses a key that does not match its certificate, and a certificate given twice', () => {
    expect(refusal(`tls_server_config:\n  cert_file: ${f('server.pem')}\n  key_file: ${f('scraper.key')}\n`)).toMatch(/:3: tls_server_config\.key_file: the key does not match the certificate/);
    expect(refusal(`tls_server_config:\n  cert: "x"\n  cert_file: ${f('server.pem')}\n  key_file: ${f('server.key')}\n`)).toMatch(/tls_server_config\.cert: set either cert or cert_file, not both/);
  });

  it.each([
    ['a header exporter-toolkit does not allow', 'http_server_config:\n  headers:\n    Set-Cookie: a=b\n', /:3: http_server_config\.headers\.Set-Cookie: this header can not be configured/],
    ['a bad X-Frame-Options value', 'http_server_config:\n  headers:\n    X-Frame-Options: allow-from x\n', /http_server_config\.headers\.X-Frame-Options: "allow-from x" is not one of deny, sameorigin/],
    ['HTTP/2', 'http_server_config:\n  http2: true\n', /:2: http_server_config\.http2: HTTP\/2 is not supported/],
    ['rate_limit', 'rate_limit:\n  interval: 1s\n  burst: 5\n', /rate_limit: not supported/],
  ])('refuses %s', (_what, yaml, message) => {
    expect(refusal(yaml)).toMatch(message);
  });
});
