/**
 * Jobs as admins see them (`hoard job list`, `hoard job history`; docs/cli.md, "job"):
 * each job with its agent, policy, last run, last success, next scheduled run and kept
 * snapshots; and a job's history: its runs (backups by an agent) and its tasks (verify,
 * prune, gc run by the server) interleaved by time, newest first.
 *
 * Everything comes from the catalog; nothing here changes it.
 */
import type { Catalog, JobRecord, RunRecord, SessionRecord, SnapshotRecord, TaskRecord } from '@hoard/catalog';
import {
  RequestError,
  dedupRatio,
  nextPolicyRuns,
  validatePolicy,
  type HistoryEntry,
  type JobSummary,
  type Policy,
  type RunHooks,
  type RunView,
  type TargetResult,
} from '@hoard/protocol';
import { policyJobName } from './policy-scheduler.js';
import type { RunBoard } from './run-board.js';

// The answers' shapes are declared once, as schemas, in @hoard/protocol (api/replies.ts).
export type { HistoryEntry, HistoryKind, JobSummary } from '@hoard/protocol';

/** Fields of a run's result this module reads (see run-board.ts). */
interface RunResultFields {
  full?: boolean;
  manual?: boolean;
  targets?: TargetResult[];
}

/** Policies by the jobs they define. */
export async function policiesByJob(catalog: Catalog): Promise<Map<string, Policy>> {
  const out = new Map<string, Policy>();
  for (const record of await catalog.listPolicies()) {
    let policy: Policy;
    try {
      policy = validatePolicy(record.document);
    } catch {
      continue;
    }
    for (const agent of policy.sources.flatMap((s) => s.agents)) out.set(policyJobName(policy, agent), policy);
  }
  return out;
}

/** Runs of one job, newest first (runs are indexed by agent, so those of the job's agent). */
export async function jobRuns(catalog: Catalog, job: JobRecord): Promise<RunRecord[]> {
  const runs = await catalog.listRuns(job.agent ? { agent: job.agent, newestFirst: true } : { newestFirst: true });
  return runs.filter((r) => r.job === job.name);
}

/** A policy's job as the scheduler records it when it first dispatches a run. */
function policyJob(policy: Policy, name: string): JobRecord | undefined {
  for (const entry of policy.sources) {
    for (const agent of entry.agents) {
      if (policyJobName(policy, agent) === name)
        return { name, agent, sources: entry.specs, store: policy.store.scope === 'global' ? 'global' : name, knownSources: [], createdAt: '', updatedAt: '' };
    }
  }
  return undefined;
}

/** Every job: those in the catalog, and those a policy defines that have not run yet. */
export async function listJobSummaries(catalog: Catalog, now: Date): Promise<JobSummary[]> {
  const policies = await policiesByJob(catalog);
  const out: JobSummary[] = [];
  const jobs = await catalog.listJobs();
  const known = new Set(jobs.map((j) => j.name));
  for (const [name, policy] of policies) if (!known.has(name)) jobs.push(policyJob(policy, name)!);
  for (const job of jobs) {
    const runs = await jobRuns(catalog, job);
    const snapshots = await catalog.listSnapshots({ job: job.name, newestFirst: true });
    const policy = policies.get(job.name);
    const next = policy ? nextPolicyRuns(policy, now, 1)[0] : undefined;
    const last = runs[0];
    const success = runs.find((r) => r.state === 'succeeded');
    const newest = snapshots[0];
    out.push({
      job: job.name,
      agent: job.agent ?? null,
      policy: policy?.name ?? null,
      store: job.store ?? 'global',
      sources: job.sources,
      lastRun: last ? { id: last.id, state: last.state, at: last.finishedAt ?? last.startedAt ?? last.createdAt } : null,
      lastSuccess: success ? { id: success.id, at: success.finishedAt ?? success.createdAt } : null,
      nextRun: next ? { at: next.at.toISOString(), kind: next.kind } : null,
      snapshots: snapshots.length,
      newestSnapshot: newest ? { id: newest.id, startedAt: newest.startedAt, logicalBytes: newest.logicalBytes } : null,
    });
  }
  return out.sort((a, b) => a.job.localeCompare(b.job));
}

export function runKind(run: RunRecord): { kind: 'full' | 'incremental' | 'manual'; full: boolean } {
  const r = (run.result ?? {}) as RunResultFields;
  const full = r.full === true;
  return { kind: r.manual ? 'manual' : full ? 'full' : 'incremental', full };
}

