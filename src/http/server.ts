import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Logger } from '../log.js';
import { basicAuth } from './basic-auth.js';
import type { ScrapeBody } from '../metrics/scrape-cache.js';
import { sendScrapeBody } from './scrape-response.js';
import { secureContextOptions, type WebConfig, type WebTlsConfig } from './web-config.js';
import { ConfigError } from '../errors.js';

export interface HttpOptions {
  listenAddress: string;
  telemetryPath: string;
  /** The full exposition text: read from caches only, never from the database. */
  metrics: () => Promise<ScrapeBody>;
  contentType: string;
  ready: () => boolean;
  webConfig?: WebConfig;
  /** With basic auth on: /healthz and /readyz answer without credentials (Kubernetes probes send none). Default true. */
  probesWithoutAuth?: boolean;
  log: Logger;
  /** Routes that authenticate themselves (POST /jobs/<name>/run: bearer token), mounted before basic auth. */
  selfAuthenticatedRoutes?: (app: Express) => void;
  /** Routes behind the web config's basic auth and TLS, like /metrics (GET /probe). */
  authenticatedRoutes?: (app: Express) => void;
}

export interface RunningHttpServer {
  /** host:port actually bound (resolves port 0). */
  address: string;
  url: string;
  close(): Promise<void>;
}

export function createApp(options: HttpOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  for (const [name, value] of Object.entries(options.webConfig?.headers ?? {})) {
    app.use((_req, res, next) => void (res.setHeader(name, value), next()));
  }
  // The probes reveal nothing but liveness and readiness; by default they stay open so container
  // healthchecks and Kubernetes probes work without credentials when basic auth is on.
  const probes = () => {
    app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok\n'));
    app.get('/readyz', (_req, res) => {
      const ready = options.ready();
      res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'first poll not finished\n');
    });
  };
  const openProbes = options.probesWithoutAuth !== false;
  if (openProbes) probes();
  options.selfAuthenticatedRoutes?.(app);
  if (options.webConfig?.basicAuthUsers.size) app.use(basicAuth(options.webConfig.basicAuthUsers, options.log));
  if (!openProbes) probes();
  options.authenticatedRoutes?.(app);
  app.get(options.telemetryPath, async (req, res) => {
    try {
      const body = await options.metrics();
      // Always the text format 0.0.4, also when the scraper asks for OpenMetrics first (Prometheus does, and
      // falls back on the Content-Type): OpenMetrics requires _total on counters, and postgres_exporter's
      // counter names that its mixin uses (pg_stat_database_xact_commit, ...) have none (docs/operations.md).
      sendScrapeBody(req, res, body, options.contentType);
    } catch (err) {
      options.log.error({ error: (err as Error).message }, 'rendering metrics failed');
      res.status(500).type('text/plain').send('rendering metrics failed\n');
    }
  });
  app.get('/', (_req, res) => void res.type('html').send(landingPage(options.telemetryPath)));
  app.use((_req, res) => void res.status(404).type('text/plain').send('not found\n'));
  // Last: express's own handler would answer a malformed path (a %zz that does not decode) with the
  // stack trace in the body outside NODE_ENV=production. One line, no stack, in the body and the log.
  app.use((err: unknown, req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) return next(err);
    const e = err as { status?: number; statusCode?: number; message?: string };
    const status = e.status ?? e.statusCode ?? 500;
    const client = status >= 400 && status < 500;
    options.log[client ? 'warn' : 'error']({ status, path: printablePath(req.originalUrl), error: e.message ?? String(err) }, client ? 'bad request' : 'request failed');
    res.status(client ? status : 500).type('text/plain').send(client ? 'bad request\n' : 'internal error\n');
  });
  return app;
}

