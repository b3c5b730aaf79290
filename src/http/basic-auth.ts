import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';
import { BcryptThreads } from './bcrypt-threads.js';

/**
 * Basic auth against bcrypt hashes, with its cost bounded. bcrypt is slow on purpose (tens of ms of CPU a
 * comparison), so a flood of wrong passwords used to delay authorized scrapes and /healthz by seconds. Hence:
 * - the comparisons run on worker threads (bcrypt-threads.ts): the event loop keeps accepting connections;
 * - a cache of results (as exporter-toolkit keeps one): a pair once checked is answered from memory, by the
 *   SHA-256 of user, password and hash, so a scraper with the right password costs one bcrypt per restart
 *   and a repeated wrong password none; CACHE_SIZE entries each for verified and rejected pairs, oldest
 *   dropped first;
 * - at most `maxConcurrent` comparisons at once, at most `maxQueued` waiting; beyond that the request is
 *   answered 429 at once, without a comparison;
 * - an unknown user costs the same comparison as a known one (against a configured hash), so the time of the
 *   answer does not tell which user names exist.
 */
export interface BasicAuthOptions {
  maxConcurrent?: number;
  maxQueued?: number;
  /** bcrypt's compare; a test may wrap it to count calls. */
  compare?: (password: string, hash: string) => Promise<boolean>;
}

const CACHE_SIZE = 1024;

export function basicAuth(users: Map<string, string>, log: Logger, options: BasicAuthOptions = {}): RequestHandler {
  // The threads start with the first password to check: a process without basic auth never holds bcryptjs.
  const threads = new BcryptThreads();
  const compare = options.compare ?? ((password: string, hash: string) => threads.compare(password, hash));
  const maxConcurrent = options.maxConcurrent ?? 2;
  const maxQueued = options.maxQueued ?? 64;
  // The costliest configured hash stands in for unknown users (bcrypt's time depends only on the cost).
  const decoy = [...users.values()].sort((a, b) => cost(b) - cost(a))[0];
  // Two caches, so a flood of distinct wrong passwords never evicts the scrapers' verified pairs.
  const verified = new Set<string>();
  const rejected = new Set<string>();
  const limiter = new Limiter(maxConcurrent, maxQueued);

  const remember = (fingerprint: string, ok: boolean) => {
    const cache = ok ? verified : rejected;
    cache.add(fingerprint);
    if (cache.size > CACHE_SIZE) cache.delete(cache.values().next().value!);
  };

  return async (req, res, next) => {
    const credentials = parseBasic(req.headers.authorization);
    if (credentials) {
      const hash = users.get(credentials.user);
      const fingerprint = createHash('sha256').update(`${credentials.user}\0${credentials.password}\0${hash ?? ''}`).digest('hex');
      let ok = verified.has(fingerprint) ? true : rejected.has(fingerprint) ? false : undefined;
      if (ok === undefined) {
        if (!limiter.tryAcquire()) {
          log.warn({ path: req.path, remote: req.socket.remoteAddress }, 'too many password checks at once; request refused');
          res.set('Retry-After', '1').status(429).type('text/plain').send('Too Many Requests\n');
          return;
        }
        try {
          await limiter.turn();
          const matched = await compare(credentials.password, hash ?? decoy ?? '');
          ok = hash !== undefined && matched;
          remember(fingerprint, ok);
        } catch (err) {
          // The check itself failed (its thread ended): refused, and not remembered, so the pair is checked again.
          log.error({ path: req.path, error: (err as Error).message }, 'password check failed; request refused');
          ok = false;
        } finally {
          limiter.release();
        }
      }
      if (ok) {
        next();
        return;
      }
    }
    log.warn({ path: req.path, user: credentials?.user, remote: req.socket.remoteAddress }, 'unauthorized request');
    res.set('WWW-Authenticate', 'Basic realm="pgvector-exporter"').status(401).type('text/plain').send('Unauthorized\n');
  };
}

/** A counting semaphore with a bounded queue: tryAcquire() reserves a place (running or waiting). */
class Limiter {
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private reserved = 0;
  constructor(
    private readonly maxConcurrent: number,
    private readonly maxQueued: number,
  ) {}

  tryAcquire(): boolean {
    if (this.reserved >= this.maxConcurrent + this.maxQueued) return false;
    this.reserved++;
    return true;
  }

  turn(): Promise<void> {
    if (this.running < this.maxConcurrent) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(() => (this.running++, resolve())));
  }

  release(): void {
    this.reserved--;
    this.running--;
    this.waiting.shift()?.();
  }
}

function cost(hash: string): number {
  return Number(/^\$2[aby]?\$(\d{2})\$/.exec(hash)?.[1] ?? 0);
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
