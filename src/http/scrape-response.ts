import type { Request, Response } from 'express';
import type { ScrapeBody } from '../metrics/scrape-cache.js';
import { acceptsGzip } from './accept-encoding.js';

/**
 * Sends a prepared scrape body (/metrics, /probe): its cached gzip copy to a client that accepts gzip
 * (Prometheus does), else the plain text. Content-Length is set explicitly so that HEAD answers the
 * length a GET would send (Node sends no body for HEAD).
 */
export function sendScrapeBody(req: Request, res: Response, body: ScrapeBody, contentType: string): void {
  res.setHeader('Content-Type', contentType);
  res.setHeader('Vary', 'Accept-Encoding');
  const gzip = acceptsGzip(req.headers['accept-encoding']);
  const payload = gzip ? body.gzip() : body.plain;
  if (gzip) res.setHeader('Content-Encoding', 'gzip');
  res.setHeader('Content-Length', payload.length);
  res.end(req.method === 'HEAD' ? undefined : payload);
}
