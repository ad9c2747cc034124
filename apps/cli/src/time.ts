/**
 * `--at TIME` (and `--since`, `--until`): ISO-8601 (`2026-11-20T03:00:00Z`, `2026-11-20T03:00+01:00`, `2026-11-20`)
 * or local wall-clock time `YYYY-MM-DD HH:MM[:SS]`, as an operator would type it.
 */
import { UsageError } from './errors.js';

const LOCAL = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/;
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/;

/** `flag` names the option in the error, e.g. `--since: "last week" is not a time: ...`. */
export function parseTime(text: string, flag = '--at'): Date {
  const local = LOCAL.exec(text.trim());
  if (local) {
    const [, y, mo, d, h, mi, s] = local.map(Number);
    const date = new Date(y, mo - 1, d, h, mi, s || 0);
    if (date.getFullYear() === y && date.getMonth() === mo - 1 && date.getDate() === d && date.getHours() === h && date.getMinutes() === mi) return date;
  } else if (ISO.test(text.trim())) {
    const date = new Date(text.trim());
    if (!Number.isNaN(date.getTime())) return date;
  }
  throw new UsageError(`${flag}: ${JSON.stringify(text)} is not a time: use ISO-8601 (2026-11-20T03:00:00Z) or local "YYYY-MM-DD HH:MM"`);
}

const UTC_NAMES = new Set(['UTC', 'Etc/UTC', 'Etc/UCT', 'UCT', 'Etc/GMT', 'GMT', 'Etc/Zulu', 'Zulu']);
const wallClocks = new Map<string, Intl.DateTimeFormat>();

/** `YYYY-MM-DD HH:MM` of `date` on the clock of `timeZone` (an IANA name); RangeError for a zone this Node does not know. */
export function wallClock(date: Date, timeZone: string): string {
  let format = wallClocks.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      hourCycle: 'h23',
    });
    wallClocks.set(timeZone, format);
  }
  const part: Record<string, string> = {};
  for (const p of format.formatToParts(date)) part[p.type] = p.value;
  return `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}`;
}

/**
 * A scheduled time as its policy's clock shows it, the zone named, and UTC after it:
 * `2026-12-03 01:00 Europe/Berlin (00:00 UTC)`, with the UTC date when it is another day
 * (`2026-12-03 00:30 Europe/Berlin (2026-12-02 23:30 UTC)`); a UTC policy's is
 * `2026-12-03 00:00 UTC`. Without a zone (a server from before policy time zones), or
 * with one this Node does not know: local time, said so.
 */
export function zonedTime(iso: string, timeZone: string | undefined): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const utc = wallClock(date, 'UTC');
  if (timeZone !== undefined && UTC_NAMES.has(timeZone)) return `${utc} UTC`;
  let zoned: string | undefined;
  try {
    if (timeZone) zoned = wallClock(date, timeZone);
  } catch {
    // a zone name this Node's ICU does not know: local time below
  }
  const there = zoned ?? `${wallClock(date, Intl.DateTimeFormat().resolvedOptions().timeZone)} local`;
  const name = zoned === undefined ? '' : ` ${timeZone}`;
  return `${there}${name} (${there.slice(0, 10) === utc.slice(0, 10) ? utc.slice(11) : utc} UTC)`;
}

/** An ISO-8601 time as local "YYYY-MM-DD HH:MM:SS", for tables. */
export function localTime(iso: string): string {
  const d = new Date(iso);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
