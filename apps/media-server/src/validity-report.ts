/**
 * The backup-validity report (GET /v1/reports/validity; the record is @hoard/protocol's
 * ValidityReport): for a period, per job, the runs planned by its policy's schedule vs
 * those run and succeeded, day by day; the last good snapshot; whether the snapshots its
 * retention asks for exist; verify coverage and findings; the restore drills. Built from
 * the catalog (runs, tasks, snapshots, policies) and the repository's figures.
 *
 * Days are UTC days. Retention compliance is exact (retention-compliance.ts): the
 * snapshots the policy's retention keeps, planned by @hoard/retention over every snapshot
 * the job made, against those that exist.
 */
import type { Catalog, RunRecord, SessionRecord, TaskRecord } from '@hoard/catalog';
import {
  nextPolicyRuns,
  policyRetentionRules,
  type DrillDatabase,
  type JobValidity,
  type Policy,
  type StoreHistory,
  type ValidityReport,
} from '@hoard/protocol';
import type { Repository } from '@hoard/repository';
import { buildReport } from './capacity-report.js';
import { DAY_MS, dailyCumulative } from './capacity.js';
import { jobRuns, policiesByJob } from './job-history.js';
import { retentionCompliance, type MadeSnapshot } from './retention-compliance.js';

const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** Fire times counted at most per job (hourly for 90 days is 2160). */
const MAX_PLANNED = 20_000;

