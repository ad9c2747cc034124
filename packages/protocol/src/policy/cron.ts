/**
 * Five-field cron expressions (minute hour day-of-month month day-of-week) and calendar
 * words, parsed by hand so that every mistake gets a message naming the field and its
 * range: `"0 1 * * 8": day-of-week must be 0-7 or SUN-SAT; got "8"`.
 *
 * Syntax per field: `*`, a value, `a-b`, `*\/n`, `a-b/n`, `a/n` (a to the field's maximum,
 * every n), and comma lists of these. Months take JAN-DEC, days of week SUN-SAT (any
 * case); 0 and 7 are both Sunday. No seconds field, no Quartz `?`, `L`, `W`, `#`.
 */

import type { ErrorCode } from '@hoard/errors';

export type CronFieldName = 'minute' | 'hour' | 'day-of-month' | 'month' | 'day-of-week';

/** The values a cron expression allows, each list sorted and without duplicates. */
export interface CronFields {
  minutes: number[];
  hours: number[];
  daysOfMonth: number[];
  months: number[];
  /** 0 = Sunday ... 6 = Saturday (7 folded into 0). */
  daysOfWeek: number[];
  /**
   * Which fields were written as something other than a bare `*`. When both day fields
   * are restricted a day matches if either matches (the POSIX/Vixie rule); the hour flag
   * decides the fall-back rule (docs/policies.md#time-zones-and-dst).
   */
  restricted: { minute: boolean; hour: boolean; dayOfMonth: boolean; month: boolean; dayOfWeek: boolean };
}

/** Calendar words and the cron expressions they stand for. */
export const CALENDAR_WORDS: Readonly<Record<string, string>> = Object.freeze({
  hourly: '0 * * * *',
  daily: '0 0 * * *',
  weekly: '0 0 * * 0',
  monthly: '0 0 1 * *',
  yearly: '0 0 1 1 *',
  annually: '0 0 1 1 *',
});

/**
 * A schedule that does not parse: a cron expression, a calendar word or a time zone.
 * `field` names the culprit when there is one.
 */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
  readonly code: ErrorCode = 'invalid_schedule';
  constructor(
    message: string,
    /** The expression (or time zone) as given. */
    readonly expression: string,
    readonly field?: CronFieldName | 'timezone',
  ) {
    super(message);
  }
}

interface FieldSpec {
  name: CronFieldName;
  min: number;
  max: number;
  names?: readonly string[];
  namesHint?: string;
}

const MONTH_NAMES = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'] as const;
const DAY_NAMES = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'] as const;
const MONTH_LONG = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

const FIELDS: readonly FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day-of-month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, namesHint: ' or JAN-DEC' },
  { name: 'day-of-week', min: 0, max: 7, names: DAY_NAMES, namesHint: ' or SUN-SAT' },
];

/** Days in each month, February counted as 29 (it has a 29th in leap years). */
const MAX_DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

const SYNTAX = 'minute hour day-of-month month day-of-week, e.g. "0 1 * * 1-6"';

/** The cron expression a calendar word stands for, or undefined. Accepts `daily` and `@daily`, any case. */
export function calendarWord(text: string): string | undefined {
  const word = text.trim().toLowerCase().replace(/^@/, '');
  return Object.hasOwn(CALENDAR_WORDS, word) ? CALENDAR_WORDS[word] : undefined;
}

/**
 * Parses a five-field cron expression (not a calendar word: see parseScheduleExpression).
 * Throws ScheduleError. Rejects expressions that can never fire (`0 0 30 2 *`).
 */
export function parseCron(expression: string): CronFields {
  const expr = typeof expression === 'string' ? expression.trim() : '';
  const quoted = JSON.stringify(expr);
  const fail = (message: string, field?: CronFieldName): never => {
    throw new ScheduleError(`${quoted}: ${message}`, expr, field);
  };
  if (typeof expression !== 'string' || expr === '') {
    throw new ScheduleError(
      `a schedule must be a cron expression (${SYNTAX}) or one of ${Object.keys(CALENDAR_WORDS).join(', ')}; got ${JSON.stringify(expression)}`,
      String(expression),
    );
  }
  const parts = expr.split(/\s+/);
  if (parts.length !== 5) {
    if (parts.length === 6 && parts.every((p) => /^[\d*/,\-A-Za-z?]+$/.test(p))) {
      fail(`has 6 fields; hoard schedules have minute resolution, so write the 5 fields ${SYNTAX} (no seconds field)`);
    }
    if (parts.length === 1 && /^@?[a-z]+$/i.test(expr)) {
      fail(`is not a calendar word; use one of ${Object.keys(CALENDAR_WORDS).join(', ')} or a cron expression (${SYNTAX})`);
    }
    fail(`a cron expression has 5 fields (${SYNTAX}); got ${parts.length}`);
  }
  const values = parts.map((text, i) => parseField(text, FIELDS[i], fail));
  const fields: CronFields = {
    minutes: values[0],
    hours: values[1],
    daysOfMonth: values[2],
    months: values[3],
    daysOfWeek: [...new Set(values[4].map((d) => d % 7))].sort((a, b) => a - b),
    restricted: {
      minute: parts[0] !== '*',
      hour: parts[1] !== '*',
      dayOfMonth: parts[2] !== '*',
      month: parts[3] !== '*',
      dayOfWeek: parts[4] !== '*',
    },
  };
  // Only a day-of-month restriction without a day-of-week one can rule out every day.
  if (fields.restricted.dayOfMonth && !fields.restricted.dayOfWeek) {
    const possible = fields.months.some((m) => fields.daysOfMonth.some((d) => d <= MAX_DAYS[m - 1]));
    if (!possible) {
      const months = fields.months.map((m) => MONTH_LONG[m - 1]);
      const days = compactList(fields.daysOfMonth);
      fail(`never fires: ${months.length === 1 ? `${months[0]} has no day ${days}` : `none of ${months.join(', ')} has a day ${days}`}`, 'day-of-month');
    }
  }
  return fields;
}

