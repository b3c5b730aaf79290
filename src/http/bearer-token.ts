import { createHash, timingSafeEqual } from 'node:crypto';
import type { Request } from 'express';

/**
 * The check of `Authorization: Bearer <token>` shared by the routes that change things (POST /jobs/<name>/run,
 * POST /-/reload). Digests of equal length are compared in constant time, so the response time says
 * nothing about the token.
 */
export function bearerCheck(token: string): (req: Request) => boolean {
  const expected = digest(token);
  return (req) => {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    return timingSafeEqual(digest(match?.[1] ?? ''), expected) && match !== null;
  };
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
