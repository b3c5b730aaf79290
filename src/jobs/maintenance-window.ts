/**
 * The optional maintenance window: scheduled runs outside it are skipped (manual runs are not: an
 * operator who asks for a run gets it). "HH:MM" in the window's time zone; a window whose end is before
 * its start spans midnight (22:00-04:00). Start is inclusive, end exclusive.
 */
export interface MaintenanceWindow {
  start?: string;
  end?: string;
  timezone: string;
}

export function isWindowConfigured(window: MaintenanceWindow): window is Required<MaintenanceWindow> {
  return Boolean(window.start && window.end);
}

/** undefined when `at` is inside the window (or there is none), else why not. */
export function outsideWindow(window: MaintenanceWindow, at: Date): string | undefined {
  if (!isWindowConfigured(window)) return undefined;
  const [hour, minute] = window.timezone === 'UTC' ? [at.getUTCHours(), at.getUTCMinutes()] : zonedHourMinute(window.timezone, at);
  const now = hour * 60 + minute;
  const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
  const start = toMinutes(window.start);
  const end = toMinutes(window.end);
  const inside = start <= end ? now >= start && now < end : now >= start || now < end;
  if (inside) return undefined;
  const local = `${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')}`;
  return `outside the maintenance window ${window.start}-${window.end} ${window.timezone} (it is ${local} there)`;
}

/** Hour and minute of `at` in a time zone other than UTC (Intl: ICU's data, which UTC does without). */
function zonedHourMinute(timezone: string, at: Date): [number, number] {
  const parts = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).formatToParts(at);
  return [Number(parts.find((p) => p.type === 'hour')!.value), Number(parts.find((p) => p.type === 'minute')!.value)];
}