export async function startHttpServer(options: HttpOptions): Promise<RunningHttpServer> {
  const app = createApp(options);
  const tls = options.webConfig?.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          ...secureContextOptions(tls),
          requestCert: tls.clientAuth !== 'NoClientCert',
          // OpenSSL fails the handshake itself only for RequireAndVerifyClientCert; the other policies
          // are enforced on the established connection below, before a request is read.
          rejectUnauthorized: tls.clientAuth === 'RequireAndVerifyClientCert',
        },
        app,
      )
    : createHttpServer(app);
  if (tls) {
    server.on('secureConnection', (socket: TLSSocket) => {
      const refusal = clientCertificateRefusal(tls, socket);
      if (refusal) {
        options.log.warn({ remote: socket.remoteAddress, reason: refusal }, 'TLS client refused');
        socket.destroy();
      }
    });
  }
  server.keepAliveTimeout = 65_000;
  const { host, port } = splitListenAddress(options.listenAddress);
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      // The operator's input (the address) is wrong or taken: exit 2 with one line, like a bad flag.
      const why: Record<string, string> = { EADDRINUSE: 'address already in use', EACCES: 'permission denied (a port below 1024 needs privileges)', EADDRNOTAVAIL: 'address not available on this host', ENOTFOUND: 'unknown host' };
      reject(err.code && why[err.code] ? new ConfigError(`web.listen_address ${options.listenAddress}: cannot listen: ${why[err.code]}`) : err);
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  const shownHost = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return {
    address: `${shownHost}:${bound.port}`,
    url: `${tls ? 'https' : 'http'}://${host && host !== '0.0.0.0' && host !== '::' ? shownHost : 'localhost'}:${bound.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * Why a TLS client must be turned away under the web config's client_auth_type and client_allowed_sans,
 * as exporter-toolkit (Go crypto/tls) would; undefined = let it in.
 */
export function clientCertificateRefusal(tls: WebTlsConfig, socket: TLSSocket): string | undefined {
  if (tls.clientAuth === 'NoClientCert' || tls.clientAuth === 'RequestClientCert') return undefined;
  const peer = socket.getPeerCertificate();
  const given = peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
  if (!given) return tls.clientAuth === 'VerifyClientCertIfGiven' ? undefined : 'no client certificate';
  if ((tls.clientAuth === 'VerifyClientCertIfGiven' || tls.clientAuth === 'RequireAndVerifyClientCert') && !socket.authorized) {
    return `client certificate not verified: ${String(socket.authorizationError)}`;
  }
  if (tls.clientAllowedSans) {
    const sans = subjectAltNames(peer.subjectaltname ?? '');
    if (!sans.some((san) => tls.clientAllowedSans!.includes(san))) return 'client certificate has none of client_allowed_sans';
  }
  return undefined;
}

/** "DNS:a, IP Address:127.0.0.1, email:x@y, URI:spiffe://t/w" -> the values (Go compares the values only). */
function subjectAltNames(text: string): string[] {
  const values: string[] = [];
  for (const match of text.matchAll(/(?:^|, )(DNS|IP Address|email|URI):((?:"(?:[^"\\]|\\.)*")|[^,]*)/g)) {
    let value = match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!;
    if (match[1] === 'IP Address') value = value.toLowerCase();
    values.push(value);
  }
  return values;
}

/** ":9188" = every interface; "[::1]:9188" = IPv6 loopback. */
export function splitListenAddress(address: string): { host: string | undefined; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port: Number(address.slice(at + 1)) };
}

/**
 * The request path for a log line: without the query (a /probe target may carry a password, in any
 * encoding), bounded, control characters escaped (it is attacker-controlled).
 */
function printablePath(url: string): string {
  const query = url.indexOf('?');
  const path = query === -1 ? url : `${url.slice(0, query)}?...`;
  return JSON.stringify(path.slice(0, 200)).slice(1, -1);
}

function landingPage(telemetryPath: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>pgvector-exporter</title></head>
<body>
<h1>pgvector-exporter</h1>
<p>Prometheus exporter and maintenance sidecar for PostgreSQL + pgvector.</p>
<ul>
<li><a href="${telemetryPath}">${telemetryPath}</a>: metrics</li>
<li><a href="/healthz">/healthz</a>: the process is alive</li>
<li><a href="/readyz">/readyz</a>: the first poll of every collector has finished</li>
<li>/probe?target=host:port/dbname[&amp;auth_module=NAME]: the metrics of another server (multi-target pattern)</li>
</ul>
</body></html>
`;
}
