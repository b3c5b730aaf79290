import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import bcrypt from 'bcryptjs';
import { afterAll, describe, expect, it } from 'vitest';
import { basicAuth } from '../src/http/basic-auth.js';
import { startHttpServer, type HttpOptions, type RunningHttpServer } from '../src/http/server.js';
import { createLogger } from '../src/log.js';
import { ScrapeCache } from '../src/metrics/scrape-cache.js';
import { runCli } from './helpers/cli.js';
import { startServe } from './helpers/exporter.js';

/** Basic auth with a bounded cost, open probes, malformed paths and start-up failures of the HTTP server. */

const HASH = bcrypt.hashSync('correct horse', 8);
const SLOW_HASH = bcrypt.hashSync('correct horse', 12);
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const servers: RunningHttpServer[] = [];
const dir = mkdtempSync(join(tmpdir(), 'pgve-http-'));
const after: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  await Promise.all([...servers.map((s) => s.close()), ...after.map((f) => f())]);
  rmSync(dir, { recursive: true, force: true });
});

async function serve(extra: Partial<HttpOptions> = {}): Promise<{ url: string; logs: () => string }> {
  let logs = '';
  const sink = new PassThrough();
  sink.on('data', (d: Buffer) => (logs += d.toString()));
  const server = await startHttpServer({
    listenAddress: '127.0.0.1:0',
    telemetryPath: '/metrics',
    metrics: () => new ScrapeCache(async () => 'up 1\n').body(),
    contentType: 'text/plain; version=0.0.4',
    ready: () => true,
    webConfig: { basicAuthUsers: new Map([['prometheus', HASH]]), headers: {} },
    log: createLogger('info', sink),
    ...extra,
  });
  servers.push(server);
  return { url: server.url, logs: () => logs };
}

