/**
 * The small value syntaxes of a policy: bandwidth rates, run windows and percentages
 * (keep-within durations are @hoard/retention's parseRetentionDuration). Each parse
 * function returns the value or throws a plain Error whose message says what would be
 * right (the policy validator adds the field path).
 */

import { wallClock, wallToInstant } from './timezone.js';

// --- bandwidth --------------------------------------------------------------------------

export interface Bandwidth {
  /** As written, whitespace removed: `50MB/s`. */
  text: string;
  bytesPerSecond: number;
}

/** Bytes per unit. Decimal prefixes are powers of 1000, binary ones (KiB) of 1024. */
const RATE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 1024,
  MiB: 1024 ** 2,
  GiB: 1024 ** 3,
  TiB: 1024 ** 4,
  bit: 1 / 8,
  kbit: 1e3 / 8,
  Kbit: 1e3 / 8,
  Mbit: 1e6 / 8,
  Gbit: 1e9 / 8,
};

const RATE_EXAMPLE = 'e.g. 50MB/s, 200Mbit/s or 1GiB/s';

/** `50MB/s` -> 50,000,000 bytes/s; `200Mbit/s` -> 25,000,000. At least 1 byte/s. */
export function parseBandwidth(value: unknown): Bandwidth {
  if (typeof value !== 'string') throw new Error(`must be a rate such as 50MB/s or 200Mbit/s; got ${JSON.stringify(value)}`);
  const text = value.replace(/\s+/g, '');
  const m = /^(\d+(?:\.\d+)?)([A-Za-z]+)(\/s|ps)?$/.exec(text);
  if (!m) throw new Error(`${JSON.stringify(value)} is not a rate; write a number and a unit per second, ${RATE_EXAMPLE}`);
  const [, number, unit, perSecond] = m;
  if (perSecond !== '/s') throw new Error(`${JSON.stringify(value)}: write the rate per second with "/s", e.g. ${number}${unit}/s`);
  const factor = RATE_UNITS[unit];
  if (factor === undefined) {
    const lower = unit.toLowerCase();
    if (lower === 'mb' || lower === 'gb' || lower === 'kb' || lower === 'tb') {
      throw new Error(
        `${JSON.stringify(value)}: "${unit}" is ambiguous; write ${unit[0].toUpperCase()}B/s for bytes or ${unit[0].toUpperCase()}bit/s for bits`,
      );
    }
    throw new Error(`${JSON.stringify(value)}: unknown unit "${unit}"; use B, kB, MB, GB, TB, KiB, MiB, GiB, TiB, bit, kbit, Mbit or Gbit, ${RATE_EXAMPLE}`);
  }
  const bytesPerSecond = Math.round(Number(number) * factor);
  if (!(bytesPerSecond >= 1)) throw new Error(`${JSON.stringify(value)} is less than 1 byte/s; omit bandwidth for no cap`);
  if (!Number.isSafeInteger(bytesPerSecond)) throw new Error(`${JSON.stringify(value)} is too large`);
  return { text, bytesPerSecond };
}

// --- run window ---------------------------------------------------------------------------

export interface RunWindow {
  /** Canonical `HH:MM-HH:MM`. */
  text: string;
  /** Minutes after local midnight, start inclusive. */
  start: number;
  /** Minutes after local midnight, end exclusive (1440 for 24:00); less than start when the window wraps midnight. */
  end: number;
}

function clock(text: string, end: boolean): number | undefined {
  const m = /^(\d{1,2}):(\d{2})$/.exec(text);
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59) return undefined;
  if (h === 24 && min === 0 && end) return 24 * 60;
  if (h > 23) return undefined;
  return h * 60 + min;
}