function compactList(values: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[j] + 1) j++;
    out.push(j > i ? `${values[i]}-${values[j]}` : String(values[i]));
    i = j + 1;
  }
  return out.join(',');
}

function parseField(text: string, spec: FieldSpec, fail: (message: string, field?: CronFieldName) => never): number[] {
  const { name, min, max } = spec;
  const range = `${min}-${max}${spec.namesHint ?? ''}`;
  const bad = (message: string): never => fail(`${name} ${message}`, name);
  if (text.includes('?')) bad(`"${text}": "?" is Quartz syntax; write * instead`);
  for (const item of text.split(',')) {
    if (item.includes('#') || /^(\d*L|L(-\d+)?|\d+W|LW)$/i.test(item)) bad(`"${item}": the Quartz forms L, W and # are not supported; list the days instead`);
  }
  const value = (token: string): number => {
    if (/^\d+$/.test(token)) {
      const n = Number(token);
      if (n < min || n > max) bad(`must be ${range}; got "${token}"`);
      return n;
    }
    if (spec.names) {
      const i = spec.names.indexOf(token.toUpperCase());
      if (i >= 0) return spec.name === 'month' ? i + 1 : i;
      if (/^[A-Za-z]{3,}$/.test(token)) {
        const prefix = spec.names.indexOf(token.slice(0, 3).toUpperCase());
        if (prefix >= 0) bad(`"${token}": names are three letters; write ${spec.names[prefix]}`);
      }
    }
    return bad(`must be ${range}; got "${token}"`);
  };
  const out = new Set<number>();
  for (const item of text.split(',')) {
    if (item === '') bad(`"${text}" has an empty list item`);
    const slash = item.split('/');
    if (slash.length > 2) bad(`"${item}" has more than one "/"`);
    const [base, stepText] = slash;
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) === 0) bad(`step in "${item}" must be a positive whole number; got "${stepText}"`);
      step = Number(stepText);
      const span = spec.name === 'day-of-week' ? 7 : max - min + 1;
      if (step > span)
        bad(
          `step in "${item}" must be at most ${span} (a step does not carry over into the next ${spec.name === 'minute' ? 'hour' : spec.name === 'hour' ? 'day' : 'period'}; list the times instead)`,
        );
    }
    let lo: number;
    let hi: number;
    if (base === '*') {
      lo = min;
      hi = spec.name === 'day-of-week' ? 6 : max;
    } else if (base.includes('-')) {
      const dash = base.split('-');
      if (dash.length !== 2 || dash[0] === '' || dash[1] === '')
        bad(`"${item}" is not a range like ${spec.name === 'day-of-week' ? 'MON-FRI' : `${min}-${Math.min(max, min + 5)}`}`);
      lo = value(dash[0]);
      hi = value(dash[1]);
      // SUN is 0, but as the end of a range (FRI-SUN) it means 7.
      if (spec.name === 'day-of-week' && hi === 0 && lo > 0 && !/^\d+$/.test(dash[1])) hi = 7;
      if (lo > hi) bad(`range "${base}" runs backwards (ranges do not wrap around); write "${lo}-${max},${min}-${hi}" or "${hi}-${lo}"`);
    } else {
      if (base === '') bad(`"${item}" needs a value before "/"`);
      lo = value(base);
      hi = stepText === undefined ? lo : spec.name === 'day-of-week' ? 6 : max;
    }
    for (let v = lo; v <= hi; v += step) out.add(v);
  }
  return [...out].sort((a, b) => a - b);
}

/** Whether a local calendar day (month 1-12, day 1-31, weekday 0-6) is a day the fields allow. */
export function cronDayMatches(fields: CronFields, month: number, day: number, weekday: number): boolean {
  if (!fields.months.includes(month)) return false;
  const dom = fields.daysOfMonth.includes(day);
  const dow = fields.daysOfWeek.includes(weekday);
  if (fields.restricted.dayOfMonth && fields.restricted.dayOfWeek) return dom || dow;
  return dom && dow;
}

/** Whether a local wall-clock minute matches (no DST logic: see schedule.ts for instants). */
export function cronMatches(fields: CronFields, wall: { month: number; day: number; hour: number; minute: number; weekday: number }): boolean {
  return fields.minutes.includes(wall.minute) && fields.hours.includes(wall.hour) && cronDayMatches(fields, wall.month, wall.day, wall.weekday);
}
