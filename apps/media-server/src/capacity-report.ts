/**
 * `hoard report` (GET /v1/report): per job, what is kept and what it costs; per store,
 * what the bucket holds; and capacity: the growth trend of stored bytes over the last 30
 * days, when the repository reaches a quota, and the classic planning formula next to
 * the measured figures. The math is in capacity.ts; definitions in docs/cli.md.
 *
 * Measured store figures come from the bucket's index segments and manifests
 * (repositoryStats, as `hoard stats`); history comes from the catalog's session records.
 */
import type { Catalog, RunRecord, SessionRecord, SnapshotRecord } from '@hoard/catalog';
import { repositoryStats, type Repository } from '@hoard/repository';
import type { TargetResult } from '@hoard/protocol';
import { classicEstimate, classicInputs, dailyCumulative, fillDate, trendOf, type ClassicInputs, type KeptBackup, type Trend } from './capacity.js';
import type { CapacityReport } from '@hoard/protocol';
import { jobRuns, policiesByJob, runKind, snapshotRuns } from './job-history.js';

export type { CapacityReport };

export const TREND_DAYS = 30;

/** The report's records are the API's (one declaration: @hoard/protocol api/replies.ts). */
export type JobReport = CapacityReport['jobs'][number];
export type StoreCapacity = CapacityReport['stores'][number];

interface RunFields {
  targets?: TargetResult[];
}

const round = (n: number, digits = 4): number => Math.round(n * 10 ** digits) / 10 ** digits;

export async function buildReport(
  catalog: Catalog,
  repo: Repository,
  options: { now: Date; quotaBytes?: number; growthYears: number },
): Promise<CapacityReport> {
  const now = options.now.getTime();
  const policies = await policiesByJob(catalog);
  const allSessions = await catalog.listSessions({});
  const jobs: JobReport[] = [];
  for (const job of await catalog.listJobs()) {
    const runs = await jobRuns(catalog, job); // newest first
    const kept = await catalog.listSnapshots({ job: job.name, newestFirst: true });
    const sessions = allSessions.filter((s) => s.job === job.name);
    const success = runs.find((r) => r.state === 'succeeded');
    const failure = runs.find((r) => r.state === 'failed');
    const committed = sessions.filter((s) => s.state === 'committed');
    const storedBytesWritten = sessions.reduce((n, s) => n + s.bytesStored, 0);
    const logicalBytesKept = kept.reduce((n, s) => n + s.logicalBytes, 0);
    const inputs = roundInputs(
      classicInputs(
        keptBackups(kept, sessions, runs),
        incrementalBytesNew(runs),
        committed.reduce((n, s) => n + s.bytesStored, 0),
        committed.reduce((n, s) => n + s.bytesNew, 0),
        options.growthYears,
      ),
    );
    jobs.push({
      job: job.name,
      agent: job.agent ?? null,
      policy: policies.get(job.name)?.name ?? null,
      store: job.store ?? 'global',
      lastSuccess: success ? { run: success.id, at: success.finishedAt ?? success.createdAt } : null,
      lastFailure: failure ? { run: failure.id, at: failure.finishedAt ?? failure.createdAt, error: failure.error ?? null } : null,
      snapshotsKept: kept.length,
      logicalBytesKept,
      newestLogicalBytes: kept[0]?.logicalBytes ?? 0,
      storedBytesWritten,
      dedupFactor: storedBytesWritten > 0 ? round(logicalBytesKept / storedBytesWritten, 2) : null,
      classic: { inputs, bytes: Math.round(classicEstimate(inputs)) },
    });
  }
  jobs.sort((a, b) => a.job.localeCompare(b.job));

  const stats = await repositoryStats(repo);
  const events = (sessions: readonly SessionRecord[]) => sessions.map((s) => ({ at: Date.parse(s.finishedAt ?? s.startedAt), bytes: s.bytesStored }));
  const stores: StoreCapacity[] = stats.stores.map((s) => ({
    name: s.name,
    id: s.id,
    scope: s.scope.kind === 'job' ? `job:${s.scope.job}` : 'global',
    snapshots: s.snapshots,
    logicalBytes: s.logicalBytes,
    uniqueBytes: s.uniqueBytes,
    storedBytes: s.storedBytes,
    dedupFactor: round(s.dedupFactor, 2),
    compressionRatio: round(s.compressionRatio, 2),
    trend: roundTrend(trendOf(dailyCumulative(events(allSessions.filter((x) => x.store === s.id)), now, TREND_DAYS))),
  }));

  const history = dailyCumulative(events(allSessions), now, TREND_DAYS);
  const trend = roundTrend(trendOf(history));
  const quota = options.quotaBytes;
  let fill: CapacityReport['capacity']['fill'];
  if (quota === undefined) fill = { status: 'no-quota', at: null, days: null };
  else if (stats.totals.storedBytes < quota && !trend) fill = { status: 'no-trend', at: null, days: null };
  else {
    const f = fillDate(stats.totals.storedBytes, trend?.bytesPerDay ?? 0, quota, now);
    fill = {
      status: f.status,
      at: f.status === 'never' ? null : f.at.toISOString(),
      days: f.status === 'date' ? round(f.days, 1) : f.status === 'full' ? 0 : null,
    };
  }
  const classicBytes = jobs.reduce((n, j) => n + j.classic.bytes, 0);
  return {
    generatedAt: options.now.toISOString(),
    jobs,
    stores,
    capacity: {
      storedBytes: stats.totals.storedBytes,
      logicalBytes: stats.totals.logicalBytes,
      dedupFactor: round(stats.totals.dedupFactor, 2),
      trendDays: TREND_DAYS,
      history,
      trend,
      quotaBytes: quota ?? null,
      fill,
      growthYears: options.growthYears,
      classicBytes,
      classicOverMeasured: stats.totals.storedBytes > 0 ? round(classicBytes / stats.totals.storedBytes, 2) : null,
    },
  };
}

