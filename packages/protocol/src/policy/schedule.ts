/**
 * Schedules: a cron expression or calendar word in an IANA time zone, and the instants
 * it fires at. DST rules (docs/policies.md#time-zones-and-dst):
 *
 * - a time that does not exist (skipped when clocks go forward) fires once, moved later by
 *   the length of the gap: 02:30 on a day when 02:00-03:00 is skipped fires at 03:30;
 * - a time that occurs twice (clocks go back) fires once, at its first occurrence, unless
 *   the hour field is `*`: then it fires at both, so that hourly schedules stay hourly;
 * - two fire times that land on the same instant are one run.
 */

import { calendarWord, cronDayMatches, parseCron, ScheduleError, type CronFields } from './cron.js';
import { checkTimeZone, DAY_MS, resolveWall, toWallMs, zoneOffset } from './timezone.js';

export interface Schedule {
  /** As written, trimmed: a cron expression with single spaces, or a calendar word (lower case, no `@`). */
  expression: string;
  /** The five-field cron expression it means (a calendar word's expansion). */
  cron: string;
  /** Canonical IANA time zone name. */
  timeZone: string;
  fields: CronFields;
}

/** Parses `expression` (cron or calendar word) in `timeZone`; throws ScheduleError. */
export function parseSchedule(expression: string, timeZone: string): Schedule {
  const zone = checkTimeZone(timeZone);
  if (!zone.ok) throw new ScheduleError(zone.message, String(timeZone), 'timezone');
  const text = typeof expression === 'string' ? expression.trim() : expression;
  const word = typeof text === 'string' ? calendarWord(text) : undefined;
  if (word !== undefined) {
    return { expression: (text as string).toLowerCase().replace(/^@/, ''), cron: word, timeZone: zone.timeZone, fields: parseCron(word) };
  }
  const fields = parseCron(text as string);
  const cron = (text as string).split(/\s+/).join(' ');
  return { expression: cron, cron, timeZone: zone.timeZone, fields };
}

const HOUR_MS = 3_600_000;
/** Further than any zone's offset: instants of a wall day D are all later than D minus this. */
const MAX_OFFSET_MS = 26 * HOUR_MS;
/** A schedule that fires on some day fires within 8 years (Feb 29 across 2100); give up after 9. */
const MAX_IDLE_DAYS = 366 * 9;

/**
 * The instants `schedule` fires at, strictly after `fromMs`, in increasing order, without
 * duplicates (milliseconds, always whole minutes). Ends only if the schedule cannot fire
 * again within 9 years, which parseSchedule's checks make impossible for parsed schedules.
 */
export function* fireTimes(schedule: Schedule, fromMs: number): Generator<number, void, undefined> {
  const { fields, timeZone } = schedule;
  const firstDay = Math.floor(toWallMs(fromMs, timeZone) / DAY_MS) * DAY_MS - DAY_MS;
  let buffer: number[] = [];
  let last = -Infinity;
  let idle = 0;
  for (let day = firstDay; idle <= MAX_IDLE_DAYS; day += DAY_MS, idle++) {
    // Everything before day - MAX_OFFSET is final: later wall days cannot produce it.
    const cutoff = day - MAX_OFFSET_MS;
    if (buffer.length > 0 && buffer[0] < cutoff) {
      let n = 0;
      while (n < buffer.length && buffer[n] < cutoff) n++;
      const ready = buffer.slice(0, n);
      buffer = buffer.slice(n);
      for (const t of ready) {
        if (t !== last) {
          last = t;
          idle = 0;
          yield t;
        }
      }
    }
    const date = new Date(day);
    if (!cronDayMatches(fields, date.getUTCMonth() + 1, date.getUTCDate(), date.getUTCDay())) continue;
    const add = (t: number): void => {
      if (t > fromMs) buffer.push(t);
    };
    const before = zoneOffset(timeZone, day - 2 * DAY_MS);
    const steady = before === zoneOffset(timeZone, day + 2 * DAY_MS) && before === zoneOffset(timeZone, day + DAY_MS / 2 - before);
    for (const hour of fields.hours) {
      for (const minute of fields.minutes) {
        const wall = day + hour * HOUR_MS + minute * 60_000;
        if (steady) {
          add(wall - before);
          continue;
        }
        const r = resolveWall(wall, timeZone);
        if (r.instants.length === 0) add(r.shifted);
        else {
          add(r.instants[0]);
          if (r.instants.length === 2 && !fields.restricted.hour) add(r.instants[1]);
        }
      }
    }
    buffer.sort((a, b) => a - b);
  }
  for (const t of buffer) {
    if (t !== last) {
      last = t;
      yield t;
    }
  }
}

/** The next `count` fire times of `schedule` strictly after `from` (fewer only if it can never fire again). */
export function nextRuns(schedule: Schedule, from: Date, count: number): Date[] {
  const out: Date[] = [];
  if (!(count > 0)) return out;
  for (const t of fireTimes(schedule, from.getTime())) {
    out.push(new Date(t));
    if (out.length >= count) break;
  }
  return out;
}

/** Whether `schedule` fires at the minute containing `at`. */
export function firesAt(schedule: Schedule, at: Date): boolean {
  const minute = Math.floor(at.getTime() / 60_000) * 60_000;
  const next = fireTimes(schedule, minute - 1).next();
  return !next.done && next.value === minute;
}
