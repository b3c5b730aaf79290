/**
 * Result values as samples. node-postgres hands over int2/int4/float as numbers, int8 and numeric as
 * strings, bool, Date, arrays and null; postgres_exporter (Go, lib/pq) converts the same values with
 * dbToFloat64/dbToUint64/dbToString (cmd/postgres_exporter/util.go), which these functions follow where
 * the dialect is postgres_exporter's.
 */

/** strconv.ParseFloat's accepted decimal syntax (and inf/infinity/nan), not JavaScript's looser Number(). */
const GO_FLOAT = /^[+-]?(?:(?:\d+(?:_\d+)*)?\.?\d*(?:[eE][+-]?\d+)?|inf|infinity|nan)$/i;

function parseGoFloat(text: string): number | undefined {
  if (text === '' || !GO_FLOAT.test(text) || !/\d|inf|nan/i.test(text) || text.includes('_')) return undefined;
  const lower = text.toLowerCase();
  if (/^[+-]?inf(inity)?$/.test(lower)) return lower.startsWith('-') ? -Infinity : Infinity;
  if (/^[+-]?nan$/.test(lower)) return NaN;
  const n = Number(text);
  return Number.isNaN(n) ? undefined : n;
}

/** dbToFloat64: NULL is NaN; text that does not parse is not ok (the sample is skipped). */
export function goFloat(value: unknown): number | undefined {
  if (value === null || value === undefined) return NaN;
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return Math.floor(value.getTime() / 1000);
  if (typeof value === 'string') return parseGoFloat(value);
  if (typeof value === 'bigint') return Number(value);
  return undefined;
}

/** dbToUint64: NULL is 0; floats are truncated; text must be a whole number. */
export function goUint(value: unknown): number | undefined {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value < 0 ? undefined : Math.trunc(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return Math.floor(value.getTime() / 1000);
  if (typeof value === 'string') return /^\d+$/.test(value) ? Number(value) : undefined;
  return undefined;
}

/** dbToString: NULL is ""; a float as Go's %v writes it (1e+06); a timestamp as Unix seconds. */
export function goLabel(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return String(Math.floor(value.getTime() / 1000));
  // node-postgres cannot tell int4 1000000 from float8 1000000.0 (Go: "1e+06"): an integral number is written as an integer.
  if (typeof value === 'number') return Number.isInteger(value) && Math.abs(value) < 1e21 ? String(value) : goFloatText(value);
  if (typeof value === 'bigint') return value.toString();
  return '';
}

/** Go's %v of a float64: shortest digits, exponent form below 1e-4 and from 1e+06 up (1e+06, 1.5e-05). */
export function goFloatText(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf';
  if (value === 0) return '0';
  const [mantissa, exp] = value.toExponential().split('e') as [string, string];
  const e = Number(exp);
  if (e < -4 || e >= 6) return `${mantissa}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  return String(value);
}

const GO_DURATION_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * postgres_exporter DURATION: a Go duration string (time.ParseDuration: `1h2m3.5s`, `300ms`, `0`) in whole
 * milliseconds (Go divides by time.Millisecond, truncating); `-1` and anything else are not ok.
 */
export function goDurationMs(value: unknown): number | undefined {
  if (typeof value !== 'string') return undefined;
  if (value === '-1') return undefined;
  const m = /^([+-]?)(.*)$/.exec(value)!;
  const body = m[2]!;
  if (body === '0') return 0;
  const parts = [...body.matchAll(/(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== body || parts.some((p) => p[1] === '' || p[1] === '.')) return undefined;
  const nanos = parts.reduce((total, [, amount, unit]) => total + Number(amount) * GO_DURATION_UNITS[unit!]! * 1e6, 0);
  const ms = Math.trunc(Math.round(nanos) / 1e6);
  return m[1] === '-' ? -ms : ms;
}

/** Our own dialect: a number, or text that reads as one (int8, numeric); NULL means no sample. */
export function strictNumber(value: unknown): number | null | undefined {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime() / 1000;
  if (typeof value === 'bigint') return Number(value);
  if (typeof value === 'string') return parseGoFloat(value.trim());
  return undefined;
}

/** An array column (node-postgres parses int[], float8[], numeric[]) as numbers; undefined when it is not one. */
export function numberArray(value: unknown, parse: (v: unknown) => number | undefined): number[] | undefined {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) return undefined;
  const out: number[] = [];
  for (const item of value) {
    const n = parse(item);
    if (n === undefined) return undefined;
    out.push(n);
  }
  return out;
}
