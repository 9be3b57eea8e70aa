// NCRONTAB schedules as the Functions timer trigger reads them (dev tool: used by src/local/host.ts only).
//
// Six fields `second minute hour day month day-of-week` (five fields = minute-first, second 0).
// Each field: `*`, `n`, `a-b`, `a,b`, `*/n`, `a-b/n`, `a/n`; months and days of week also by
// English abbreviation (Jan, Mon). Day-of-month and day-of-week must both match (NCrontab's rule,
// unlike Vixie cron's "either"). Times are UTC, the Functions default (WEBSITE_TIME_ZONE unset).

export interface CronSchedule {
  /** The expression as given. */
  readonly expression: string;
  /** The first occurrence strictly after `after` (whole seconds, UTC). */
  next(after: Date): Date;
}

export class CronSyntaxError extends Error {
  readonly code = 'NCRONTAB_SYNTAX';
  constructor(expression: string, detail: string) {
    super(`ncrontab: invalid schedule "${expression}": ${detail}`);
    this.name = 'CronSyntaxError';
  }
}

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day of week', min: 0, max: 6, names: DAYS },
];

function parseValue(text: string, spec: FieldSpec, expression: string): number {
  const lower = text.toLowerCase();
  if (spec.names) {
    const index = spec.names.indexOf(lower);
    if (index >= 0) return index + spec.min;
  }
  if (!/^\d+$/.test(text)) throw new CronSyntaxError(expression, `${spec.name} "${text}" is not a number`);
  const value = Number(text);
  if (value < spec.min || value > spec.max) {
    throw new CronSyntaxError(expression, `${spec.name} ${value} is outside ${spec.min}-${spec.max}`);
  }
  return value;
}

function parseField(text: string, spec: FieldSpec, expression: string): Set<number> {
  const values = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') throw new CronSyntaxError(expression, `empty item in ${spec.name} field "${text}"`);
    const [range, stepText, extra] = part.split('/');
    if (extra !== undefined) throw new CronSyntaxError(expression, `too many "/" in "${part}"`);
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) {
        throw new CronSyntaxError(expression, `step "${stepText}" in ${spec.name} field must be a positive integer`);
      }
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (range === '*') {
      from = spec.min;
      to = spec.max;
    } else if (range.includes('-')) {
      const [a, b, more] = range.split('-');
      if (more !== undefined || a === '' || b === '') throw new CronSyntaxError(expression, `bad range "${range}"`);
      from = parseValue(a, spec, expression);
      to = parseValue(b, spec, expression);
      if (from > to) throw new CronSyntaxError(expression, `range "${range}" in ${spec.name} field runs backwards`);
    } else {
      from = parseValue(range, spec, expression);
      // `a/n` means "from a to the end, every n"; a bare `a` is just a.
      to = stepText === undefined ? from : spec.max;
    }
    for (let v = from; v <= to; v += step) values.add(v);
  }
  return values;
}

export function parseNcrontab(expression: string): CronSchedule {
  const parts = expression.trim().split(/\s+/);
  if (parts.length === 5) parts.unshift('0');
  if (parts.length !== 6) {
    throw new CronSyntaxError(expression, `expected 6 fields (second minute hour day month day-of-week), got ${parts.length}`);
  }
  const [seconds, minutes, hours, days, months, weekdays] = parts.map((p, i) => parseField(p, FIELDS[i], expression));
  if (![...days].some((d) => [...months].some((m) => d <= daysInMonth(2024, m)))) {
    throw new CronSyntaxError(expression, 'the day and month fields never match a real date');
  }
  return {
    expression,
    next(after: Date): Date {
      // Whole seconds: start at the next second after `after`.
      const t = new Date(Math.floor(after.getTime() / 1000) * 1000 + 1000);
      // Bounded search: Feb 29 on a given weekday recurs within 28 years.
      const limit = t.getTime() + 29 * 366 * 86_400_000;
      while (t.getTime() <= limit) {
        if (!months.has(t.getUTCMonth() + 1)) {
          t.setUTCMonth(t.getUTCMonth() + 1, 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!days.has(t.getUTCDate()) || !weekdays.has(t.getUTCDay())) {
          t.setUTCDate(t.getUTCDate() + 1);
          t.setUTCHours(0, 0, 0, 0);
          continue;
        }
        if (!hours.has(t.getUTCHours())) {
          t.setUTCHours(t.getUTCHours() + 1, 0, 0, 0);
          continue;
        }
        if (!minutes.has(t.getUTCMinutes())) {
          t.setUTCMinutes(t.getUTCMinutes() + 1, 0, 0);
          continue;
        }
        if (!seconds.has(t.getUTCSeconds())) {
          t.setUTCSeconds(t.getUTCSeconds() + 1, 0);
          continue;
        }
        return new Date(t.getTime());
      }
      throw new CronSyntaxError(expression, 'no occurrence within 29 years');
    },
  };
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}
