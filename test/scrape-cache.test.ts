import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ScrapeCache } from '../src/metrics/scrape-cache.js';

describe('ScrapeCache', () => {
  it('renders once per max age however many scrapes ask, and again after it', async () => {
    let renders = 0;
    const cache = new ScrapeCache(async () => `pg_up ${++renders}\n`, 1000);
    const bodies = await Promise.all(Array.from({ length: 50 }, () => cache.body(10_000)));
    expect(renders).toBe(1);
    expect(new Set(bodies).size).toBe(1);
    expect((await cache.body(10_999)).plain.toString()).toBe('pg_up 1\n');
    expect((await cache.body(11_000)).plain.toString()).toBe('pg_up 2\n');
  });

  it('gzips a render once, and the gzip decodes to the plain body', async () => {
    const cache = new ScrapeCache(async () => 'x'.repeat(10_000), 1000);
    const body = await cache.body(0);
    expect(body.gzip()).toBe(body.gzip());
    expect(gunzipSync(body.gzip()).toString()).toBe(body.plain.toString());
    expect(body.gzip().length).toBeLessThan(body.plain.length / 10);
  });

  it('does not keep a failed render', async () => {
    let fail = true;
    const cache = new ScrapeCache(async () => {
      if (fail) throw new Error('boom');
      return 'ok\n';
    }, 1000);
    await expect(cache.body(0)).rejects.toThrow('boom');
    fail = false;
    expect((await cache.body(1)).plain.toString()).toBe('ok\n');
  });
});
