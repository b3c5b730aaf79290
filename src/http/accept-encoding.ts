/**
 * Whether an Accept-Encoding header allows gzip (RFC 9110 section 12.5.3): an explicit gzip (or x-gzip) with a
 * q-value above 0, or, when gzip is not named, "*" with a q-value above 0. "gzip;q=0" refuses it even
 * beside "*"; no header means identity only, as Prometheus' and curl's defaults expect.
 */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let gzip: number | undefined;
  let any: number | undefined;
  for (const part of header.split(',')) {
    const [coding = '', ...params] = part.trim().toLowerCase().split(';');
    const qParam = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    const q = qParam === undefined ? 1 : Number(qParam.slice(2));
    const quality = Number.isFinite(q) ? q : 0;
    if (coding.trim() === 'gzip' || coding.trim() === 'x-gzip') gzip = Math.max(gzip ?? 0, quality);
    else if (coding.trim() === '*') any = quality;
  }
  return gzip !== undefined ? gzip > 0 : (any ?? 0) > 0;
}
