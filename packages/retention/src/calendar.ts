/**
 * The little time zone arithmetic retention needs, on top of timezone.ts (shared with the
 * policy schedules, so both read local times alike: nonexistent times, in the gap when
 * clocks go forward, move forward by the gap; repeated ones take the first).
 */
import { RetentionRuleError } from './errors.js';
import { checkTimeZone, wallClock, wallToInstant, type WallClock } from './timezone.js';

/** A wall-clock date and time (WallClock without the weekday). */
export type LocalTime = Omit<WallClock, 'weekday'>;

/** Checks a time zone name (throws RetentionRuleError) and returns its canonical form. */
export function validateTimeZone(timeZone: string): string {
  const checked = checkTimeZone(timeZone);
  if (!checked.ok) throw new RetentionRuleError(checked.message.replace(/^unknown time zone ("[^"]*")/, 'time zone $1 is not known'));
  return checked.timeZone;
}

/** The local date and time of an instant (epoch ms) in `timeZone`. */
export function localTime(ms: number, timeZone: string): LocalTime {
  const { year, month, day, hour, minute, second } = wallClock(ms, timeZone);
  return { year, month, day, hour, minute, second };
}

export { wallToInstant };
