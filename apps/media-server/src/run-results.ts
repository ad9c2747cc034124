/**
 * What the server records when an agent finishes a run. The agent's word is not taken for
 * what the server saw itself (issue 15, problem 6): each target's snapshot and byte counts
 * come from the server's own session records of that run. A target that claims a snapshot
 * no session of this run committed is recorded as failed, and so is the run; numbers the
 * agent sent for snapshots and totals are ignored (replaced), never stored.
 * docs/protocol.md, "What the server checks at finish".
 */
import type { Catalog, RunRecord, SessionRecord } from '@hoard/catalog';
import type { RunBoard } from './run-board.js';
import { dedupRatio, type FinishRunRequest, type SessionTotals, type RunView, type SourceKind, type TargetResult } from '@hoard/protocol';

export async function checkFinishReport(catalog: Catalog, run: RunRecord, report: FinishRunRequest): Promise<FinishRunRequest> {
  // A restore run writes no snapshot and has no sessions: its targets describe the agent's
  // own disk, which the server cannot see.
  if ((run.result as { restore?: unknown } | undefined)?.restore !== undefined) return report;
  const committed = new Map<string, SessionRecord>();
  for (const id of run.sessions) {
    const session = await catalog.getSession(id);
    if (session && session.state === 'committed' && session.snapshot !== undefined && session.job === run.job && session.agent === run.agent)
      committed.set(session.snapshot, session);
  }
  const problems: string[] = [];
  const targets: TargetResult[] = [];
  for (const target of report.targets) {
    const { snapshot: claimed, totals: _totals, dedupRatio: _ratio, ...rest } = target;
    if (claimed === undefined) {
      if (target.ok) {
        const error = 'the agent reported it backed up, without a snapshot';
        problems.push(`${target.name}: ${error}`);
        targets.push({ ...rest, ok: false, error });
      } else targets.push(rest);
      continue;
    }
    const session = committed.get(claimed.id);
    if (!session) {
      const error = `the agent reported snapshot ${claimed.id}, but no session of run ${run.id} committed it (the server's records); not counted`;
      problems.push(`${target.name}: ${error}`);
      targets.push({ ...rest, ok: false, error });
      continue;
    }
    committed.delete(claimed.id); // one target per snapshot
    targets.push({ ...rest, ...(await committedTarget(catalog, run.job, session)) });
  }
  if (problems.length === 0) return { ...report, targets };
  const error = [report.error, ...problems].filter((e) => e !== undefined).join('; ');
  return { state: report.state === 'succeeded' ? 'failed' : report.state, targets, error };
}

/**
 * What a committed session of a run contributes to the run's record: its snapshot as the
 * catalog holds it and the server's own byte counts. Used for the agent's finish report and
 * for a snapshot committed after the server had ended the run (run-board.ts).
 */
export async function committedTarget(
  catalog: Catalog,
  job: string,
  session: SessionRecord,
): Promise<Pick<TargetResult, 'snapshot' | 'dedupRatio' | 'totals'>> {
  const record = session.snapshot === undefined ? undefined : await catalog.getSnapshot(job, session.snapshot);
  const totals: SessionTotals = {
    bytesRead: session.bytesRead,
    bytesSent: session.bytesSent,
    bytesNew: session.bytesNew,
    bytesStored: session.bytesStored,
    chunks: session.chunks,
    chunksNew: session.chunksNew,
  };
  if (!record) return { totals };
  return {
    snapshot: {
      id: record.id,
      key: record.key,
      job: record.job,
      source: { name: record.source.name, kind: record.source.kind as SourceKind },
      startedAt: record.startedAt,
      finishedAt: record.finishedAt,
      logicalBytes: record.logicalBytes,
      store: record.store,
    },
    dedupRatio: dedupRatio(record.logicalBytes, session.bytesNew),
    totals,
  };
}

/**
 * A run the server ended (its lease passed, its agent restarted) may have committed
 * snapshots: the agent died between a commit and its finish report, or a commit's last
 * writes were still under way when the lease ran out. Each such snapshot is whole, so the
 * run's record names it rather than leaving a failed run beside a snapshot nothing
 * mentions. Called when the server ends a run and when a session of an ended run commits;
 * whichever comes second finds the snapshot there already.
 */
export async function recordLateSnapshots(catalog: Catalog, runs: RunBoard, runId: string): Promise<RunView | undefined> {
  const run = await catalog.getRun(runId);
  if (!run || run.state === 'queued' || run.state === 'running') return undefined;
  const targets: TargetResult[] = [];
  for (const id of run.sessions) {
    const session = await catalog.getSession(id);
    if (session?.state !== 'committed' || session.snapshot === undefined) continue;
    const durationMs = session.finishedAt ? Math.max(0, Date.parse(session.finishedAt) - Date.parse(session.startedAt)) : 0;
    targets.push({ name: session.source, ok: true, durationMs, ...(await committedTarget(catalog, run.job, session)) });
  }
  return targets.length === 0 ? undefined : runs.addLateTargets(runId, targets);
}