export async function buildValidityReport(
  catalog: Catalog,
  repo: Repository,
  options: { now: Date; days: number; server: string; quotaBytes?: number },
): Promise<ValidityReport> {
  const until = options.now.getTime();
  const since = until - options.days * DAY_MS;
  const policies = await policiesByJob(catalog);
  const policyCreated = new Map((await catalog.listPolicies()).map((p) => [p.name, Date.parse(p.createdAt)]));
  const tasks = (await catalog.listTasks({})).filter((t) => Date.parse(t.startedAt) >= since && Date.parse(t.startedAt) <= until);
  const jobs: JobValidity[] = [];
  for (const job of await catalog.listJobs()) {
    const policy = policies.get(job.name);
    const allRuns = (await jobRuns(catalog, job)).filter(isBackup);
    const runs = allRuns.filter((r) => inPeriod(r.createdAt, since, until));
    const snapshots = await catalog.listSnapshots({ job: job.name, newestFirst: true });
    const from = Math.max(since, policy ? (policyCreated.get(policy.name) ?? since) : since);
    const planned = policy ? plannedRuns(policy, from, until) : [];
    const finished = runs.filter((r) => r.state !== 'queued' && r.state !== 'running');
    const count = (state: string) => finished.filter((r) => r.state === state).length;
    const verifies = tasks.filter((t) => t.kind === 'verify' && (t.job === undefined || t.job === job.name) && t.state !== 'running');
    const drills = tasks.filter((t) => t.kind === 'drill' && t.job === job.name && t.state !== 'running');
    const lastVerify = newest(verifies);
    const lastDrill = newest(drills);
    const rules = policy ? policyRetentionRules(policy) : undefined;
    const made: MadeSnapshot[] = [...snapshots.map((s) => ({ id: s.id, source: s.source.name, startedAt: s.startedAt })), ...runSnapshots(allRuns)];
    const retention = rules ? retentionCompliance(rules, made, new Set(snapshots.map((s) => s.id))) : [];
    const entry: JobValidity = {
      job: job.name,
      policy: policy?.name ?? null,
      agent: job.agent ?? null,
      planned: planned.length,
      runs: finished.length,
      succeeded: count('succeeded'),
      failed: count('failed'),
      cancelled: count('cancelled'),
      successRate: finished.length > 0 ? Math.round((count('succeeded') / finished.length) * 1000) / 1000 : null,
      lastGood: snapshots[0] ? { snapshot: snapshots[0].id, at: snapshots[0].finishedAt, logicalBytes: snapshots[0].logicalBytes } : null,
      snapshotsKept: snapshots.length,
      days: dayStates(since, until, finished, planned),
      retention,
      verify: {
        runs: verifies.length,
        lastAt: lastVerify?.finishedAt ?? lastVerify?.startedAt ?? null,
        lastOk: lastVerify ? lastVerify.state === 'succeeded' : null,
        findings: verifies.reduce((n, t) => n + findingsOf(t), 0),
      },
      drills: {
        runs: drills.length,
        failed: drills.filter((t) => t.state === 'failed').length,
        last: lastDrill
          ? {
              at: lastDrill.finishedAt ?? lastDrill.startedAt,
              ok: lastDrill.state === 'succeeded',
              snapshot: (lastDrill.result as { snapshot?: string } | undefined)?.snapshot ?? null,
              bytes: (lastDrill.result as { bytes?: number } | undefined)?.bytes ?? null,
              ms: (lastDrill.result as { ms?: number } | undefined)?.ms ?? null,
              error: lastDrill.error ?? null,
              ...((lastDrill.result as { database?: DrillDatabase } | undefined)?.database
                ? { database: (lastDrill.result as { database: DrillDatabase }).database }
                : {}),
            }
          : null,
      },
      ok: true,
      problems: [],
    };
    entry.problems = problemsOf(entry, policy, until);
    entry.ok = entry.problems.length === 0;
    jobs.push(entry);
  }
  const capacityReport = await buildReport(catalog, repo, { now: options.now, quotaBytes: options.quotaBytes, growthYears: 1 });
  const capacity = capacityReport.capacity;
  const sessions = await catalog.listSessions({});
  const stores: StoreHistory[] = capacityReport.stores.map((store) => ({
    name: store.name,
    id: store.id,
    storedBytes: store.storedBytes,
    dedupFactor: store.dedupFactor,
    bytesPerDay: store.trend?.bytesPerDay ?? null,
    history: storeHistory(
      sessions.filter((x) => x.store === store.id),
      until,
      options.days,
    ),
  }));
  const history = dailyCumulative(
    sessions.map((s) => ({ at: Date.parse(s.finishedAt ?? s.startedAt), bytes: s.bytesStored })),
    until,
    options.days,
  ).map((p) => ({ day: p.day, storedBytes: p.cumulative }));
  return {
    generatedAt: options.now.toISOString(),
    since: new Date(since).toISOString(),
    until: options.now.toISOString(),
    server: options.server,
    jobs,
    storage: {
      storedBytes: capacity.storedBytes,
      logicalBytes: capacity.logicalBytes,
      dedupFactor: capacity.dedupFactor,
      history,
      quotaBytes: capacity.quotaBytes,
      fillAt: capacity.fill.at,
      fillDays: capacity.fill.days,
      bytesPerDay: capacity.trend?.bytesPerDay ?? null,
      stores,
    },
    ok: jobs.every((j) => j.ok),
  };
}

/**
 * A store's stored bytes and dedup at the end of each day (from its first session in the
 * period's window): stored bytes written, and logical bytes read / new bytes of its
 * committed sessions, each cumulative.
 */
function storeHistory(sessions: SessionRecord[], until: number, days: number): StoreHistory['history'] {
  const at = (s: SessionRecord) => Date.parse(s.finishedAt ?? s.startedAt);
  const series = (pick: (s: SessionRecord) => number, of: SessionRecord[]) =>
    new Map(
      dailyCumulative(
        of.map((s) => ({ at: at(s), bytes: pick(s) })),
        until,
        days,
      ).map((p) => [p.day, p.cumulative]),
    );
  const stored = dailyCumulative(
    sessions.map((s) => ({ at: at(s), bytes: s.bytesStored })),
    until,
    days,
  );
  const committed = sessions.filter((s) => s.state === 'committed');
  const read = series((s) => s.bytesRead, committed);
  const fresh = series((s) => s.bytesNew, committed);
  return stored.map((p) => {
    const n = fresh.get(p.day) ?? 0;
    return { day: p.day, storedBytes: p.cumulative, dedupFactor: n > 0 ? Math.round(((read.get(p.day) ?? 0) / n) * 100) / 100 : null };
  });
}

