/**
 * `hoard prune --repo R --job J [--source S] --keep-... [--dry-run] [--json]`: applies a
 * retention policy to one job's snapshots (RetentionPlan) and forgets the rest. Storage is
 * given back by `hoard gc` afterwards: forgetting only deletes manifests.
 */
import { parseRetentionRules, pruneJob, RetentionRuleError, validateJobName, type RetentionRules } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { renderTable } from '../table.js';
import { localTime } from '../time.js';

export interface PruneCommandOptions extends RepoOptions {
  job?: string;
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

/** One line of a prune plan, as the repository and the server both report it. */
export interface PrunePlanRow {
  id: string;
  key?: string;
  source: string;
  startedAt: string;
  keep: boolean;
  reasons: string[];
}

export interface PrunePlan {
  job: string;
  dryRun: boolean;
  kept: number;
  forgotten: number;
  snapshots: PrunePlanRow[];
}

export function prunePlanJson(plan: PrunePlan): Record<string, unknown> {
  return {
    job: plan.job,
    dryRun: plan.dryRun,
    kept: plan.kept,
    forgotten: plan.forgotten,
    snapshots: plan.snapshots.map((s) => ({ id: s.id, key: s.key ?? null, source: s.source, startedAt: s.startedAt, keep: s.keep, reasons: s.reasons })),
  };
}

/** The plan as a table: every snapshot, what happens to it, and which rules keep it. */
export function printPrunePlan(plan: PrunePlan, out: (line: string) => void, gcHint: string): void {
  if (plan.snapshots.length === 0) {
    out(`job ${plan.job} has no snapshots; nothing to do`);
    return;
  }
  out(
    renderTable(
      ['id', 'started (local)', 'source', 'action', 'kept by'],
      plan.snapshots.map((s) => [s.id, localTime(s.startedAt), s.source, s.keep ? 'keep' : plan.dryRun ? 'would forget' : 'forget', s.reasons.join(', ')]),
    ),
  );
  out(
    `${plan.dryRun ? 'dry run: would keep' : 'kept'} ${plan.kept}, ${plan.dryRun ? 'would forget' : 'forgot'} ${plan.forgotten} snapshot(s) of job ${plan.job}` +
      (plan.forgotten > 0 && !plan.dryRun ? `; ${gcHint}` : ''),
  );
}

export async function runPrune(options: PruneCommandOptions, out: (line: string) => void): Promise<void> {
  if (!options.job) throw new UsageError('--job is required with --repo: the job whose snapshots are pruned (with --server, policies give the rules)');
  validateJobName(options.job);
  const policy = rules(options);
  const repo = await openRepository(options, false);
  let result;
  try {
    result = await pruneJob(repo, options.job, policy, {
      source: options.source,
      dryRun: options.dryRun,
      onDamaged: (_key, err) => process.stderr.write(`hoard: warning: ${err.message}; it is left alone (run \`hoard verify\`)\n`),
    });
  } catch (err) {
    if (err instanceof RetentionRuleError) throw new UsageError(err.message);
    throw err;
  }
  const plan: PrunePlan = {
    job: options.job,
    dryRun: result.dryRun,
    kept: result.kept,
    forgotten: result.forgotten,
    snapshots: result.decisions.map((d) => ({
      id: d.snapshot.id,
      key: d.snapshot.key,
      source: d.snapshot.meta.source.name,
      startedAt: d.snapshot.meta.startedAt,
      keep: d.keep,
      reasons: d.reasons,
    })),
  };
  if (options.json) return out(JSON.stringify(prunePlanJson(plan)));
  if (plan.snapshots.length === 0 && options.source !== undefined) return out(`job ${options.job} has no snapshots of source ${options.source}; nothing to do`);
  printPrunePlan(plan, out, 'run `hoard gc` to free the space they alone used');
}

export interface ProtectOptions {
  job?: string;
  protect?: string;
  unprotect?: string;
  json?: boolean;
}

/** What `--protect ID` / `--unprotect ID` asks for, checked: the job, the snapshot id (or prefix) and the state wanted. */
export function protectRequest(options: ProtectOptions): { job: string; id: string; protect: boolean } {
  if (options.protect !== undefined && options.unprotect !== undefined) throw new UsageError('give either --protect or --unprotect, not both');
  if (!options.job) throw new UsageError('--protect and --unprotect need --job: snapshot ids are looked up within a job');
  validateJobName(options.job);
  return { job: options.job, id: (options.protect ?? options.unprotect)!, protect: options.protect !== undefined };
}

/** The state a snapshot's protection is in now, with --repo and --server alike. */
export function printProtection(
  result: { id: string; key: string; job: string; protected: boolean },
  json: boolean | undefined,
  out: (line: string) => void,
): void {
  if (json) out(JSON.stringify({ id: result.id, key: result.key, job: result.job, protected: result.protected }));
  else
    out(
      `snapshot ${result.id} of job ${result.job} is ${result.protected ? 'protected: prune keeps it whatever the policy says' : 'unprotected: retention applies to it again'}`,
    );
}

/** `hoard snapshots --repo R --job J --protect ID / --unprotect ID`: the marker in the repository. */
export async function runProtect(options: RepoOptions & ProtectOptions, out: (line: string) => void): Promise<void> {
  const { job, id, protect } = protectRequest(options);
  const repo = await openRepository(options, false);
  const snapshot = await repo.findSnapshot(job, { id });
  if (protect) await repo.protectSnapshot(snapshot.key);
  else await repo.unprotectSnapshot(snapshot.key);
  printProtection({ id: snapshot.id, key: snapshot.key, job, protected: protect }, options.json, out);
}
