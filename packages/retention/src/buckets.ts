/**
 * Calendar buckets for the hourly/daily/weekly/monthly/yearly rules, in a time zone: a
 * snapshot taken at 00:30 in Berlin belongs to that Berlin day, not to the UTC day before.
 * Labels double as the reasons printed by `hoard prune` (`daily 2026-11-20`).
 */
import type { LocalTime } from './calendar.js';

export type BucketKind = 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/** ISO-8601 week (Monday first; week 1 holds the year's first Thursday) of a calendar date. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = new Date(Date.UTC(year, month - 1, day));
  const weekday = (date.getUTCDay() + 6) % 7; // Monday 0
  date.setUTCDate(date.getUTCDate() - weekday + 3); // the Thursday of this week
  const weekYear = date.getUTCFullYear();
  const dayOfYear = Math.round((date.getTime() - Date.UTC(weekYear, 0, 1)) / 86400_000);
  const week = Math.floor(dayOfYear / 7) + 1;
  return { year: weekYear, week };
}

export function bucketLabel(kind: BucketKind, t: Pick<LocalTime, 'year' | 'month' | 'day' | 'hour'>): string {
  switch (kind) {
    case 'hourly':
      return `${t.year}-${pad(t.month)}-${pad(t.day)}T${pad(t.hour)}`;
    case 'daily':
      return `${t.year}-${pad(t.month)}-${pad(t.day)}`;
    case 'weekly': {
      const w = isoWeek(t.year, t.month, t.day);
      return `${w.year}-W${pad(w.week)}`;
    }
    case 'monthly':
      return `${t.year}-${pad(t.month)}`;
    case 'yearly':
      return String(t.year);
  }
}
