/**
 * Which snapshots a retention policy keeps: a pure function of the snapshots and the
 * rules, so `hoard prune --repo`, `--dry-run` and the media server's scheduled prune of a
 * policy decide alike.
 *
 * Semantics (those of restic's `forget`, chosen because admins know them):
 *
 * - Snapshots are ordered newest first (by time, then by id, so the plan never depends on
 *   input order).
 * - `keepLast n`: the n newest.
 * - `keepHourly/Daily/Weekly/Monthly/Yearly n`: walking from the newest, the newest
 *   snapshot of each calendar bucket counts, until n buckets that *have* snapshots are
 *   counted (a week without backups does not use up a weekly slot). Buckets are
 *   calendar hours/days/ISO weeks/months/years in `timeZone` (IANA, default UTC). A
 *   snapshot may be kept by several rules; each rule counts its own buckets.
 * - `keepWithin d`: every snapshot no older than d before the *newest* snapshot (not
 *   before now: when backups stop, retention never eats the last good ones), the cutoff
 *   computed on the wall calendar of `timeZone` (retentionCutoff).
 * - Protected snapshots are always kept (reason `protected`) and stand outside the policy:
 *   they take no slot and do not move the keep-within anchor, so protecting an old
 *   snapshot never changes what else is kept.
 * - At least one rule must keep something; forgetting everything takes `allowNoRules`.
 *
 * Consequence used by the tests: whenever a rule is non-zero, the newest snapshot is kept.
 */
import { bucketLabel, type BucketKind } from './buckets.js';
import { localTime, validateTimeZone } from './calendar.js';
import { parseRetentionDuration, retentionCutoff, type RetentionDuration } from './duration.js';
import { RetentionRuleError } from './errors.js';

export interface RetentionSnapshot {
  id: string;
  /** When the snapshot was taken (ISO-8601, Date or epoch ms). */
  time: Date | string | number;
  protected?: boolean;
}

/** Absent rules keep nothing on their own; a snapshot is kept if any rule keeps it. */
export interface RetentionRules {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  keepWithin?: RetentionDuration;
  /** IANA time zone for bucket boundaries and the keep-within calendar; default UTC. */
  timeZone?: string;
}

export interface RetentionDecision {
  id: string;
  /** ISO-8601 UTC. */
  time: string;
  keep: boolean;
  /** Why it is kept: `last`, `hourly 2026-11-20T03`, `daily 2026-11-20`, `weekly 2026-W47`, `monthly 2026-11`, `yearly 2026`, `within 2m`, `protected`. Empty when forgotten. */
  reasons: string[];
}

export const COUNT_RULES = [
  ['keepLast', 'keep-last'],
  ['keepHourly', 'keep-hourly'],
  ['keepDaily', 'keep-daily'],
  ['keepWeekly', 'keep-weekly'],
  ['keepMonthly', 'keep-monthly'],
  ['keepYearly', 'keep-yearly'],
] as const;

const BUCKET_RULES: [keyof RetentionRules, BucketKind][] = [
  ['keepHourly', 'hourly'],
  ['keepDaily', 'daily'],
  ['keepWeekly', 'weekly'],
  ['keepMonthly', 'monthly'],
  ['keepYearly', 'yearly'],
];

export type RetentionRulesInput = Partial<
  Record<'keepLast' | 'keepHourly' | 'keepDaily' | 'keepWeekly' | 'keepMonthly' | 'keepYearly' | 'keepWithin' | 'timeZone', unknown>
>;

/**
 * Rules from loosely typed input (CLI strings, a policy): counts as numbers or digit
 * strings (0 allowed: no slots), keep-within as text (`1y6m`) or a RetentionDuration.
 * Throws RetentionRuleError naming the option and the value.
 */
export function parseRetentionRules(input: RetentionRulesInput): RetentionRules {
  const rules: RetentionRules = {};
  for (const [field, option] of COUNT_RULES) {
    const value = input[field];
    if (value === undefined) continue;
    const n = typeof value === 'number' ? value : typeof value === 'string' && /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < 0) throw new RetentionRuleError(`${option} must be a whole number >= 0, got ${JSON.stringify(value)}`);
    rules[field] = n;
  }
  if (input.keepWithin !== undefined) {
    const w = input.keepWithin;
    const text = typeof w === 'object' && w !== null && typeof (w as { text?: unknown }).text === 'string' ? (w as { text: string }).text : w;
    rules.keepWithin = parseRetentionDuration(text, 'keep-within');
  }
  if (input.timeZone !== undefined) rules.timeZone = validateTimeZone(String(input.timeZone));
  return rules;
}

/** True when the rules keep something (any count above zero, or a keep-within). */
export function hasKeepRule(rules: RetentionRules): boolean {
  return COUNT_RULES.some(([field]) => (rules[field] ?? 0) > 0) || rules.keepWithin !== undefined;
}

export function planRetention(
  snapshots: readonly RetentionSnapshot[],
  rulesInput: RetentionRules,
  options: { allowNoRules?: boolean } = {},
): RetentionDecision[] {
  const rules = parseRetentionRules(rulesInput as RetentionRulesInput);
  if (!options.allowNoRules && !hasKeepRule(rules)) {
    throw new RetentionRuleError(
      'give at least one rule that keeps snapshots (keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly or keep-within): without one, every snapshot would be forgotten',
    );
  }
  const timeZone = validateTimeZone(rules.timeZone ?? 'UTC');
  const ordered = snapshots
    .map((s) => {
      const ms = s.time instanceof Date ? s.time.getTime() : typeof s.time === 'number' ? s.time : Date.parse(s.time);
      if (!Number.isFinite(ms)) throw new RetentionRuleError(`snapshot ${s.id} has no valid time (${String(s.time)})`);
      return { id: s.id, ms, protected: s.protected === true, reasons: [] as string[] };
    })
    .sort((a, b) => b.ms - a.ms || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));

  const policy = ordered.filter((s) => !s.protected);
  for (const s of ordered) if (s.protected) s.reasons.push('protected');

  const last = rules.keepLast ?? 0;
  policy.slice(0, last).forEach((s) => s.reasons.push('last'));

  for (const [field, kind] of BUCKET_RULES) {
    let remaining = (rules[field] as number | undefined) ?? 0;
    let previous: string | undefined;
    for (const s of policy) {
      if (remaining === 0) break;
      const label = bucketLabel(kind, localTime(s.ms, timeZone));
      if (label === previous) continue;
      previous = label;
      s.reasons.push(`${kind} ${label}`);
      remaining--;
    }
  }

  if (rules.keepWithin && policy.length > 0) {
    const since = retentionCutoff(policy[0].ms, rules.keepWithin, timeZone).getTime();
    for (const s of policy) if (s.ms >= since) s.reasons.push(`within ${rules.keepWithin.text}`);
  }

  return ordered.map((s) => ({ id: s.id, time: new Date(s.ms).toISOString(), keep: s.reasons.length > 0, reasons: s.reasons }));
}