describe('basic auth: bounded cost', () => {
  it('answers an unknown user after the same bcrypt comparison a known user costs', async () => {
    const compared: string[] = [];
    const handler = basicAuth(new Map([['prometheus', HASH]]), createLogger('silent'), {
      compare: (password, hash) => (compared.push(hash), bcrypt.compare(password, hash)),
    });
    const call = (authorization: string) =>
      new Promise<number>((resolve) => {
        const res = { set: () => res, status: (code: number) => ({ type: () => ({ send: () => resolve(code) }) }) };
        void handler({ headers: { authorization }, path: '/metrics', socket: {} } as never, res as never, () => resolve(200));
      });
    expect(await call(basic('nobody', 'guess'))).toBe(401);
    expect(await call(basic('prometheus', 'guess'))).toBe(401);
    expect(compared).toEqual([HASH, HASH]);
    // Repeated pairs come from the cache: no further comparison, right or wrong.
    expect(await call(basic('prometheus', 'correct horse'))).toBe(200);
    expect(await call(basic('prometheus', 'correct horse'))).toBe(200);
    expect(await call(basic('nobody', 'guess'))).toBe(401);
    expect(compared).toHaveLength(3);
  });

  it('keeps authorized scrapes and probes answering during a flood of wrong passwords', { timeout: 180_000 }, async () => {
    // The real serve process (no database needed: pg_up reads 0), flooded from this one.
    const web = join(dir, 'flood-web.yml');
    // Cost 12 (about 0.34 s a comparison in bcryptjs here): the flood's 66 admitted comparisons, two at a time, keep
    // the server busy for over 20 s even on an idle machine, so "answered while the flood is still being checked"
    // does not depend on how fast this machine happens to be, nor on either process being left waiting for a few
    // seconds on a loaded one (at cost 8, then 10, busy runs counted the whole flood first). The rest of the
    // flood is not waited for: the server is stopped once the three answers are in.
    writeFileSync(web, `basic_auth_users:\n  prometheus: ${SLOW_HASH}\n`);
    const served = await startServe(['--web.config.file', web], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    after.push(() => served.stop());
    const { url } = served;
    expect((await fetch(`${url}/metrics`, { headers: { authorization: basic('prometheus', 'correct horse') } })).status).toBe(200);
    // Every request of this test, the flood's and the three checked below, goes through node:http and is counted
    // on its 'response' event, so the order in which this process sees the answers is the order in which they
    // arrived, even when a loaded machine leaves this process waiting while the server works (a fetch() through
    // undici resolved a few ticks later than the flood's plain responses, and a starved run counted the whole
    // flood first although the server had answered the scrape long before).
    let floodDone = 0;
    const statuses: number[] = [];
    const get = (path: string, headers: Record<string, string>, onResponse: (status: number) => void) =>
      new Promise<void>((resolve, reject) => {
        // One connection per request (no agent), so all of them arrive at once.
        const req = request(`${url}${path}`, { agent: false, headers }, (res) => {
          onResponse(res.statusCode ?? 0);
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', reject);
        req.end();
      });
    for (let i = 0; i < 200; i++) {
      // Its requests still waiting for a comparison are cut off when the server is stopped below.
      get('/metrics', { authorization: basic(i % 2 ? 'prometheus' : `user${i}`, `wrong-${i}`) }, (status) => {
        floodDone++;
        statuses.push(status);
      }).catch(() => {});
    }
    await expect.poll(() => floodDone, { timeout: 30_000 }).toBeGreaterThan(0);
    // Answered while the flood is still being checked: the verified pair comes from the cache, the probes need no auth.
    // All three asked at once, each noting how much of the flood was answered when its own answer came: the
    // flood's comparisons take seconds, an answer from the cache or without auth milliseconds.
    const answeredWhen = async (path: string, headers: Record<string, string> = {}) => {
      let answer = { status: 0, floodDone: 0 };
      await get(path, headers, (status) => (answer = { status, floodDone }));
      return answer;
    };
    const [scrape, healthz, readyz] = await Promise.all([
      answeredWhen('/metrics', { authorization: basic('prometheus', 'correct horse') }),
      answeredWhen('/healthz'),
      answeredWhen('/readyz'),
    ]);
    const doneWhenAnswered = Math.max(scrape.floodDone, healthz.floodDone);
    served.child.kill('SIGKILL');
    await served.stop();
    expect([scrape.status, healthz.status]).toEqual([200, 200]);
    expect(readyz.status).not.toBe(401);
    expect(doneWhenAnswered).toBeLessThan(200);
    // Beyond 2 running and 64 waiting comparisons, the rest is refused at once (429), none is let in.
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    expect(statuses.every((s) => s === 401 || s === 429)).toBe(true);
  });

  it('can put the probes behind auth (web.probes_without_auth: false)', async () => {
    const open = await serve();
    expect((await fetch(`${open.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${open.url}/metrics`)).status).toBe(401);
    const closed = await serve({ probesWithoutAuth: false });
    expect((await fetch(`${closed.url}/healthz`)).status).toBe(401);
    expect((await fetch(`${closed.url}/readyz`)).status).toBe(401);
    expect((await fetch(`${closed.url}/readyz`, { headers: { authorization: basic('prometheus', 'correct horse') } })).status).toBe(200);
  });
});

describe('malformed requests', () => {
  it('answers a path that does not decode with 400, no stack trace in the body or the log', async () => {
    const noop = { has: () => false, run: async () => ({}) as never };
    const { mountJobsRoute } = await import('../src/http/jobs-route.js');
    const { url, logs } = await serve({ webConfig: undefined, selfAuthenticatedRoutes: (app) => mountJobsRoute(app, noop as never, 'token-token-token', createLogger('silent')) });
    const response = await fetch(`${url}/jobs/%zz/run`, { method: 'POST', headers: { authorization: 'Bearer token-token-token' } });
    const body = await response.text();
    expect(response.status).toBe(400);
    expect(body).toBe('bad request\n');
    expect(logs()).toMatch(/"status":400/);
    expect(logs()).not.toMatch(/\n\s+at |URIError: .*\n/);
    const missing = await fetch(`${url}/%E0%A4%A`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toBe('not found\n');
  });
});

describe('start-up failures are exit 2 with one line', () => {
  it('refuses a listen address already in use', async () => {
    const holder: Server = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      const result = await runCli(['serve', '--web.listen-address', `127.0.0.1:${port}`], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(new RegExp(`web\\.listen_address 127\\.0\\.0\\.1:${port}: cannot listen: address already in use`));
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stderr.trim().split('\n').filter((l) => !l.startsWith('{'))).toHaveLength(1);
    } finally {
      holder.close();
    }
  });

  it('refuses a TLS key that does not match its certificate', async () => {
    for (const name of ['a', 'b']) {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${name}`, '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`)], { stdio: 'ignore' });
    }
    const web = join(dir, 'web.yml');
    writeFileSync(web, `tls_server_config:\n  cert_file: a.pem\n  key_file: b.key\n`);
    const result = await runCli(['serve', '--web.config.file', web, '--web.listen-address', '127.0.0.1:0'], { DATABASE_URL: 'postgresql://x@127.0.0.1:1/x' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/web\.yml:3: tls_server_config\.key_file: the key does not match the certificate/);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
