/**
 * `hoard prune --repo R --job J [--source S] --keep-... [--dry-run] [--json]`: applies a
 * retention policy to one job's snapshots (RetentionPlan) and forgets the rest. Storage is
 * given back by `hoard gc` afterwards: forgetting only deletes manifests.
 */
import { parseRetentionRules, planRetention, RetentionRuleError, validateJobName, type RetentionRules } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';
import { localTime } from './snapshots.js';

export interface PruneCommandOptions extends RepoOptions {
  job: string;
  source?: string;
  keepLast?: string;
  keepHourly?: string;
  keepDaily?: string;
  keepWeekly?: string;
  keepMonthly?: string;
  keepYearly?: string;
  keepWithin?: string;
  timezone?: string;
  dryRun?: boolean;
  json?: boolean;
}

function rules(options: PruneCommandOptions): RetentionRules {
  try {
    return parseRetentionRules({
      keepLast: options.keepLast,
      keepHourly: options.keepHourly,
      keepDaily: options.keepDaily,
      keepWeekly: options.keepWeekly,
      keepMonthly: options.keepMonthly,
      keepYearly: options.keepYearly,
      keepWithin: options.keepWithin,
      timeZone: options.timezone,
    });
  } catch (err) {
    if (err instanceof RetentionRuleError) throw new UsageError(`--${err.message}`);
    throw err;
  }
}

export async function runPrune(options: PruneCommandOptions, out: (line: string) => void): Promise<void> {
  validateJobName(options.job);
  const policy = rules(options);
  const repo = await openRepository(options, false);
  let snapshots = await repo.snapshots(options.job, {
    onDamaged: (key, err) => process.stderr.write(`hoard: warning: ${err.message}; it is left alone (run \`hoard verify\`)\n`),
  });
  if (options.source !== undefined) snapshots = snapshots.filter((s) => s.meta.source.name === options.source);
  const protectedKeys = await repo.protectedSnapshots(options.job);
  let plan;
  try {
    // Snapshots are placed in time by when they started: that is the point in time they hold.
    plan = planRetention(snapshots.map((s) => ({ id: s.key, time: s.meta.startedAt, protected: protectedKeys.has(s.key) })), policy);
  } catch (err) {
    if (err instanceof RetentionRuleError) throw new UsageError(err.message);
    throw err;
  }
  const byKey = new Map(snapshots.map((s) => [s.key, s]));
  const forget = plan.filter((d) => !d.keep).map((d) => d.id);
  if (!options.dryRun) await repo.forgetSnapshots(forget);
  if (options.json) {
    out(
      JSON.stringify({
        job: options.job,
        dry_run: options.dryRun === true,
        kept: plan.filter((d) => d.keep).length,
        forgotten: forget.length,
        snapshots: plan.map((d) => {
          const s = byKey.get(d.id)!;
          return { id: s.id, key: s.key, source: s.meta.source.name, started_at: s.meta.startedAt, keep: d.keep, reasons: d.reasons };
        }),
      }),
    );
    return;
  }
  if (plan.length === 0) {
    out(`job ${options.job} has no snapshots${options.source !== undefined ? ` of source ${options.source}` : ''}; nothing to do`);
    return;
  }
  out(
    renderTable(
      ['id', 'started (local)', 'source', 'action', 'kept by'],
      plan.map((d) => {
        const s = byKey.get(d.id)!;
        return [s.id, localTime(s.meta.startedAt), s.meta.source.name, d.keep ? 'keep' : options.dryRun ? 'would forget' : 'forget', d.reasons.join(', ')];
      }),
    ),
  );
  out(
    `${options.dryRun ? 'dry run: would keep' : 'kept'} ${plan.length - forget.length}, ${options.dryRun ? 'would forget' : 'forgot'} ${forget.length} snapshot(s) of job ${options.job}` +
      (forget.length > 0 && !options.dryRun ? '; run `hoard gc` to free the space they alone used' : ''),
  );
}

/** `hoard snapshots --protect ID / --unprotect ID` (needs --job). */
export async function runProtect(options: RepoOptions & { job?: string; protect?: string; unprotect?: string; json?: boolean }, out: (line: string) => void): Promise<void> {
  if (options.protect !== undefined && options.unprotect !== undefined) throw new UsageError('give either --protect or --unprotect, not both');
  if (!options.job) throw new UsageError('--protect and --unprotect need --job: snapshot ids are looked up within a job');
  const repo = await openRepository(options, false);
  const id = (options.protect ?? options.unprotect)!;
  const snapshot = await repo.findSnapshot(options.job, { id });
  if (options.protect !== undefined) await repo.protectSnapshot(snapshot.key);
  else await repo.unprotectSnapshot(snapshot.key);
  const state = options.protect !== undefined ? 'protected' : 'unprotected';
  if (options.json) out(JSON.stringify({ id: snapshot.id, key: snapshot.key, job: options.job, protected: options.protect !== undefined }));
  else out(`snapshot ${snapshot.id} of job ${options.job} is ${state}${options.protect !== undefined ? ': prune keeps it whatever the policy says' : ''}`);
}
