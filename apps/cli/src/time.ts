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
