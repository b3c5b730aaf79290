import { gzipSync } from 'node:zlib';

/**
 * The /metrics body, rendered at most once per maxAgeMs however many scrapers ask, and gzipped at
 * most once per render for the clients that accept it (Prometheus does). Under tens of concurrent
 * scrapers a scrape then costs one socket write of a prepared buffer: rendering and encoding ~70 KB
 * per request was most of the exporter's CPU. The data is no older than the collectors' own cache
 * plus maxAgeMs (1 s), well inside any poll interval.
 *
 * With keepFreshMs, the body is also rendered ahead, every maxAgeMs, for as long as somebody scraped in
 * the last keepFreshMs: a scrape then finds a body ready instead of waiting for a render (3-5 ms in lite
 * mode with a few hundred self-metric series, the larger the more collectors; bench:custom). Nobody
 * scraping, nothing is rendered.
 */
export interface ScrapeBody {
  plain: Buffer;
  gzip(): Buffer;
}

export interface ScrapeCacheOptions {
  maxAgeMs?: number;
  /** Render ahead while scraped within this many milliseconds; 0 (the default) renders only when asked. */
  keepFreshMs?: number;
}

export class ScrapeCache {
  private current?: Promise<PreparedBody>;
  private renderedAt = 0;
  private askedAt = -Infinity;
  private refresh?: NodeJS.Timeout;
  private stopped = false;
  private readonly maxAgeMs: number;
  private readonly keepFreshMs: number;

  constructor(
    private readonly render: () => Promise<string>,
    options: ScrapeCacheOptions | number = {},
  ) {
    const { maxAgeMs = 1000, keepFreshMs = 0 } = typeof options === 'number' ? { maxAgeMs: options } : options;
    this.maxAgeMs = maxAgeMs;
    this.keepFreshMs = keepFreshMs;
  }

  body(now = Date.now()): Promise<ScrapeBody> {
    this.askedAt = now;
    // A refresh due any moment keeps the body a little past maxAgeMs rather than rendering on the request.
    const fresh = now - this.renderedAt < this.maxAgeMs || (this.refresh !== undefined && now - this.renderedAt < 2 * this.maxAgeMs);
    if (!this.current || !fresh) this.renderNow(now, false);
    return this.current!;
  }

  /** No more rendering ahead (the owner is going away). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.refresh);
    this.refresh = undefined;
  }

  private renderNow(now: number, eagerGzip: boolean): void {
    this.renderedAt = now;
    const rendering = this.render().then((text) => prepare(text, eagerGzip));
    // A failed render is not kept: the next scrape tries again.
    rendering.then(
      () => this.scheduleRefresh(),
      () => {
        if (this.current === rendering) this.current = undefined;
      },
    );
    this.current = rendering;
  }

  private scheduleRefresh(): void {
    if (this.stopped || this.keepFreshMs <= 0 || this.refresh) return;
    this.refresh = setTimeout(() => {
      this.refresh = undefined;
      const now = Date.now();
      if (this.stopped || now - this.askedAt > this.keepFreshMs) return;
      // Gzip ahead too when the last body's scrapers asked for it.
      void this.current?.then(
        (previous) => this.renderNow(now, previous.gzipped()),
        () => this.renderNow(now, false),
      );
    }, this.maxAgeMs);
    this.refresh.unref?.();
  }
}

interface PreparedBody extends ScrapeBody {
  gzipped(): boolean;
}

function prepare(text: string, eagerGzip: boolean): PreparedBody {
  const plain = Buffer.from(text, 'utf8');
  let gzipped: Buffer | undefined = eagerGzip ? gzipSync(plain, { level: 1 }) : undefined;
  return { plain, gzip: () => (gzipped ??= gzipSync(plain, { level: 1 })), gzipped: () => gzipped !== undefined };
}
