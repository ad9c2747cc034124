/**
 * `keep-within` durations as admins write them: whole numbers with units, alone or
 * combined in the order y m w d h, any case:
 *
 *   y  calendar years      m  calendar months      w  weeks (7 calendar days)
 *   d  calendar days       h  hours (elapsed, exactly 3600 s)
 *
 * `2m` is two months: retention is counted in hours at the finest, so there is no
 * minutes unit to confuse it with (`30min`, `2 months`, `6m1y` are refused with a message
 * that says what to write).
 */
import { localTime, validateTimeZone, wallToInstant } from './calendar.js';
import { RetentionRuleError } from './errors.js';

export interface RetentionDuration {
  /** Canonical text, units in the order y m w d h: `1y6m`. Used in reasons (`within 1y6m`). */
  text: string;
  years: number;
  months: number;
  weeks: number;
  days: number;
  hours: number;
}

/** The unit letters, largest first. */
export type DurationUnit = 'y' | 'm' | 'w' | 'd' | 'h';

const MAX_AMOUNT = 100_000;
const WHAT_TO_WRITE =
  'use a whole number followed by h, d, w, m or y (hours, days, weeks, calendar months, years), or several in the order y m w d h, e.g. 36h, 14d, 3w, 2m, 1y, 1y6m';

/**
 * Parses `2m`, `14d`, `3w`, `1y`, `36h`, `1y6m`. Throws RetentionRuleError; with `option`
 * (e.g. `keep-within`) the message starts with it, as a CLI flag or rule name.
 */
export function parseRetentionDuration(value: unknown, option?: string): RetentionDuration {
  const lead = option === undefined ? '' : `${option} `;
  const fail = (message: string): never => {
    throw new RetentionRuleError(`${lead}${message}`);
  };
  if (typeof value !== 'string') return fail(`must be a duration: ${WHAT_TO_WRITE}; got ${JSON.stringify(value)}`);
  const quoted = JSON.stringify(value);
  const text = value.replace(/\s+/g, '').toLowerCase();
  if (/^\d+(min|mins|minutes?|s|secs?|seconds?)$/.test(text)) fail(`${quoted}: durations have no minutes or seconds ("m" means months); ${WHAT_TO_WRITE}`);
  const longUnit = /^(\d+)(years?|months?|mo|weeks?|days?|hours?)$/.exec(text);
  if (longUnit) fail(`${quoted}: write ${Number(longUnit[1])}${longUnit[2].startsWith('mo') ? 'm' : longUnit[2][0]}; ${WHAT_TO_WRITE}`);
  const m = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/.exec(text);
  if (!m || text === '') return fail(`${quoted}: ${WHAT_TO_WRITE}`);
  const [years, months, weeks, days, hours] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  if (years + months + weeks + days + hours === 0) fail(`${quoted} is zero; omit ${option ?? 'keep-within'} instead`);
  if ([years, months, weeks, days, hours].some((n) => n > MAX_AMOUNT)) fail(`${quoted} is too long (at most ${MAX_AMOUNT} of a unit)`);
  return { text: formatRetentionDuration({ years, months, weeks, days, hours }), years, months, weeks, days, hours };
}

export function formatRetentionDuration(d: Omit<RetentionDuration, 'text'>): string {
  const parts: [number, DurationUnit][] = [
    [d.years, 'y'],
    [d.months, 'm'],
    [d.weeks, 'w'],
    [d.days, 'd'],
    [d.hours, 'h'],
  ];
  return parts
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join('');
}

/**
 * The oldest instant a keep-within of `duration` counted back from `from` keeps, in
 * calendar terms on the wall clock of `timeZone` (default UTC):
 *
 * - years and months move the local date, the day clamped to the target month's end
 *   (31 May minus 3m is 28 or 29 February), so `1m` never skips a month;
 * - weeks and days move it by whole local days (`1d` is 23 or 25 hours across a DST change);
 * - the local time of day is kept (a time that does not exist that day moves forward by
 *   the gap; a repeated one is its first occurrence);
 * - then hours are subtracted as elapsed time (`24h` is always 24 hours).
 *
 * Snapshots taken at or after the cutoff are kept.
 */
export function retentionCutoff(from: Date | number, duration: Omit<RetentionDuration, 'text'>, timeZone = 'UTC'): Date {
  const ms = typeof from === 'number' ? from : from.getTime();
  const zone = validateTimeZone(timeZone);
  const w = localTime(ms, zone);
  const totalMonths = w.year * 12 + (w.month - 1) - (duration.years * 12 + duration.months);
  const year = Math.floor(totalMonths / 12);
  const month = totalMonths - year * 12; // 0-11
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
  const day = Math.min(w.day, lastDay) - duration.weeks * 7 - duration.days;
  const wall = Date.UTC(year, month, day, w.hour, w.minute, w.second) + (((ms % 1000) + 1000) % 1000);
  return new Date(wallToInstant(wall, zone) - duration.hours * 3_600_000);
}
