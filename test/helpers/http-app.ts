import type { AddressInfo } from 'node:net';
import { createApp } from '../../src/http/server.js';
import { createLogger } from '../../src/log.js';
import { ScrapeCache } from '../../src/metrics/scrape-cache.js';

/**
 * The exporter's HTTP routes with nothing behind them (empty metrics), listening on a free loopback
 * port: for the deployment tests that check which paths the manifests probe. Closes after `use`.
 */
export async function withBareHttpApp(ready: boolean, use: (baseUrl: string) => Promise<void>): Promise<void> {
  const app = createApp({
    listenAddress: '127.0.0.1:0',
    telemetryPath: '/metrics',
    metrics: () => new ScrapeCache(async () => '').body(),
    contentType: 'text/plain',
    ready: () => ready,
    log: createLogger('silent'),
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  try {
    const { port } = server.address() as AddressInfo;
    await use(`http://127.0.0.1:${port}`);
  } finally {
    server.close();
  }
}
