import { validate as validateCron } from 'node-cron';

/** Parsers for config values. Each returns the typed value or throws an Error whose message says what is expected. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/**
 * The longest delay a Node.js timer takes (2^31-1 ms, about 24.8 days): setTimeout with more fires at
 * once (TimeoutOverflowWarning), which turned a 30-day interval into a tight polling loop. It is also the
 * largest statement_timeout/lock_timeout PostgreSQL accepts (an int of milliseconds).
 */
export const MAX_TIMER_MS = 2_147_483_647;

/** Durations that are never timers (retention ages compared in SQL): up to 100 years. */
export const MAX_AGE_MS = 100 * 365 * 86_400_000;

/** Prometheus-style durations ("500ms", "15s", "1h30m", "7d") to milliseconds, at most MAX_TIMER_MS. */
export function parseDuration(value: unknown): number {
  return parseDurationIn(value, 0, MAX_TIMER_MS);
}

/** A duration within [minMs, maxMs]; the message names the bound in the units the user wrote. */
export function parseDurationIn(value: unknown, minMs: number, maxMs: number): number {
  const ms = parseAnyDuration(value);
  if (ms < minMs) throw new Error(`"${String(value)}" must be ${minMs === 0 ? 'at least 0' : minMs <= 1 ? 'longer than 0' : `at least ${formatDuration(minMs)}`}`);
  if (ms > maxMs) throw new Error(`"${String(value)}" is longer than the maximum ${formatDuration(maxMs)}${maxMs === MAX_TIMER_MS ? ' (the longest timer Node.js and PostgreSQL take)' : ''}`);
  return ms;
}

function formatDuration(ms: number): string {
  if (ms === MAX_TIMER_MS) return '24d20h31m23s';
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

function parseAnyDuration(value: unknown): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new Error(`"${String(value)}" is not a duration (expected e.g. 500ms, 15s, 5m, 1h30m, 7d)`);
    return value * 1000;
  }
  const text = String(value).trim();
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`"${text}" is not a duration (expected e.g. 500ms, 15s, 5m, 1h30m, 7d)`);
  }
  const ms = parts.reduce((total, [, amount, unit]) => total + Number(amount) * DURATION_UNITS[unit!]!, 0);
  if (!Number.isFinite(ms)) throw new Error(`"${text}" is not a finite duration`);
  return ms;
}

export function parseInteger(value: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`"${String(value)}" is not a whole number from ${min} to ${max}`);
  return n;
}

export function parseNumber(value: unknown, min = -Infinity, max = Infinity): number {
  const n = typeof value === 'number' ? value : Number(String(value).trim());
  if (String(value).trim() === '' || !Number.isFinite(n) || n < min || n > max) {
    throw new Error(`"${String(value)}" is not a number from ${min} to ${max}`);
  }
  return n;
}

export function parseBoolean(value: unknown): boolean {
  if (typeof value === 'boolean') return value;
  const text = String(value).trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(text)) return true;
  if (['false', '0', 'no', 'off'].includes(text)) return false;
  throw new Error(`"${String(value)}" is not a boolean (true or false)`);
}

export function parseString(value: unknown): string {
  if (value === null || value === undefined || typeof value === 'object') throw new Error('expected a string');
  return String(value);
}

/** A list from YAML (a sequence) or from a flag/variable (comma-separated). */
export function parseStringList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map((item) => parseString(item).trim()).filter(Boolean);
  return parseString(value)
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean);
}

export function parseNumberList(value: unknown): number[] {
  const list = Array.isArray(value) ? value : parseStringList(value);
  return list.map((item) => parseNumber(item, 0));
}

/** Histogram bucket bounds: 1 to 100 finite numbers above 0, strictly increasing. */
export function parseBuckets(value: unknown): number[] {
  const list = parseNumberList(value);
  if (list.length === 0) throw new Error('expected at least one bucket upper bound (seconds)');
  if (list.length > 100) throw new Error(`${list.length} buckets is more than 100`);
  list.forEach((bound, i) => {
    if (bound <= 0) throw new Error(`bucket ${bound} must be above 0`);
    if (i > 0 && bound <= list[i - 1]!) throw new Error(`buckets must increase (${list[i - 1]} then ${bound})`);
  });
  return list;
}

/** An HTTP path: starts with "/", no query, fragment, whitespace or "..", at most 200 characters. */
export function parseHttpPath(value: unknown): string {
  const text = parseString(value).trim();
  if (!/^\/[A-Za-z0-9\-._~!$&'()*+,;=:@/%]{0,199}$/.test(text) || text.split('/').includes('..')) {
    throw new Error(`"${text}" is not a path (expected e.g. /metrics: a leading "/", no query or spaces)`);
  }
  return text;
}

export function parseCron(value: unknown): string {
  const text = parseString(value).trim();
  if (!validateCron(text)) throw new Error(`"${text}" is not a valid cron expression (e.g. "0 2 * * *")`);
  return text;
}

export function parseTimezone(value: unknown): string {
  const text = parseString(value).trim();
  // UTC (the default) needs no check, and Intl would map ICU's data into serve (jobs/utc-cron.ts says why).
  if (text === 'UTC') return text;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: text });
  } catch {
    throw new Error(`"${text}" is not a known IANA time zone (e.g. UTC, Europe/Berlin)`);
  }
  return text;
}

/** host:port, ":port" (all interfaces) or "[::1]:port". */
export function parseListenAddress(value: unknown): string {
  const text = parseString(value).trim();
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]*):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw new Error(`"${text}" is not a listen address (expected host:port or :port)`);
  return text;
}

/** "HH:MM" in 24-hour time, for maintenance windows. */
export function parseTimeOfDay(value: unknown): string {
  const text = parseString(value).trim();
  if (!/^([01]\d|2[0-3]):[0-5]\d$/.test(text)) throw new Error(`"${text}" is not a time of day (expected HH:MM)`);
  return text;
}

export function parseEnum<T extends string>(allowed: readonly T[]) {
  return (value: unknown): T => {
    const text = parseString(value).trim() as T;
    if (!allowed.includes(text)) throw new Error(`"${text}" is not one of ${allowed.join(', ')}`);
    return text;
  };
}

/**
 * A bad value inside a structured setting (a mapping such as auth_modules): `path` leads from the
 * setting's key to the offending key, so the loader can name file:line:key of that very key.
 */
export class NestedValueError extends Error {
  constructor(
    message: string,
    readonly path: readonly string[],
  ) {
    super(message);
    this.name = 'NestedValueError';
  }
}
