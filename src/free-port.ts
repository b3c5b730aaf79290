import { createServer } from 'node:net';

/** A TCP port free on 127.0.0.1 right now, picked by the kernel (for local clusters, the demo, tests, benchmarks). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** `preferred` when it is free on 127.0.0.1 right now, so the demo's URLs are the familiar ones; any free port otherwise. */
export async function preferredOrFreePort(preferred: number): Promise<number> {
  const free = await new Promise<boolean>((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(preferred, '127.0.0.1', () => server.close(() => resolve(true)));
  });
  return free ? preferred : freePort();
}
