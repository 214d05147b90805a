/**
 * Cron expressions (Unix 5-field and Quartz 6/7-field) and the Nexus schedules built on them:
 * next fire times in UTC from fixtures, and the errors that name the field.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CronError, parseCron } from '../../src/tasks/cron.js';
import { nextRun, parseFrequency, type Schedule } from '../../src/tasks/schedule.js';
import { AppError } from '../../src/errors.js';

const t = (s: string) => Date.parse(s);
const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

/** [expression, after, the next fire times in order] */
const CASES: Array<[string, string, string[]]> = [
  // Nexus's own example: 01:00:00 every day.
  ['0 0 1 * * ?', '2026-12-01T00:59:59Z', ['2026-12-01T01:00:00.000Z', '2026-12-02T01:00:00.000Z']],
  ['0 0 1 * * ?', '2026-12-01T01:00:00Z', ['2026-12-02T01:00:00.000Z']],
  // Unix: every 15 minutes.
  ['*/15 * * * *', '2026-12-01T10:07:30Z', ['2026-12-01T10:15:00.000Z', '2026-12-01T10:30:00.000Z', '2026-12-01T10:45:00.000Z', '2026-12-01T11:00:00.000Z']],
  // Quartz seconds.
  ['*/20 * * * * ?', '2026-12-01T10:00:05Z', ['2026-12-01T10:00:20.000Z', '2026-12-01T10:00:40.000Z', '2026-12-01T10:01:00.000Z']],
  // Unix Sunday as 0 and as 7; Quartz Sunday as 1 and as SUN (2026-12-06 is a Sunday).
  ['30 2 * * 0', '2026-12-01T00:00:00Z', ['2026-12-06T02:30:00.000Z', '2026-12-13T02:30:00.000Z']],
  ['30 2 * * 7', '2026-12-01T00:00:00Z', ['2026-12-06T02:30:00.000Z']],
  ['0 30 2 ? * 1', '2026-12-01T00:00:00Z', ['2026-12-06T02:30:00.000Z']],
  ['0 30 2 ? * SUN', '2026-12-01T00:00:00Z', ['2026-12-06T02:30:00.000Z']],
  // Ranges and lists of weekdays: Monday to Friday at 18:00.
  ['0 18 * * MON-FRI', '2026-12-04T18:00:00Z', ['2026-12-07T18:00:00.000Z', '2026-12-08T18:00:00.000Z']],
  // Month names, day of month; 31 skips the months without one.
  ['0 0 31 * *', '2026-12-01T00:00:00Z', ['2026-12-31T00:00:00.000Z', '2027-01-31T00:00:00.000Z', '2027-03-31T00:00:00.000Z']],
  ['0 12 1 JAN,JUL *', '2026-12-01T00:00:00Z', ['2027-01-01T12:00:00.000Z', '2027-07-01T12:00:00.000Z']],
  // Last day of the month (Quartz L), across a leap February.
  ['0 0 23 L * ?', '2028-01-31T23:00:00Z', ['2028-02-29T23:00:00.000Z', '2028-03-31T23:00:00.000Z']],
  // Both day fields restricted: either matches (1st of the month, or Fridays).
  ['0 9 1 * 5', '2026-12-01T09:00:00Z', ['2026-12-04T09:00:00.000Z', '2026-12-11T09:00:00.000Z']],
  // Step from a start: minutes 5, 25, 45.
  ['5/20 * * * *', '2026-12-01T10:06:00Z', ['2026-12-01T10:25:00.000Z', '2026-12-01T10:45:00.000Z', '2026-12-01T11:05:00.000Z']],
  // Quartz year field.
  ['0 0 0 1 1 ? 2028', '2026-12-01T00:00:00Z', ['2028-01-01T00:00:00.000Z']],
];

