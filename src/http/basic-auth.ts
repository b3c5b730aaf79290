import { createHash, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { RequestHandler } from 'express';
import type { Logger } from '../log.js';

/**
 * Basic auth against bcrypt hashes. bcrypt is slow on purpose (tens of ms), so a successful
 * user:password pair is remembered by its SHA-256, as exporter-toolkit does, and scrapes stay cheap.
 */
export function basicAuth(users: Map<string, string>, log: Logger): RequestHandler {
  const verified = new Set<string>();
  return async (req, res, next) => {
    const credentials = parseBasic(req.headers.authorization);
    if (credentials) {
      const hash = users.get(credentials.user);
      const fingerprint = createHash('sha256').update(`${credentials.user}\0${credentials.password}\0${hash ?? ''}`).digest('hex');
      if (hash && (verified.has(fingerprint) || (await bcrypt.compare(credentials.password, hash)))) {
        verified.add(fingerprint);
        next();
        return;
      }
    }
    log.warn({ path: req.path, user: credentials?.user, remote: req.socket.remoteAddress }, 'unauthorized request');
    res.set('WWW-Authenticate', 'Basic realm="pgvector-exporter"').status(401).type('text/plain').send('Unauthorized\n');
  };
}

function parseBasic(header: string | undefined): { user: string; password: string } | undefined {
  if (!header?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Compares secrets in constant time (different lengths compare as unequal without leaking where). */
export function secretsEqual(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}
