/**
 * The little time zone arithmetic retention needs, through Intl only: the wall clock of an
 * instant in an IANA zone, and the instant of a wall-clock time (nonexistent times, in the
 * gap when clocks go forward, move forward by the gap; repeated ones take the first).
 * Same reading of local times as the policy schedules (docs/policies.md, "Time zones and
 * DST"); kept here so that this package depends on nothing.
 */
import { RetentionRuleError } from './errors.js';

const DAY = 86_400_000;

export interface LocalTime {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
  /** 0-23 */
  hour: number;
  minute: number;
  second: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    } catch {
      throw new RetentionRuleError(`time zone ${JSON.stringify(timeZone)} is not known: use an IANA name such as UTC, Europe/Berlin or America/New_York`);
    }
    formatters.set(timeZone, f);
  }
  return f;
}

/** Checks a time zone name (throws RetentionRuleError) and returns its canonical form. */
export function validateTimeZone(timeZone: string): string {
  return formatter(timeZone).resolvedOptions().timeZone;
}

/** The local date and time of an instant (epoch ms) in `timeZone`. */
export function localTime(ms: number, timeZone: string): LocalTime {
  const p: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(new Date(ms))) if (part.type !== 'literal') p[part.type] = Number(part.value);
  return { year: p.year, month: p.month, day: p.day, hour: p.hour === 24 ? 0 : p.hour, minute: p.minute, second: p.second };
}

/** local = UTC + offset, at `ms`, whole seconds. */
function offsetAt(ms: number, timeZone: string): number {
  const t = localTime(ms, timeZone);
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second) - Math.floor(ms / 1000) * 1000;
}

/**
 * The instant of a wall-clock time given as Date.UTC(local fields). Assumes a zone changes
 * its offset at most once within two days, true of every zone since 1970.
 */
export function wallToInstant(wallMs: number, timeZone: string): number {
  const before = offsetAt(wallMs - DAY, timeZone);
  const after = offsetAt(wallMs + DAY, timeZone);
  const candidates = [...new Set([before, after])].map((o) => wallMs - o).filter((t) => offsetAt(t, timeZone) === wallMs - t);
  // Two candidates: the repeated hour (take the first). None: the skipped hour (read it
  // with the offset before the gap, which is later by the gap's length).
  return candidates.length > 0 ? Math.min(...candidates) : wallMs - before;
}
