import cron from 'node-cron';
import { describe, expect, it } from 'vitest';
import { nextUtcFire, parseUtcCron } from '../src/jobs/utc-cron.js';

/** node-cron is the reference: the scheduler's own UTC timer must fire when node-cron would. */
function nodeCronNext(expression: string, count: number): Date[] {
  const task = cron.createTask(expression, () => undefined, { timezone: 'UTC' });
  try {
    return task.getNextRuns(count);
  } finally {
    void task.destroy();
  }
}

const PLAIN = [
  '0 2 * * *',
  '30 1 * * *',
  '0 3 * * 0',
  '0 3 * * 7',
  '0 4 1 * *',
  '*/15 * * * *',
  '* * * * * *',
  '*/10 * * * * *',
  '5,35 */2 * * *',
  '0 0 29 2 *',
  '0 12 * * mon-fri',
  '0 12 * * MON,wed,Fri',
  '0 6 1-7 * 1',
  '15 22 * jan,jul *',
  '0 0 31 * *',
  '0 9-17/4 * * 1-5',
  '0 0 * * 5-7',
  '0 0 13 * 5',
  '30 2 * * sunday',
  '0 0 1 january *',
];

describe('utc-cron', () => {
  it.each(PLAIN)('%s: the next five firings are node-cron\'s', (expression) => {
    const parsed = parseUtcCron(expression);
    expect(parsed, expression).toBeDefined();
    let expected: string[] = [];
    const ours: string[] = [];
    // node-cron counts from now; so do we (the same second, unless the test straddles one: then both again).
    for (let attempt = 0; attempt < 2; attempt++) {
      expected = nodeCronNext(expression, 5).map((d) => d.toISOString());
      ours.length = 0;
      let after = new Date();
      for (let i = 0; i < 5; i++) {
        const next = nextUtcFire(parsed!, after)!;
        ours.push(next.toISOString());
        after = next;
      }
      if (ours.join() === expected.join()) break;
    }
    expect(ours).toEqual(expected);
  });

  it('expressions it does not handle are left to node-cron', () => {
    for (const expression of ['@daily', '0 0 L * *', '0 0 15W * *', '0 0 * * 5#3', '0 0 * * 5L', '5/15 * * * *', '0 0 * *', '1 2 3 4 5 6 7', '0 25 * * *', '0 0 5-1 * *', '0 0 ? * *']) {
      expect(parseUtcCron(expression), expression).toBeUndefined();
    }
  });

  it('a date that never comes is null, not a hang', () => {
    expect(nextUtcFire(parseUtcCron('0 0 31 2 *')!, new Date())).toBeNull();
  });

  it('counts strictly after the given instant, to the second', () => {
    const every = parseUtcCron('0 2 * * *')!;
    expect(nextUtcFire(every, new Date('2026-03-01T02:00:00.000Z'))!.toISOString()).toBe('2026-03-02T02:00:00.000Z');
    expect(nextUtcFire(every, new Date('2026-03-01T01:59:59.999Z'))!.toISOString()).toBe('2026-03-01T02:00:00.000Z');
    expect(nextUtcFire(every, new Date('2026-12-31T23:00:00.000Z'))!.toISOString()).toBe('2027-01-01T02:00:00.000Z');
  });
});
