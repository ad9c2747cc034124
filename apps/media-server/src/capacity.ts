/**
 * Capacity math for `hoard report` (pure: no I/O, no clock; docs/cli.md, "report"):
 * - the stored-bytes history of a store, from session records (bytes stored per UTC
 *   day, cumulative);
 * - a least-squares line through it (growth in bytes per day);
 * - the date that line reaches a quota;
 * - the classic planning estimate admins use,
 *   `(base × fulls + incremental × incrementals × fulls) × (1 + growth)^years × compression`,
 *   with every input measured.
 */

export const DAY_MS = 86_400_000;
const YEAR_DAYS = 365.25;

export interface Point {
  x: number;
  y: number;
}

export interface LinearFit {
  slope: number;
  intercept: number;
  /** Coefficient of determination, 0..1 (1 when every y is equal: a flat line fits exactly). */
  r2: number;
}

/**
 * Ordinary least squares through `points`. Undefined with fewer than two distinct x
 * values (no line is determined). Computed around the means, so large x (epoch days)
 * do not lose precision.
 */
export function linearRegression(points: readonly Point[]): LinearFit | undefined {
  const n = points.length;
  if (n < 2) return undefined;
  let mx = 0;
  let my = 0;
  for (const p of points) {
    mx += p.x;
    my += p.y;
  }
  mx /= n;
  my /= n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of points) {
    const dx = p.x - mx;
    const dy = p.y - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (sxx === 0) return undefined;
  const slope = sxy / sxx;
  const intercept = my - slope * mx;
  const r2 = syy === 0 ? 1 : Math.min(1, Math.max(0, (sxy * sxy) / (sxx * syy)));
  return { slope, intercept, r2 };
}

export interface StoredEvent {
  /** When the bytes were stored (ms since the epoch). */
  at: number;
  bytes: number;
}

export interface DailyPoint {
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** The end of that day, or `now` for today (ms). */
  at: number;
  /** Bytes stored by every event up to `at`. */
  cumulative: number;
}

/**
 * Cumulative stored bytes at the end of each UTC day of the window
 * (`now - windowDays`, `now`], from the first day with an event (or the window's first
 * day, whichever is later) to today. Events after `now` are ignored; events before the
 * window count in the starting level. Empty when nothing was stored up to `now`.
 */
export function dailyCumulative(events: readonly StoredEvent[], now: number, windowDays = 30): DailyPoint[] {
  const past = events.filter((e) => e.at <= now).sort((a, b) => a.at - b.at);
  if (past.length === 0) return [];
  const today = Math.floor(now / DAY_MS);
  const firstDay = Math.max(Math.floor(past[0]!.at / DAY_MS), today - windowDays + 1);
  const out: DailyPoint[] = [];
  let i = 0;
  let cumulative = 0;
  for (let day = firstDay; day <= today; day++) {
    const end = Math.min((day + 1) * DAY_MS - 1, now);
    while (i < past.length && past[i]!.at <= end) cumulative += past[i++]!.bytes;
    out.push({ day: new Date(day * DAY_MS).toISOString().slice(0, 10), at: end, cumulative });
  }
  return out;
}

export interface Trend {
  /** Growth of stored bytes per day (least squares over the daily points). */
  bytesPerDay: number;
  r2: number;
  /** Days of history the line was fitted to. */
  days: number;
}

/** The growth trend of a daily series; undefined with fewer than two days. */
export function trendOf(points: readonly DailyPoint[]): Trend | undefined {
  const fit = linearRegression(points.map((p) => ({ x: p.at / DAY_MS, y: p.cumulative })));
  if (!fit) return undefined;
  return { bytesPerDay: fit.slope, r2: fit.r2, days: points.length };
}

export type FillEstimate = { status: 'full'; at: Date } | { status: 'date'; at: Date; days: number } | { status: 'never' };

/**
 * When `current` bytes growing by `bytesPerDay` reach `quota`: `full` (now) when they
 * already have, `never` when the trend is flat or shrinking, else the date (linear
 * extrapolation from now: now + (quota - current) / bytesPerDay days).
 */
export function fillDate(current: number, bytesPerDay: number, quota: number, now: number): FillEstimate {
  if (current >= quota) return { status: 'full', at: new Date(now) };
  if (!(bytesPerDay > 0)) return { status: 'never' };
  const days = (quota - current) / bytesPerDay;
  const at = now + days * DAY_MS;
  if (!Number.isFinite(at) || at > 8.64e15) return { status: 'never' };
  return { status: 'date', at: new Date(at), days };
}

export interface ClassicInputs {
  /** Logical bytes of the newest full backup. */
  base: number;
  /** Full backups kept. */
  fullsKept: number;
  /** Mean logical bytes new per incremental run. */
  incremental: number;
  /** Incremental backups kept per full kept (incrementals kept / fulls kept). */
  incrementalsPerFull: number;
  /** Annual growth rate of the full backup's size (0.1 = 10 % a year). */
  growth: number;
  /** Planning horizon in years. */
  years: number;
  /** Stored bytes per new byte (compression and encryption overhead; < 1 compresses). */
  compression: number;
}

/** `(base × fulls + incremental × incrementals × fulls) × (1 + growth)^years × compression`. */
export function classicEstimate(i: ClassicInputs): number {
  return (i.base * i.fullsKept + i.incremental * i.incrementalsPerFull * i.fullsKept) * Math.pow(1 + i.growth, i.years) * i.compression;
}

/** A kept backup: the snapshots one run left, summed. */
export interface KeptBackup {
  at: number;
  full: boolean;
  logicalBytes: number;
}

/**
 * The classic formula's inputs from measured data:
 * - fulls and incrementals kept: the kept backups by kind; when none of them is a full,
 *   the oldest kept backup counts as the full (the formula needs a base);
 * - base: the newest kept full's logical bytes;
 * - growth: annualized from the oldest to the newest kept full,
 *   (newest / oldest)^(365.25 / days between) - 1; 0 with one full, less than a day
 *   between them, or an empty oldest;
 * - incremental: mean of `incrementalBytesNew` (bytes new of each incremental run);
 * - compression: bytesStored / bytesNew over the job's sessions (1 when nothing new).
 */
export function classicInputs(
  kept: readonly KeptBackup[],
  incrementalBytesNew: readonly number[],
  bytesStored: number,
  bytesNew: number,
  years: number,
): ClassicInputs {
  const sorted = [...kept].sort((a, b) => a.at - b.at);
  let fulls = sorted.filter((k) => k.full);
  if (fulls.length === 0 && sorted.length > 0) fulls = [sorted[0]!];
  const fullsKept = fulls.length;
  const incrementalsKept = sorted.length - fullsKept;
  const newest = fulls[fulls.length - 1];
  const oldest = fulls[0];
  let growth = 0;
  if (newest && oldest && newest !== oldest && oldest.logicalBytes > 0 && newest.at - oldest.at >= DAY_MS) {
    growth = Math.pow(newest.logicalBytes / oldest.logicalBytes, YEAR_DAYS / ((newest.at - oldest.at) / DAY_MS)) - 1;
    if (!Number.isFinite(growth)) growth = 0;
  }
  return {
    base: newest?.logicalBytes ?? 0,
    fullsKept,
    incremental: incrementalBytesNew.length ? incrementalBytesNew.reduce((a, b) => a + b, 0) / incrementalBytesNew.length : 0,
    incrementalsPerFull: fullsKept > 0 ? incrementalsKept / fullsKept : 0,
    growth,
    years,
    compression: bytesNew > 0 ? bytesStored / bytesNew : 1,
  };
}