export function runEntry(run: RunRecord): HistoryEntry {
  const targets = ((run.result ?? {}) as RunResultFields).targets ?? [];
  const withTotals = targets.filter((t) => t.totals);
  const sum = (f: (t: TargetResult) => number): number | null => (withTotals.length ? withTotals.reduce((n, t) => n + f(t), 0) : null);
  const bytesRead = sum((t) => t.totals!.bytesRead);
  const bytesStored = sum((t) => t.totals!.bytesStored);
  const bytesNew = sum((t) => t.totals!.bytesNew);
  const logical = sum((t) => t.snapshot?.logicalBytes ?? t.totals!.bytesRead);
  const startedAt = run.startedAt ?? run.createdAt;
  const { kind, full } = runKind(run);
  return {
    type: 'run',
    id: run.id,
    kind,
    full,
    state: run.state,
    startedAt,
    finishedAt: run.finishedAt ?? null,
    durationMs: run.finishedAt ? Date.parse(run.finishedAt) - Date.parse(startedAt) : null,
    bytesRead,
    bytesNew,
    bytesStored,
    dedupRatio: logical === null || bytesNew === null ? null : dedupRatio(logical, bytesNew),
    snapshots: targets.flatMap((t) => (t.snapshot ? [t.snapshot.id] : [])),
    error: run.error ?? null,
    summary: null,
  };
}

export function taskEntry(task: TaskRecord): HistoryEntry {
  return {
    type: 'task',
    id: task.id,
    kind: task.kind,
    state: task.state,
    startedAt: task.startedAt,
    finishedAt: task.finishedAt ?? null,
    durationMs: task.finishedAt ? Date.parse(task.finishedAt) - Date.parse(task.startedAt) : null,
    bytesRead: null,
    bytesNew: null,
    bytesStored: null,
    dedupRatio: null,
    snapshots: [],
    error: task.error ?? null,
    summary: task.summary ?? null,
  };
}

/** The job's runs and tasks, newest first, at most `limit`. */
export async function jobHistory(catalog: Catalog, job: JobRecord, limit: number): Promise<HistoryEntry[]> {
  const runs = (await jobRuns(catalog, job)).slice(0, limit);
  const tasks = await catalog.listTasks({ job: job.name, newestFirst: true, limit });
  const entries = [...runs.map(runEntry), ...tasks.map(taskEntry)];
  entries.sort((a, b) => b.startedAt.localeCompare(a.startedAt) || b.id.localeCompare(a.id));
  return entries.slice(0, limit);
}

/** Committed snapshots of the job mapped to the runs that made them (via the sessions). */
export function snapshotRuns(snapshots: readonly SnapshotRecord[], sessions: readonly SessionRecord[], runs: readonly RunRecord[]): Map<string, RunRecord> {
  const runBySession = new Map<string, RunRecord>();
  for (const run of runs) for (const s of run.sessions) runBySession.set(s, run);
  const sessionBySnapshot = new Map<string, string>();
  for (const s of sessions) if (s.snapshot) sessionBySnapshot.set(s.snapshot, s.id);
  const out = new Map<string, RunRecord>();
  for (const snap of snapshots) {
    const session = snap.sessionId ?? sessionBySnapshot.get(snap.id);
    const run = session ? runBySession.get(session) : undefined;
    if (run) out.set(snap.id, run);
  }
  return out;
}

/**
 * Queues a run of an existing job now (`hoard job run`, POST /v1/jobs/J/run): on its
 * agent, with the sources and hooks of its policy's entry for that agent when a policy
 * defines the job, else the job's own sources and the hooks of its newest run.
 */
export async function queueJobRun(catalog: Catalog, runs: RunBoard, name: string, full: boolean): Promise<RunView> {
  const policy = (await policiesByJob(catalog)).get(name);
  let job = await catalog.getJob(name);
  if (!job && policy) {
    // A policy's job that has not run yet: recorded as the scheduler would.
    const defined = policyJob(policy, name)!;
    job = await catalog.putJob({ name, agent: defined.agent, sources: defined.sources, store: defined.store });
  }
  if (!job) throw new RequestError('job_not_found', `no job ${name} (\`hoard job list\` shows them)`);
  if (!job.agent) throw new RequestError('conflict', `job ${name} is bound to no agent; run it once with \`hoard run --agent A --job ${name} --source ...\``);
  const agent = await catalog.getAgent(job.agent);
  if (!agent || agent.revokedAt) throw new RequestError('conflict', `job ${name} belongs to agent ${job.agent}, which is ${agent ? 'revoked' : 'gone'}`);
  const entry = policy?.sources.find((s) => s.agents.includes(job.agent!));
  const [newest] = await jobRuns(catalog, job);
  const hooks = entry ? entry.hooks : ((newest?.result ?? {}) as { hooks?: RunHooks }).hooks;
  const sources = entry ? entry.specs : job.sources;
  return runs.create(job.agent, name, sources, hooks, full, undefined, { manual: true });
}