function isBackup(run: RunRecord): boolean {
  return (run.result as { restore?: unknown } | undefined)?.restore === undefined;
}

function inPeriod(iso: string, since: number, until: number): boolean {
  const at = Date.parse(iso);
  return at >= since && at <= until;
}

function newest(tasks: TaskRecord[]): TaskRecord | undefined {
  return [...tasks].sort((a, b) => b.startedAt.localeCompare(a.startedAt))[0];
}

function findingsOf(task: TaskRecord): number {
  return (task.result as { findings?: unknown[] } | undefined)?.findings?.length ?? 0;
}

/** The policy's fire times in (from, until]. */
function plannedRuns(policy: Policy, from: number, until: number): number[] {
  const out: number[] = [];
  let cursor = new Date(from);
  while (out.length < MAX_PLANNED) {
    const next = nextPolicyRuns(policy, cursor, 500);
    if (next.length === 0) break;
    for (const run of next) {
      const at = run.at.getTime();
      if (at > until) return out;
      out.push(at);
    }
    cursor = next[next.length - 1]!.at;
  }
  return out;
}

function dayStates(since: number, until: number, runs: RunRecord[], planned: number[]): JobValidity['days'] {
  const byDay = new Map<string, { ok: number; failed: number; planned: number }>();
  const at = (day: string) => {
    let d = byDay.get(day);
    if (!d) byDay.set(day, (d = { ok: 0, failed: 0, planned: 0 }));
    return d;
  };
  for (const r of runs) {
    const d = at(dayOf(Date.parse(r.startedAt ?? r.createdAt)));
    if (r.state === 'succeeded') d.ok++;
    else if (r.state === 'failed') d.failed++;
  }
  for (const p of planned) at(dayOf(p)).planned++;
  const out: JobValidity['days'] = [];
  for (let day = Math.floor(since / DAY_MS) + 1; day <= Math.floor(until / DAY_MS); day++) {
    const key = dayOf(day * DAY_MS);
    const d = byDay.get(key);
    const state = !d ? 'none' : d.ok > 0 && d.failed > 0 ? 'mixed' : d.ok > 0 ? 'ok' : d.failed > 0 ? 'failed' : d.planned > 0 ? 'missed' : 'none';
    out.push({ day: key, state });
  }
  return out;
}

/** The snapshots a job's runs recorded in their results (targets[].snapshot), pruned since or not. */
function runSnapshots(runs: RunRecord[]): MadeSnapshot[] {
  const out: MadeSnapshot[] = [];
  for (const r of runs) {
    const targets = (r.result as { targets?: { snapshot?: { id?: unknown; startedAt?: unknown; source?: { name?: unknown } } }[] } | undefined)?.targets;
    for (const t of targets ?? []) {
      const s = t.snapshot;
      if (typeof s?.id === 'string' && typeof s.startedAt === 'string' && typeof s.source?.name === 'string')
        out.push({ id: s.id, source: s.source.name, startedAt: s.startedAt });
    }
  }
  return out;
}

function problemsOf(j: JobValidity, policy: Policy | undefined, now: number): string[] {
  const out: string[] = [];
  if (!j.lastGood) out.push('no snapshot');
  const missed = j.days.filter((d) => d.state === 'missed').length;
  if (missed > 0) out.push(`${missed} day(s) with planned runs and none run`);
  if (j.failed > 0 && j.days.at(-1)?.state === 'failed') out.push('the last day with runs failed');
  if (policy?.alertAfter && j.lastGood && Date.parse(j.lastGood.at) < now - policy.alertAfter.ms)
    out.push(`no snapshot newer than alert-after ${policy.alertAfter.text}`);
  for (const r of j.retention)
    if (!r.ok) out.push(`${r.rule}: ${r.expected - r.present} of the ${r.expected} snapshot(s) it keeps are missing (${(r.missing ?? []).join(', ')})`);
  if (j.verify.findings > 0) out.push(`verify found ${j.verify.findings} problem(s)`);
  if (j.drills.last && !j.drills.last.ok) out.push(`the last restore drill failed: ${j.drills.last.error ?? 'unknown error'}`);
  return out;
}
