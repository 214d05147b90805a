/**
 * Task schedules, in the shape of Nexus's FrequencyXO (`schedule`, `startDate`, `recurringDays`,
 * `cronExpression`). Every next-run time is computed in UTC: the time of day of a daily, weekly
 * or monthly schedule is the UTC time of day of its `startDate`, and weekly/monthly days are UTC
 * days (`timeZoneOffset` is accepted and ignored).
 */
import { badRequest } from '../errors.js';
import { CronError, parseCron } from './cron.js';

const HOUR_MS = 3600_000;
const DAY_MS = 24 * HOUR_MS;
/** Nexus's "last day of the month" in monthly `recurringDays`. */
const LAST_DAY = 999;

export type Schedule =
  | { kind: 'manual' }
  | { kind: 'once'; startDate: number }
  | { kind: 'hourly' | 'daily'; startDate: number }
  /** days: 1–7, 1 = Sunday (Nexus). */
  | { kind: 'weekly'; startDate: number; days: number[] }
  /** days: 1–31, 999 = the last day of the month. */
  | { kind: 'monthly'; startDate: number; days: number[] }
  | { kind: 'cron'; cronExpression: string }
  /** Stowage's own: the built-in defaults (e.g. `STOWAGE_BLOB_GC_INTERVAL`); not offered for create. */
  | { kind: 'interval'; seconds: number };

export const SCHEDULE_KINDS = ['manual', 'once', 'hourly', 'daily', 'weekly', 'monthly', 'cron'] as const;

const field = (name: string) => `frequency.${name}`;
const bad = (name: string, message: string) => badRequest(`${field(name)}: ${message}`, { field: field(name) });

/** Epoch ms from a FrequencyXO `startDate`: epoch milliseconds, epoch seconds (below 10^11) or an ISO 8601 string. */
function instant(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v)) return v < 1e11 ? v * 1000 : v;
  if (typeof v === 'string' && /^\d+$/.test(v)) return instant(Number(v));
  if (typeof v === 'string') {
    const t = Date.parse(v);
    if (Number.isFinite(t)) return t;
  }
  throw bad('startDate', `expected epoch milliseconds or an ISO 8601 date-time, got ${JSON.stringify(v)}`);
}

function days(v: unknown, min: number, max: number, extra?: number): number[] {
  if (!Array.isArray(v) || v.length === 0) throw bad('recurringDays', `a non-empty list of days (${min}–${max}${extra ? ` or ${extra}` : ''}) is required`);
  const out = v.map((d) => (typeof d === 'string' && /^\d+$/.test(d) ? Number(d) : d));
  for (const d of out) {
    if (!Number.isInteger(d) || ((d < min || d > max) && d !== extra))
      throw bad('recurringDays', `${JSON.stringify(d)} is not a day between ${min} and ${max}${extra ? ` (or ${extra})` : ''}`);
  }
  return [...new Set(out as number[])].sort((a, b) => a - b);
}

/** Validates a FrequencyXO body; a 400 names the field. `now` decides whether a `once` start lies in the future. */
export function parseFrequency(body: unknown, now: number): Schedule {
  if (body === undefined || body === null) return { kind: 'manual' };
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('frequency: expected an object', { field: 'frequency' });
  const f = body as Record<string, unknown>;
  const kind = f.schedule ?? 'manual';
  if (typeof kind !== 'string' || !(SCHEDULE_KINDS as readonly string[]).includes(kind === 'advanced' ? 'cron' : kind)) {
    throw bad('schedule', `expected one of ${SCHEDULE_KINDS.join(', ')}, got ${JSON.stringify(kind)}`);
  }
  const start = () => (f.startDate === undefined || f.startDate === null || f.startDate === '' ? now : instant(f.startDate));
  switch (kind) {
    case 'manual':
      return { kind };
    case 'once': {
      if (f.startDate === undefined || f.startDate === null || f.startDate === '') throw bad('startDate', 'required for a once schedule');
      const startDate = start();
      if (startDate <= now) throw bad('startDate', `${new Date(startDate).toISOString()} is not in the future`);
      return { kind, startDate };
    }
    case 'hourly':
    case 'daily':
      return { kind, startDate: start() };
    case 'weekly':
      return { kind, startDate: start(), days: days(f.recurringDays, 1, 7) };
    case 'monthly':
      return { kind, startDate: start(), days: days(f.recurringDays, 1, 31, LAST_DAY) };
    default: {
      const expr = f.cronExpression;
      if (typeof expr !== 'string' || expr.trim() === '') throw bad('cronExpression', 'required for a cron schedule');
      try {
        if (parseCron(expr).next(now) === null) throw new CronError('it never fires after now');
      } catch (e) {
        if (e instanceof CronError) throw bad('cronExpression', `'${expr}': ${e.message}`);
        throw e;
      }
      return { kind: 'cron', cronExpression: expr.trim() };
    }
  }
}

/** The FrequencyXO of a schedule (startDate in epoch milliseconds). */
export function frequencyXO(s: Schedule): Record<string, unknown> {
  switch (s.kind) {
    case 'manual':
      return { schedule: 'manual' };
    case 'once':
    case 'hourly':
    case 'daily':
      return { schedule: s.kind, startDate: s.startDate, timeZoneOffset: '+00:00' };
    case 'weekly':
    case 'monthly':
      return { schedule: s.kind, startDate: s.startDate, timeZoneOffset: '+00:00', recurringDays: s.days };
    case 'cron':
      return { schedule: 'cron', cronExpression: s.cronExpression };
    case 'interval':
      return { schedule: 'interval', intervalSeconds: s.seconds };
  }
}

/** The first run strictly after `after` (epoch ms), or null (manual; a once that has passed). */
export function nextRun(s: Schedule, after: number): number | null {
  switch (s.kind) {
    case 'manual':
      return null;
    case 'once':
      return s.startDate > after ? s.startDate : null;
    case 'interval':
      return s.seconds > 0 ? after + s.seconds * 1000 : null;
    case 'hourly':
    case 'daily': {
      const period = s.kind === 'hourly' ? HOUR_MS : DAY_MS;
      if (after < s.startDate) return s.startDate;
      return s.startDate + (Math.floor((after - s.startDate) / period) + 1) * period;
    }
    case 'weekly':
    case 'monthly': {
      const timeOfDay = ((s.startDate % DAY_MS) + DAY_MS) % DAY_MS;
      const from = Math.max(after, s.startDate - 1);
      const firstDay = Math.floor(from / DAY_MS) * DAY_MS;
      // 31 March → the next month with a 31st is at most 62 days away; a year covers every case.
      for (let day = firstDay; day <= firstDay + 366 * DAY_MS; day += DAY_MS) {
        const t = day + timeOfDay;
        if (t <= from) continue;
        const d = new Date(day);
        if (s.kind === 'weekly' ? s.days.includes(d.getUTCDay() + 1) : monthDayMatches(d, s.days)) return t;
      }
      return null;
    }
    case 'cron':
      return parseCron(s.cronExpression).next(after);
  }
}

function monthDayMatches(d: Date, list: number[]): boolean {
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  return list.includes(d.getUTCDate()) || (list.includes(LAST_DAY) && d.getUTCDate() === last);
}

/** A stored schedule (JSON column), or the legacy interval of rows written before schedules existed. */
export function storedSchedule(json: unknown, intervalSeconds: number): Schedule {
  if (typeof json === 'string' && json !== '') return JSON.parse(json) as Schedule;
  return intervalSeconds > 0 ? { kind: 'interval', seconds: intervalSeconds } : { kind: 'manual' };
}