/** Kept snapshots grouped into backups: the snapshots one run made, summed. */
function keptBackups(kept: readonly SnapshotRecord[], sessions: readonly SessionRecord[], runs: readonly RunRecord[]): KeptBackup[] {
  const byRun = snapshotRuns(kept, sessions, runs);
  const groups = new Map<string, KeptBackup>();
  for (const snap of kept) {
    const run = byRun.get(snap.id);
    const key = run ? `run:${run.id}` : `snapshot:${snap.id}`;
    const at = Date.parse(snap.startedAt);
    const group = groups.get(key);
    if (group) {
      group.logicalBytes += snap.logicalBytes;
      group.at = Math.min(group.at, at);
    } else groups.set(key, { at, full: run ? runKind(run).full : false, logicalBytes: snap.logicalBytes });
  }
  return [...groups.values()];
}

/** Bytes new of each succeeded incremental run, leaving out the job's first run (it stored everything). */
function incrementalBytesNew(runsNewestFirst: readonly RunRecord[]): number[] {
  const done = runsNewestFirst.filter((r) => r.state === 'succeeded').reverse();
  return done
    .slice(1)
    .filter((r) => !runKind(r).full)
    .map((r) => ((r.result ?? {}) as RunFields).targets?.reduce((n, t) => n + (t.totals?.bytesNew ?? 0), 0) ?? 0);
}

function roundInputs(i: ClassicInputs): ClassicInputs {
  return {
    ...i,
    incremental: Math.round(i.incremental),
    incrementalsPerFull: round(i.incrementalsPerFull),
    growth: round(i.growth),
    compression: round(i.compression),
  };
}

function roundTrend(t: Trend | undefined): Trend | null {
  return t ? { bytesPerDay: Math.round(t.bytesPerDay), r2: round(t.r2), days: t.days } : null;
}
