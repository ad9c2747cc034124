/**
 * `keep-within` durations as admins write them: a whole number and a unit.
 *
 *   h  hours (exactly 3600 s)        d  days (exactly 24 h)     w  weeks (exactly 7 d)
 *   m  calendar months               y  calendar years
 *
 * `m` is months, not minutes: retention is counted in hours at the finest, so minutes
 * would only invite the mistake. `min`, `mo`, fractions and combinations (`1d12h`) are
 * refused with a message that says what to write instead.
 */
import { RetentionRuleError } from './errors.js';

export type DurationUnit = 'h' | 'd' | 'w' | 'm' | 'y';

export interface RetentionDuration {
  amount: number;
  unit: DurationUnit;
  /** As written, for reasons such as `within 2m`. */
  text: string;
}

const DURATION = /^(\d{1,6})([hdwmy])$/;

export function parseDuration(text: string, option = 'keep-within'): RetentionDuration {
  const match = DURATION.exec(String(text).trim());
  if (!match) {
    throw new RetentionRuleError(`${option} ${JSON.stringify(text)}: use a whole number followed by h, d, w, m or y (hours, days, weeks, calendar months, years), e.g. 36h, 14d, 3w, 2m, 1y`);
  }
  return { amount: Number(match[1]), unit: match[2] as DurationUnit, text: `${Number(match[1])}${match[2]}` };
}

const HOUR = 3600_000;

/**
 * `from` minus the duration. Months and years step back on the UTC calendar, clamping the
 * day to the target month's length (31 March minus 1m is 28/29 February), so `1m` never
 * skips a month.
 */
export function subtractDuration(from: Date, d: RetentionDuration): Date {
  switch (d.unit) {
    case 'h':
      return new Date(from.getTime() - d.amount * HOUR);
    case 'd':
      return new Date(from.getTime() - d.amount * 24 * HOUR);
    case 'w':
      return new Date(from.getTime() - d.amount * 7 * 24 * HOUR);
    case 'm':
    case 'y': {
      const months = d.unit === 'm' ? d.amount : d.amount * 12;
      const total = from.getUTCFullYear() * 12 + from.getUTCMonth() - months;
      const year = Math.floor(total / 12);
      const month = total - year * 12;
      const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
      const out = new Date(from.getTime());
      out.setUTCFullYear(year, month, Math.min(from.getUTCDate(), lastDay));
      return out;
    }
  }
}