describe('cron expressions', () => {
  for (const [expr, after, expected] of CASES) {
    it(`${expr} after ${after}`, () => {
      const cron = parseCron(expr);
      let from = t(after);
      for (const want of expected) {
        const next = cron.next(from);
        assert.equal(at(next), want);
        from = next!;
      }
    });
  }

  it('never fires: 30 February, a year passed', () => {
    assert.equal(parseCron('0 0 30 2 *').next(t('2026-12-01T00:00:00Z')), null);
    assert.equal(parseCron('0 0 0 1 1 ? 2020').next(t('2026-12-01T00:00:00Z')), null);
  });

  const BAD: Array<[string, RegExp]> = [
    ['* * * *', /expected 5 fields/],
    ['60 * * * *', /minutes: '60' is not between 0 and 59/],
    ['0 25 * * *', /hours: '25'/],
    ['0 0 0 * * 8', /day of week: '8'/],
    ['0 0 * FOO *', /month: 'FOO'/],
    ['0 0 15W * ?', /L, W and # are not supported/],
    ['0 0 ? * 6#3', /L, W and # are not supported/],
    ['*/0 * * * *', /step/],
    ['5-1 * * * *', /backwards/],
  ];
  for (const [expr, message] of BAD) {
    it(`refuses ${expr}`, () =>
      assert.throws(
        () => parseCron(expr),
        (e: Error) => e instanceof CronError && message.test(e.message),
      ));
  }
});

describe('schedules (UTC)', () => {
  const now = t('2026-12-01T12:00:00Z');
  const next = (s: Schedule, after: string) => at(nextRun(s, t(after)));

  it('manual never runs by itself; once runs at its start only', () => {
    assert.equal(nextRun({ kind: 'manual' }, now), null);
    const once = parseFrequency({ schedule: 'once', startDate: t('2026-12-02T08:00:00Z') }, now);
    assert.equal(next(once, '2026-12-01T12:00:00Z'), '2026-12-02T08:00:00.000Z');
    assert.equal(next(once, '2026-12-02T08:00:00Z'), null);
  });

  it('hourly and daily keep the start time of day', () => {
    const hourly = parseFrequency({ schedule: 'hourly', startDate: '2026-12-01T10:20:00Z' }, now);
    assert.equal(next(hourly, '2026-12-01T12:00:00Z'), '2026-12-01T12:20:00.000Z');
    assert.equal(next(hourly, '2026-12-01T12:20:00Z'), '2026-12-01T13:20:00.000Z');
    const daily = parseFrequency({ schedule: 'daily', startDate: t('2026-12-03T02:00:00Z') / 1000 }, now);
    assert.equal(next(daily, '2026-12-01T12:00:00Z'), '2026-12-03T02:00:00.000Z');
    assert.equal(next(daily, '2026-12-03T02:00:00Z'), '2026-12-04T02:00:00.000Z');
  });

  it('weekly on Nexus days (1 = Sunday), monthly with 999 = last day', () => {
    // 2026-12-01 is a Tuesday.
    const weekly = parseFrequency({ schedule: 'weekly', startDate: '2026-11-01T03:00:00Z', recurringDays: [2, 7] }, now);
    assert.equal(next(weekly, '2026-12-01T12:00:00Z'), '2026-12-05T03:00:00.000Z');
    assert.equal(next(weekly, '2026-12-05T03:00:00Z'), '2026-12-07T03:00:00.000Z');
    const monthly = parseFrequency({ schedule: 'monthly', startDate: '2026-11-01T04:00:00Z', recurringDays: ['15', 999] }, now);
    assert.equal(next(monthly, '2026-12-01T12:00:00Z'), '2026-12-15T04:00:00.000Z');
    assert.equal(next(monthly, '2026-12-15T04:00:00Z'), '2026-12-31T04:00:00.000Z');
    assert.equal(next(monthly, '2027-02-15T04:00:00Z'), '2027-02-28T04:00:00.000Z');
  });

  it('cron, including Nexus "advanced"', () => {
    const cron = parseFrequency({ schedule: 'cron', cronExpression: '0 0 1 * * ?' }, now);
    assert.equal(next(cron, '2026-12-01T12:00:00Z'), '2026-12-02T01:00:00.000Z');
    assert.deepEqual(parseFrequency({ schedule: 'advanced', cronExpression: '0 * * * *' }, now), { kind: 'cron', cronExpression: '0 * * * *' });
  });

  const BAD: Array<[unknown, string]> = [
    [{ schedule: 'sometimes' }, 'frequency.schedule'],
    [{ schedule: 'once' }, 'frequency.startDate'],
    [{ schedule: 'once', startDate: '2020-01-01T00:00:00Z' }, 'frequency.startDate'],
    [{ schedule: 'daily', startDate: 'tomorrow' }, 'frequency.startDate'],
    [{ schedule: 'weekly', recurringDays: [] }, 'frequency.recurringDays'],
    [{ schedule: 'weekly', recurringDays: [8] }, 'frequency.recurringDays'],
    [{ schedule: 'monthly', recurringDays: [32] }, 'frequency.recurringDays'],
    [{ schedule: 'cron' }, 'frequency.cronExpression'],
    [{ schedule: 'cron', cronExpression: '0 0 30 2 *' }, 'frequency.cronExpression'],
    [{ schedule: 'cron', cronExpression: 'every day' }, 'frequency.cronExpression'],
  ];
  for (const [body, fieldName] of BAD) {
    it(`refuses ${JSON.stringify(body)} naming ${fieldName}`, () =>
      assert.throws(
        () => parseFrequency(body, now),
        (e: Error) => e instanceof AppError && e.status === 400 && e.detail?.field === fieldName && e.message.startsWith(fieldName),
      ));
  }
});
