/**
 * The next firing of a plain cron expression in UTC, computed without Intl. node-cron works out every time
 * in its task's time zone through Intl.DateTimeFormat, even for UTC, and the first DateTimeFormat maps about
 * 5 MiB of node's ICU data into the process and adds ~1.5 MiB of heap: a tenth of serve's 64 MiB budget
 * (docs/operations.md, "Memory"). The scheduler uses this for jobs in UTC (the default) whose expression is
 * plain: 5 or 6 fields of numbers, month and weekday names, `*`, ranges, steps and lists. Anything else
 * (another time zone, L, W, #, ?, @daily) goes to node-cron as before. Same meaning as node-cron's: every
 * field must match (day of month AND day of week), weekday 7 is Sunday (test/utc-cron.test.ts compares the
 * two on a list of expressions).
 */
export interface UtcCron {
  seconds: number[];
  minutes: number[];
  hours: number[];
  days: ReadonlySet<number>;
  months: ReadonlySet<number>;
  weekdays: ReadonlySet<number>;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const WEEKDAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const FULL_MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];
const FULL_WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];

interface FieldSpec {
  min: number;
  max: number;
  names?: { short: string[]; full: string[]; first: number };
}

const SECOND: FieldSpec = { min: 0, max: 59 };
const MINUTE: FieldSpec = { min: 0, max: 59 };
const HOUR: FieldSpec = { min: 0, max: 23 };
const DAY: FieldSpec = { min: 1, max: 31 };
const MONTH: FieldSpec = { min: 1, max: 12, names: { short: MONTHS, full: FULL_MONTHS, first: 1 } };
const WEEKDAY: FieldSpec = { min: 0, max: 7, names: { short: WEEKDAYS, full: FULL_WEEKDAYS, first: 0 } };

function value(text: string, spec: FieldSpec): number | undefined {
  if (/^\d{1,2}$/.test(text)) return Number(text);
  const lower = text.toLowerCase();
  for (const list of spec.names ? [spec.names.full, spec.names.short] : []) {
    const i = list.indexOf(lower);
    if (i >= 0) return i + spec.names!.first;
  }
  return undefined;
}

/** The values a field allows, or undefined when it is not plain (then node-cron decides). */
function field(text: string, spec: FieldSpec): number[] | undefined {
  const out = new Set<number>();
  for (const token of text.split(',')) {
    const match = /^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:\/(\d{1,2}))?$/i.exec(token);
    if (!match) return undefined;
    const [, range, stepText] = match;
    const step = stepText === undefined ? 1 : Number(stepText);
    let lo: number | undefined;
    let hi: number | undefined;
    if (range === '*') {
      lo = spec.min;
      hi = spec === WEEKDAY ? 6 : spec.max;
    } else {
      const [a, b] = range!.split('-');
      lo = value(a!, spec);
      hi = b === undefined ? (stepText === undefined ? lo : undefined) : value(b, spec);
    }
    if (lo === undefined || hi === undefined || step < 1 || lo < spec.min || hi > spec.max || lo > hi) return undefined;
    for (let v = lo; v <= hi; v += step) out.add(spec === WEEKDAY && v === 7 ? 0 : v);
  }
  return [...out].sort((x, y) => x - y);
}

export function parseUtcCron(expression: string): UtcCron | undefined {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) return undefined;
  const [s, m, h, dom, mon, dow] = parts.length === 6 ? parts : ['0', ...parts];
  const fields = [field(s!, SECOND), field(m!, MINUTE), field(h!, HOUR), field(dom!, DAY), field(mon!, MONTH), field(dow!, WEEKDAY)];
  if (fields.some((f) => f === undefined || f.length === 0)) return undefined;
  const [seconds, minutes, hours, days, months, weekdays] = fields as number[][];
  return { seconds: seconds!, minutes: minutes!, hours: hours!, days: new Set(days), months: new Set(months), weekdays: new Set(weekdays) };
}

/** The first firing strictly after `after` (to the second), or null when none within 5 years (31 February). */
export function nextUtcFire(cron: UtcCron, after: Date): Date | null {
  const base = Math.floor(after.getTime() / 1000) * 1000;
  const start = new Date(base);
  let day = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  for (let i = 0; i < 366 * 5; i++, day += 86_400_000) {
    const d = new Date(day);
    if (!cron.months.has(d.getUTCMonth() + 1) || !cron.days.has(d.getUTCDate()) || !cron.weekdays.has(d.getUTCDay())) continue;
    for (const hour of cron.hours) {
      for (const minute of cron.minutes) {
        const minuteStart = day + hour * 3_600_000 + minute * 60_000;
        if (minuteStart + 59_000 <= base) continue;
        for (const second of cron.seconds) {
          const t = minuteStart + second * 1000;
          if (t > base) return new Date(t);
        }
      }
    }
  }
  return null;
}
