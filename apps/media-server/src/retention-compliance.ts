/**
 * Retention compliance for the validity report: which snapshots the policy's retention
 * should have kept, and whether they exist. The plan is @hoard/retention's planRetention,
 * per source as prune plans it (packages/repository/src/repo/prune.ts), over every
 * snapshot the job is known to have made: those in the catalog now, and those its
 * successful runs recorded (a snapshot pruned since, or lost, is still in its run's
 * result). A snapshot the plan keeps that no longer exists was pruned wrongly or lost.
 *
 * Per rule: `expected` is the snapshots the plan keeps for that rule (`keep-daily 7`: the
 * newest of each of the 7 newest days that have snapshots, restic's semantics: a day
 * without a backup uses no slot; missed backups are the report's `missed`/`failed` days),
 * `present` how many of them exist.
 */
import { planRetention, type RetentionRules } from '@hoard/repository';
import type { RetentionCheck } from '@hoard/protocol';

/** A snapshot the job made: in the catalog, or named by a run's result. */
export interface MadeSnapshot {
  id: string;
  source: string;
  startedAt: string;
}

/** The rules in the order of a policy file, with the prefix of the reasons planRetention gives for each. */
const RULES: { key: keyof RetentionRules; name: string; reason: string }[] = [
  { key: 'keepLast', name: 'keep-last', reason: 'last' },
  { key: 'keepHourly', name: 'keep-hourly', reason: 'hourly ' },
  { key: 'keepDaily', name: 'keep-daily', reason: 'daily ' },
  { key: 'keepWeekly', name: 'keep-weekly', reason: 'weekly ' },
  { key: 'keepMonthly', name: 'keep-monthly', reason: 'monthly ' },
  { key: 'keepYearly', name: 'keep-yearly', reason: 'yearly ' },
  { key: 'keepWithin', name: 'keep-within', reason: 'within ' },
];
/** Ids of missing snapshots named per rule, at most. */
const MISSING_SHOWN = 10;

export function retentionCompliance(rules: RetentionRules, made: readonly MadeSnapshot[], existing: ReadonlySet<string>): RetentionCheck[] {
  if (made.length === 0) return [];
  const bySource = new Map<string, MadeSnapshot[]>();
  const seen = new Set<string>();
  for (const s of made) {
    if (seen.has(s.id)) continue;
    seen.add(s.id);
    bySource.set(s.source, [...(bySource.get(s.source) ?? []), s]);
  }
  const kept = RULES.filter((r) => rules[r.key] !== undefined).map((r) => ({ rule: r, ids: [] as string[] }));
  for (const source of [...bySource.keys()].sort()) {
    const plan = planRetention(
      bySource.get(source)!.map((s) => ({ id: s.id, time: s.startedAt })),
      rules,
    );
    for (const d of plan) {
      if (!d.keep) continue;
      for (const k of kept) if (d.reasons.some((reason) => reason === k.rule.reason.trim() || reason.startsWith(k.rule.reason))) k.ids.push(d.id);
    }
  }
  return kept.map(({ rule, ids }) => {
    const value = rules[rule.key];
    const text = typeof value === 'object' && value !== null && 'text' in value ? String(value.text) : String(value);
    const missing = ids.filter((id) => !existing.has(id));
    const check: RetentionCheck = { rule: `${rule.name} ${text}`, expected: ids.length, present: ids.length - missing.length, ok: missing.length === 0 };
    if (missing.length > 0) check.missing = missing.slice(0, MISSING_SHOWN);
    return check;
  });
}
