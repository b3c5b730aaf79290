import { validate as validateCron } from 'node-cron';

/** Parsers for config values. Each returns the typed value or throws an Error whose message says what is expected. */

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** Prometheus-style durations ("500ms", "15s", "1h30m", "7d") to milliseconds. */
export function parseDuration(value: unknown): number {
  if (typeof value === 'number' && Number.isFinite(value) && value >= 0) return value * 1000;
  const text = String(value).trim();
  if (text === '0') return 0;
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`"${text}" is not a duration (expected e.g. 500ms, 15s, 5m, 1h30m, 7d)`);
  }
  return parts.reduce((total, [, amount, unit]) => total + Number(amount) * DURATION_UNITS[unit!]!, 0);
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

export function parseCron(value: unknown): string {
  const text = parseString(value).trim();
  if (!validateCron(text)) throw new Error(`"${text}" is not a valid cron expression (e.g. "0 2 * * *")`);
  return text;
}

export function parseTimezone(value: unknown): string {
  const text = parseString(value).trim();
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
