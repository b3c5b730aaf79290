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

  describe('keepFreshMs: rendering ahead while scraped', () => {
    const until = async (condition: () => boolean, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };

    it('renders again every max age while somebody scraped lately, without being asked', async () => {
      let renders = 0;
      const cache = new ScrapeCache(async () => `pg_up ${++renders}\n`, { maxAgeMs: 20, keepFreshMs: 60_000 });
      try {
        expect((await cache.body()).plain.toString()).toBe('pg_up 1\n');
        await until(() => renders >= 4, 'renders ahead');
        // The next scrape gets a body rendered ahead, not one rendered for it.
        expect(Number(/\d+/.exec((await cache.body()).plain.toString())![0])).toBeGreaterThanOrEqual(3);
      } finally {
        cache.stop();
      }
    });

    it('stops rendering ahead once nobody scraped for keepFreshMs, and after stop()', async () => {
      let renders = 0;
      const idle = new ScrapeCache(async () => `r ${++renders}\n`, { maxAgeMs: 20, keepFreshMs: 100 });
      await idle.body();
      // Quiet: no render for a whole second, well past keepFreshMs and many max ages.
      let last = -1;
      let quietSince = Date.now();
      await until(() => {
        if (renders !== last) {
          last = renders;
          quietSince = Date.now();
        }
        return Date.now() - quietSince > 1000;
      }, 'rendering ahead to stop');
      expect(renders).toBeGreaterThanOrEqual(1);

      let stoppedRenders = 0;
      const stopped = new ScrapeCache(async () => `r ${++stoppedRenders}\n`, { maxAgeMs: 20, keepFreshMs: 60_000 });
      await stopped.body();
      await until(() => stoppedRenders >= 2, 'a render ahead');
      stopped.stop();
      const atStop = stoppedRenders;
      await new Promise((r) => setTimeout(r, 300));
      // At most one render already under way when stop() came.
      expect(stoppedRenders).toBeLessThanOrEqual(atStop + 1);
    });

    it('without keepFreshMs renders only when asked', async () => {
      let renders = 0;
      const cache = new ScrapeCache(async () => `r ${++renders}\n`, { maxAgeMs: 20 });
      await cache.body();
      await new Promise((r) => setTimeout(r, 300));
      expect(renders).toBe(1);
    });
  });
});
