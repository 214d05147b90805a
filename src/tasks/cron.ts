/**
 * Cron expressions for task schedules, evaluated in UTC.
 *
 * Hand-written because no cron package is installed here and the need is small: the next fire
 * time after an instant. Two dialects, told apart by the number of fields:
 * - 5 fields, Unix: `minute hour day-of-month month day-of-week` (day of week 0–7, 0 and 7 = Sunday);
 * - 6 or 7 fields, Quartz as Nexus writes them: `second minute hour day-of-month month
 *   day-of-week [year]` (day of week 1–7, 1 = Sunday), e.g. `0 0 1 * * ?`.
 * Each field takes `*`, `?` (day fields), numbers, names (JAN–DEC, SUN–SAT), ranges `a-b`, steps
 * `*\/n`, `a/n`, `a-b/n` and lists; day-of-month also takes `L` (the month's last day). Quartz's
 * `W`, `#` and `nL` are refused with a message rather than misread. When both day fields are
 * restricted a day matching either fires (as Vixie cron does).
 */

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  /** Names and the number each stands for. */
  names?: Record<string, number>;
}

interface Field {
  values: Set<number>;
  /** False for `*` and `?`: the field does not restrict. */
  restricted: boolean;
  lastDay?: boolean;
}

export class CronError extends Error {}

function parseField(text: string, spec: FieldSpec, opts: { question?: boolean; last?: boolean } = {}): Field {
  if (text === '*' || (opts.question && text === '?')) return { values: range(spec.min, spec.max, 1), restricted: false };
  const values = new Set<number>();
  let lastDay = false;
  for (const part of text.split(',')) {
    if (opts.last && part === 'L') {
      lastDay = true;
      continue;
    }
    // Quartz's W (nearest weekday), # (nth weekday) and nL (last weekday): refused, not misread.
    if (/#|^\d+[LW]$|^L./i.test(part)) throw new CronError(`${spec.name}: '${part}': L, W and # are not supported here`);
    const m = /^(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:\/(\d+))?$/.exec(part);
    if (!m) throw new CronError(`${spec.name}: '${part}' is not a value, range or step`);
    const step = m[2] === undefined ? 1 : Number(m[2]);
    if (step < 1) throw new CronError(`${spec.name}: the step in '${part}' must be at least 1`);
    let lo: number;
    let hi: number;
    if (m[1] === '*') [lo, hi] = [spec.min, spec.max];
    else {
      const [a, b] = m[1].split('-');
      lo = value(a, spec);
      // `a/n` runs from a to the field's end, as in both dialects.
      hi = b !== undefined ? value(b, spec) : m[2] !== undefined ? spec.max : lo;
    }
    if (lo > hi) throw new CronError(`${spec.name}: the range '${part}' runs backwards`);
    for (const v of range(lo, hi, step)) values.add(v);
  }
  return { values, restricted: true, lastDay };
}

function value(text: string, spec: FieldSpec): number {
  const named = spec.names?.[text.toUpperCase()];
  const n = named ?? (/^\d+$/.test(text) ? Number(text) : NaN);
  if (!Number.isInteger(n) || n < spec.min || n > spec.max) throw new CronError(`${spec.name}: '${text}' is not between ${spec.min} and ${spec.max}`);
  return n;
}

function range(lo: number, hi: number, step: number): Set<number> {
  const s = new Set<number>();
  for (let v = lo; v <= hi; v += step) s.add(v);
  return s;
}

const names = (list: string[], first: number) => Object.fromEntries(list.map((n, i) => [n, i + first]));

export interface Cron {
  /** The first fire time strictly after `afterMs` (epoch ms, UTC), or null when it never fires again. */
  next(afterMs: number): number | null;
}

/** Parses a 5-field (Unix) or 6/7-field (Quartz) expression; throws CronError naming the field. */
export function parseCron(expression: string): Cron {
  const parts = expression.trim().split(/\s+/);
  if (parts.length < 5 || parts.length > 7) throw new CronError(`expected 5 fields (Unix) or 6–7 fields (Quartz: seconds first), got ${parts.length}`);
  const quartz = parts.length >= 6;
  const [sec, min, hour, dom, mon, dow, year] = quartz ? parts : ['0', ...parts];
  const seconds = parseField(sec, { name: 'seconds', min: 0, max: 59 });
  const minutes = parseField(min, { name: 'minutes', min: 0, max: 59 });
  const hours = parseField(hour, { name: 'hours', min: 0, max: 23 });
  const days = parseField(dom, { name: 'day of month', min: 1, max: 31 }, { question: true, last: true });
  const months = parseField(mon, { name: 'month', min: 1, max: 12, names: names(MONTHS, 1) });
  const weekdays = quartz
    ? shift(parseField(dow, { name: 'day of week', min: 1, max: 7, names: names(DAYS, 1) }, { question: true }), -1)
    : sunday(parseField(dow, { name: 'day of week', min: 0, max: 7, names: names(DAYS, 0) }, { question: true }));
  const years = year === undefined ? null : parseField(year, { name: 'year', min: 1970, max: 2199 });

  const dayMatches = (d: Date): boolean => {
    const lastOfMonth = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
    const byDom = days.values.has(d.getUTCDate()) || (!!days.lastDay && d.getUTCDate() === lastOfMonth);
    const byDow = weekdays.values.has(d.getUTCDay());
    if (days.restricted && weekdays.restricted) return byDom || byDow;
    if (days.restricted) return byDom;
    return byDow;
  };

  return {
    next(afterMs) {
      const d = new Date(Math.floor(afterMs / 1000) * 1000 + 1000);
      const limit = d.getUTCFullYear() + 100;
      // Each step moves to the start of the next candidate unit, so this ends within a few
      // thousand steps even for expressions that never fire (31 February).
      while (d.getUTCFullYear() <= limit) {
        if (years && !years.values.has(d.getUTCFullYear())) {
          if (d.getUTCFullYear() > Math.max(...years.values)) return null;
          d.setUTCFullYear(d.getUTCFullYear() + 1, 0, 1);
          d.setUTCHours(0, 0, 0);
        } else if (!months.values.has(d.getUTCMonth() + 1)) {
          d.setUTCMonth(d.getUTCMonth() + 1, 1);
          d.setUTCHours(0, 0, 0);
        } else if (!dayMatches(d)) {
          d.setUTCDate(d.getUTCDate() + 1);
          d.setUTCHours(0, 0, 0);
        } else if (!hours.values.has(d.getUTCHours())) {
          d.setUTCHours(d.getUTCHours() + 1, 0, 0);
        } else if (!minutes.values.has(d.getUTCMinutes())) {
          d.setUTCMinutes(d.getUTCMinutes() + 1, 0);
        } else if (!seconds.values.has(d.getUTCSeconds())) {
          d.setUTCSeconds(d.getUTCSeconds() + 1);
        } else return d.getTime();
      }
      return null;
    },
  };
}

function shift(f: Field, by: number): Field {
  return { ...f, values: new Set([...f.values].map((v) => v + by)) };
}

/** Unix day of week: 7 is Sunday too. */
function sunday(f: Field): Field {
  const values = new Set([...f.values].map((v) => v % 7));
  return { ...f, values };
}
