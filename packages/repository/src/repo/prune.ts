/**
 * Applying a retention policy to one job: the plan (which snapshot stays and which rule
 * keeps it) and the forgetting. `hoard prune --repo` and the media server's prune (by
 * hand or scheduled by a policy) both call this, so they decide alike.
 *
 * Retention is planned per source: a job that backs up several VMs keeps `keep-daily 7`
 * of *each* VM, as restic groups by host and paths. Otherwise one busy source would
 * crowd every other source's snapshots out of the slots.
 */
import type { ObjectFormatError } from '../format-error.js';
import { planRetention, type RetentionDecision, type RetentionRules } from '@hoard/retention';
import type { Repository, SnapshotInfo } from './repository.js';

export interface PruneDecision extends RetentionDecision {
  snapshot: SnapshotInfo;
}

export interface PruneResult {
  job: string;
  dryRun: boolean;
  /** Every snapshot considered, newest first within each source, sources by name. */
  decisions: PruneDecision[];
  kept: number;
  forgotten: number;
}

export interface PruneOptions {
  /** Only this source's snapshots. */
  source?: string;
  dryRun?: boolean;
  onDamaged?: (key: string, error: ObjectFormatError) => void;
}

export async function pruneJob(repo: Repository, job: string, rules: RetentionRules, options: PruneOptions = {}): Promise<PruneResult> {
  let snapshots = await repo.snapshots(job, { onDamaged: options.onDamaged });
  if (options.source !== undefined) snapshots = snapshots.filter((s) => s.meta.source.name === options.source);
  const protectedKeys = await repo.protectedSnapshots(job);
  const bySource = new Map<string, SnapshotInfo[]>();
  for (const s of snapshots) {
    const list = bySource.get(s.meta.source.name) ?? [];
    list.push(s);
    bySource.set(s.meta.source.name, list);
  }
  const decisions: PruneDecision[] = [];
  for (const source of [...bySource.keys()].sort()) {
    const group = bySource.get(source)!;
    const byKey = new Map(group.map((s) => [s.key, s]));
    // A snapshot's place in time is when it started: that is the point in time it holds.
    const plan = planRetention(
      group.map((s) => ({ id: s.key, time: s.meta.startedAt, protected: protectedKeys.has(s.key) })),
      rules,
    );
    for (const d of plan) decisions.push({ ...d, snapshot: byKey.get(d.id)! });
  }
  // With S3 Object Lock a manifest cannot be deleted before its retention date: the
  // snapshot is kept, saying until when, and a prune after that date forgets it.
  const locked = await repo.lockedObjects(decisions.filter((d) => !d.keep).map((d) => d.snapshot.key));
  for (const d of decisions) {
    const until = locked.get(d.snapshot.key);
    if (!d.keep && until) {
      d.keep = true;
      d.reasons = [`locked until ${until.toISOString()}`];
    }
  }
  const forget = decisions.filter((d) => !d.keep).map((d) => d.snapshot.key);
  if (!options.dryRun) await repo.forgetSnapshots(forget);
  return { job, dryRun: options.dryRun === true, decisions, kept: decisions.length - forget.length, forgotten: forget.length };
}
