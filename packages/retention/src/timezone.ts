/**
 * Time zones through Intl only (no tz database of our own): validating IANA names, reading
 * the wall clock of an instant in a zone, and turning a wall-clock time back into
 * instants, with the DST rules schedules use (see docs/policies.md#time-zones-and-dst).
 *
 * A wall-clock time is represented as "wall milliseconds": Date.UTC(year, month-1, day,
 * hour, minute) of the local fields, so that calendar arithmetic is plain UTC arithmetic.
 */

const MINUTE = 60_000;
const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export interface WallClock {
  year: number;
  /** 1-12 */
  month: number;
  /** 1-31 */
  day: number;
  /** 0-23 */
  hour: number;
  minute: number;
  second: number;
  /** 0 = Sunday ... 6 = Saturday */
  weekday: number;
}

/** The local date and time of `instant` in `timeZone` (an IANA name already validated). */
export function wallClock(instant: Date | number, timeZone: string): WallClock {
  const ms = typeof instant === 'number' ? instant : instant.getTime();
  const fields: Record<string, number> = {};
  for (const part of formatter(timeZone).formatToParts(ms)) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const { year, month, day, hour, minute, second } = fields as Record<'year' | 'month' | 'day' | 'hour' | 'minute' | 'second', number>;
  return { year, month, day, hour: hour === 24 ? 0 : hour, minute, second, weekday: new Date(Date.UTC(year, month - 1, day)).getUTCDay() };
}

/** The zone's UTC offset at `instantMs`, in milliseconds (local = UTC + offset), whole seconds. */
export function zoneOffset(timeZone: string, instantMs: number): number {
  const w = wallClock(instantMs, timeZone);
  const wall = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return wall - Math.floor(instantMs / 1000) * 1000;
}

/** The wall-clock time of an instant as wall milliseconds (seconds and below dropped). */
export function toWallMs(instantMs: number, timeZone: string): number {
  const w = wallClock(instantMs, timeZone);
  return Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute);
}

/**
 * How a wall-clock time maps to instants in a zone:
 * - `instants` has one element normally, two when the time occurs twice (the hour repeated
 *   when clocks go back; earlier first), none when it does not exist (skipped when clocks
 *   go forward);
 * - `shifted` is the instant a nonexistent time is moved to: the time read with the offset
 *   in force before the gap, which is later by the gap's length (02:30 becomes 03:30 when
 *   02:00-03:00 is skipped). For existing times it equals instants[0].
 */
export interface WallResolution {
  instants: number[];
  shifted: number;
}

/**
 * Resolves a wall time. Assumes a zone changes its offset at most once within two days of
 * any instant, which holds for every zone in the IANA database since 1970.
 */
export function resolveWall(wallMs: number, timeZone: string): WallResolution {
  const before = zoneOffset(timeZone, wallMs - DAY);
  const after = zoneOffset(timeZone, wallMs + DAY);
  if (before === after) {
    // The usual case: check it, because a change between the two probes is possible.
    const t = wallMs - before;
    if (zoneOffset(timeZone, t) === before) return { instants: [t], shifted: t };
  }
  const instants: number[] = [];
  for (const offset of new Set([before, after])) {
    const t = wallMs - offset;
    if (zoneOffset(timeZone, t) === offset) instants.push(t);
  }
  instants.sort((a, b) => a - b);
  if (instants.length > 0) return { instants, shifted: instants[0] };
  return { instants, shifted: wallMs - before };
}

/** The instant of a wall time, moving nonexistent times forward and taking the first of repeated ones. */
export function wallToInstant(wallMs: number, timeZone: string): number {
  return resolveWall(wallMs, timeZone).shifted;
}

let zoneNames: string[] | undefined;

function knownZones(): string[] {
  if (!zoneNames) {
    try {
      zoneNames = (Intl as unknown as { supportedValuesOf(key: string): string[] }).supportedValuesOf('timeZone');
    } catch {
      zoneNames = [];
    }
    if (!zoneNames.includes('UTC')) zoneNames.push('UTC');
  }
  return zoneNames;
}

/**
 * Checks an IANA time zone name; returns the canonical spelling (`utc` -> `UTC`,
 * `europe/berlin` -> `Europe/Berlin`) or an error message that suggests a close name.
 */
export function checkTimeZone(value: unknown): { ok: true; timeZone: string } | { ok: false; message: string } {
  const example = 'an IANA name such as Europe/Berlin, America/New_York or UTC';
  if (typeof value !== 'string' || value.trim() === '') return { ok: false, message: `a time zone must be ${example}; got ${JSON.stringify(value)}` };
  const name = value.trim();
  let canonical: string | undefined;
  if (/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(name)) {
    try {
      canonical = new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
    } catch {
      canonical = undefined;
    }
  }
  if (canonical) {
    // Intl accepts any case; give back the database's spelling when it has one.
    const listed = knownZones().find((z) => z.toLowerCase() === name.toLowerCase());
    return { ok: true, timeZone: listed ?? canonical };
  }
  const lower = name.toLowerCase();
  const close = knownZones()
    .map((z) => ({ z, d: editDistance(lower, z.toLowerCase()) }))
    .filter(({ d }) => d <= 3)
    .sort((a, b) => a.d - b.d)[0];
  const hint = close ? `; did you mean "${close.z}"?` : `; use ${example}`;
  return { ok: false, message: `unknown time zone ${JSON.stringify(name)}${hint}` };
}

/** Levenshtein distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

export const MINUTE_MS = MINUTE;
export const DAY_MS = DAY;
