import { request } from 'node:http';
import { describe, expect, it } from 'vitest';
import { acceptsGzip } from '../src/http/accept-encoding.js';
import { eventually, useServeOnTestDatabase, type ServeProcess } from './helpers/exporter.js';

/** What a well-behaved exporter answers: gzip only when allowed (q-values), HEAD with the GET's length, text 0.0.4 to an OpenMetrics scraper. */
describe('Accept-Encoding q-values', () => {
  it.each([
    [undefined, false],
    ['gzip', true],
    ['GZIP', true],
    ['x-gzip', true],
    ['gzip;q=0', false],
    ['gzip; q=0.0', false],
    ['br;q=1, gzip;q=0.5', true],
    ['identity', false],
    ['*', true],
    ['*;q=0', false],
    ['gzip;q=0, *;q=1', false],
    ['deflate, *;q=0.1', true],
    ['identity;q=1, *;q=0', false],
  ])('%s -> gzip %s', (header, expected) => {
    expect(acceptsGzip(header)).toBe(expected);
  });
});

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function call(url: string, method: 'GET' | 'HEAD', headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('/metrics negotiation against the running exporter', () => {
  let serve: ServeProcess;
  useServeOnTestDatabase((started) => ({ serve } = started));

  it('gzips only when Accept-Encoding allows it', async () => {
    const url = `${serve.url}/metrics`;
    for (const [header, gzip] of [['gzip;q=0', false], ['gzip;q=0, *;q=1', false], ['br;q=1, gzip;q=0.5', true], ['*', true], ['identity', false]] as const) {
      const reply = await call(url, 'GET', { 'Accept-Encoding': header });
      expect(reply.headers['content-encoding'], header).toBe(gzip ? 'gzip' : undefined);
      expect(Number(reply.headers['content-length']), header).toBe(reply.body.length);
    }
  });

  it('answers HEAD with the Content-Length of the GET and no body', async () => {
    const url = `${serve.url}/metrics`;
    const variants: Record<string, string>[] = [{}, { 'Accept-Encoding': 'gzip' }];
    for (const headers of variants) {
      // The body is re-rendered at most once a second: compare a HEAD and a GET of the same render.
      await eventually(async () => {
        const head = await call(url, 'HEAD', headers);
        const get = await call(url, 'GET', headers);
        expect(head.status).toBe(200);
        expect(head.body.length).toBe(0);
        expect(head.headers['content-type']).toBe(get.headers['content-type']);
        return Number(head.headers['content-length']) === get.body.length && get.body.length > 0;
      }, 'HEAD and GET of the same render');
    }
  });

  it("answers Prometheus' OpenMetrics-first Accept header with the text format 0.0.4 it falls back to", async () => {
    const accept = 'application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1';
    const reply = await call(`${serve.url}/metrics`, 'GET', { Accept: accept });
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body.toString()).not.toContain('# EOF');
  });
});
