import { gzipSync } from 'node:zlib';

/**
 * The /metrics body, rendered at most once per maxAgeMs however many scrapers ask, and gzipped at
 * most once per render for the clients that accept it (Prometheus does). Under tens of concurrent
 * scrapers a scrape then costs one socket write of a prepared buffer: rendering and encoding ~70 KB
 * per request was most of the exporter's CPU. The data is no older than the collectors' own cache
 * plus maxAgeMs (1 s), well inside any poll interval.
 */
export interface ScrapeBody {
  plain: Buffer;
  gzip(): Buffer;
}

export class ScrapeCache {
  private current?: Promise<ScrapeBody>;
  private renderedAt = 0;

  constructor(
    private readonly render: () => Promise<string>,
    private readonly maxAgeMs = 1000,
  ) {}

  body(now = Date.now()): Promise<ScrapeBody> {
    if (!this.current || now - this.renderedAt >= this.maxAgeMs) {
      this.renderedAt = now;
      const rendering = this.render().then(prepare);
      // A failed render is not kept: the next scrape tries again.
      rendering.catch(() => {
        if (this.current === rendering) this.current = undefined;
      });
      this.current = rendering;
    }
    return this.current;
  }
}

function prepare(text: string): ScrapeBody {
  const plain = Buffer.from(text, 'utf8');
  let gzipped: Buffer | undefined;
  return { plain, gzip: () => (gzipped ??= gzipSync(plain, { level: 1 })) };
}
