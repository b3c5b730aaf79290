import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import express, { type Express } from 'express';
import type { Logger } from '../log.js';
import { basicAuth } from './basic-auth.js';
import type { ScrapeBody } from '../metrics/scrape-cache.js';
import type { WebConfig } from './web-config.js';

export interface HttpOptions {
  listenAddress: string;
  telemetryPath: string;
  /** The full exposition text: read from caches only, never from the database. */
  metrics: () => Promise<ScrapeBody>;
  contentType: string;
  ready: () => boolean;
  webConfig?: WebConfig;
  log: Logger;
  /** Extra routes, mounted behind the same auth. */
  extraRoutes?: (app: Express) => void;
  /** Routes that authenticate themselves (POST /jobs/<name>/run: bearer token), mounted before basic auth. */
  selfAuthenticatedRoutes?: (app: Express) => void;
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
  // /healthz stays open so container healthchecks work without credentials; it reveals nothing.
  app.get('/healthz', (_req, res) => void res.type('text/plain').send('ok\n'));
  options.selfAuthenticatedRoutes?.(app);
  if (options.webConfig?.basicAuthUsers.size) app.use(basicAuth(options.webConfig.basicAuthUsers, options.log));
  app.get(options.telemetryPath, async (req, res) => {
    try {
      const body = await options.metrics();
      res.setHeader('Content-Type', options.contentType);
      res.setHeader('Vary', 'Accept-Encoding');
      if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
        res.setHeader('Content-Encoding', 'gzip');
        res.end(body.gzip());
      } else {
        res.end(body.plain);
      }
    } catch (err) {
      options.log.error({ error: (err as Error).message }, 'rendering metrics failed');
      res.status(500).type('text/plain').send('rendering metrics failed\n');
    }
  });
  app.get('/readyz', (_req, res) => {
    const ready = options.ready();
    res.status(ready ? 200 : 503).type('text/plain').send(ready ? 'ready\n' : 'first poll not finished\n');
  });
  app.get('/', (_req, res) => void res.type('html').send(landingPage(options.telemetryPath)));
  options.extraRoutes?.(app);
  return app;
}

export async function startHttpServer(options: HttpOptions): Promise<RunningHttpServer> {
  const app = createApp(options);
  const tls = options.webConfig?.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          cert: tls.cert,
          key: tls.key,
          ca: tls.ca,
          minVersion: tls.minVersion,
          requestCert: tls.clientAuth !== 'NoClientCert',
          rejectUnauthorized: tls.clientAuth === 'RequireAndVerifyClientCert',
        },
        app,
      )
    : createHttpServer(app);
  server.keepAliveTimeout = 65_000;
  const { host, port } = splitListenAddress(options.listenAddress);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
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

/** ":9188" = every interface; "[::1]:9188" = IPv6 loopback. */
export function splitListenAddress(address: string): { host: string | undefined; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  return { host: host || undefined, port: Number(address.slice(at + 1)) };
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
</ul>
</body></html>
`;
}