const pad = (n: number): string => String(n).padStart(2, '0');
const hhmm = (minutes: number): string => `${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;

/** `22:00-06:00` (may wrap midnight; `24:00` allowed as the end). */
export function parseRunWindow(value: unknown): RunWindow {
  const example = "e.g. 22:00-06:00 (local time in the schedule's time zone; may wrap midnight)";
  if (typeof value !== 'string') throw new Error(`must be a time range, ${example}; got ${JSON.stringify(value)}`);
  const parts = value.split('-').map((p) => p.trim());
  if (parts.length !== 2) throw new Error(`${JSON.stringify(value)} is not a time range; write START-END, ${example}`);
  const start = clock(parts[0], false);
  const end = clock(parts[1], true);
  if (start === undefined) throw new Error(`${JSON.stringify(value)}: start ${JSON.stringify(parts[0])} is not a time 00:00-23:59, ${example}`);
  if (end === undefined) throw new Error(`${JSON.stringify(value)}: end ${JSON.stringify(parts[1])} is not a time 00:00-24:00, ${example}`);
  if (start === end || (start === 0 && end === 0))
    throw new Error(`${JSON.stringify(value)} is empty (start equals end); omit run-window to allow runs at any time`);
  return { text: `${hhmm(start)}-${hhmm(end)}`, start, end };
}

/** Whether a local time (minutes after midnight) lies in the window. */
export function inRunWindowMinutes(window: RunWindow, minuteOfDay: number): boolean {
  return window.start < window.end ? minuteOfDay >= window.start && minuteOfDay < window.end : minuteOfDay >= window.start || minuteOfDay < window.end;
}

/** Whether `at` lies in the window, read in `timeZone`. */
export function inRunWindow(window: RunWindow, at: Date, timeZone: string): boolean {
  const w = wallClock(at, timeZone);
  return inRunWindowMinutes(window, w.hour * 60 + w.minute);
}

/**
 * The first instant at or after `at` inside the window, read in `timeZone`: `at` itself
 * when it is inside, else the window's next start (today's or tomorrow's local start time;
 * a start that does not exist on a DST day moves forward by the gap).
 */
export function nextRunWindowOpen(window: RunWindow, at: Date, timeZone: string): Date {
  if (inRunWindow(window, at, timeZone)) return at;
  const w = wallClock(at, timeZone);
  for (let day = 0; day <= 2; day++) {
    const open = wallToInstant(Date.UTC(w.year, w.month - 1, w.day + day, Math.floor(window.start / 60), window.start % 60), timeZone);
    if (open > at.getTime()) return new Date(open);
  }
  return new Date(at.getTime() + 86_400_000); // unreachable: some start lies within two days
}

// --- percent ------------------------------------------------------------------------------

/** `10%` -> 10; more than 0, at most 100. */
export function parsePercent(value: unknown): number {
  const text = typeof value === 'string' ? value.trim() : '';
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
  if (!m) throw new Error(`must be a percentage such as 10%; got ${JSON.stringify(value)}`);
  const n = Number(m[1]);
  if (!(n > 0 && n <= 100)) throw new Error(`must be more than 0% and at most 100%; got ${JSON.stringify(value)}`);
  return n;
}

// --- elapsed durations ----------------------------------------------------------------------

export interface Elapsed {
  /** Canonical text, units in the order d h min: `1d2h`. */
  text: string;
  ms: number;
}

const ELAPSED_EXAMPLE = 'a whole number of d, h or min (days, hours, minutes), or several in that order, e.g. 26h, 2d, 90min, 1d12h';

/**
 * `26h`, `2d`, `90min`, `1d12h` as elapsed time (a day is 24 hours): alert-after and the
 * server's alert delays. `m` alone is refused: in retention it means months.
 */
export function parseElapsed(value: unknown): Elapsed {
  const text = typeof value === 'string' ? value.replace(/\s+/g, '').toLowerCase() : '';
  const quoted = JSON.stringify(value);
  if (/^\d+m$/.test(text)) throw new Error(`${quoted}: write min for minutes (m would read as months elsewhere in a policy); use ${ELAPSED_EXAMPLE}`);
  const m = /^(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)min)?$/.exec(text);
  if (!m || text === '') throw new Error(`must be a duration: ${ELAPSED_EXAMPLE}; got ${quoted}`);
  const [d, h, min] = m.slice(1).map((x) => (x === undefined ? 0 : Number(x)));
  const ms = ((d * 24 + h) * 60 + min) * 60_000;
  if (ms < 60_000) throw new Error(`${quoted} is zero; use at least 1min`);
  if (d > 3660) throw new Error(`${quoted} is too long (at most 3660d)`);
  const parts: [number, string][] = [
    [d, 'd'],
    [h, 'h'],
    [min, 'min'],
  ];
  return {
    text: parts
      .filter(([n]) => n > 0)
      .map(([n, u]) => `${n}${u}`)
      .join(''),
    ms,
  };
}
