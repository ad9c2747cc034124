/**
 * Runs: work the server hands to agents. Agents pull (long-poll) rather than being called,
 * so they may sit behind NAT. A run is queued for one agent, claimed by that agent's next
 * poll, reported on while it runs, and finished by the agent's result. The catalog keeps
 * every run; this class adds the waiting: an agent's poll and an admin's "wait for the
 * result" both return as soon as there is something to say.
 */
import { randomBytes } from 'node:crypto';
import type { Catalog, RunRecord } from '@hoard/catalog';
import {
  RequestError,
  type FinishRunRequest,
  type RestoreRunSpec,
  type RunHooks,
  type RunLeaseAnswer,
  type RunProgress,
  type RunView,
  type TargetResult,
} from '@hoard/protocol';
import { agentRunLimitFromCatalog } from './policy-limits.js';

interface RunResult {
  hooks?: RunHooks;
  /** A full run: the agent reads everything again instead of referring to unchanged parts. */
  full?: boolean;
  /** A restore run: what to restore where (the snapshot pinned at queue time). */
  restore?: RestoreRunSpec;
  targets: TargetResult[];
  discovered: string[];
  progress?: RunProgress;
  /** Queued by an admin (`hoard run`, `hoard job run`), not by a policy's schedule. */
  manual?: boolean;
  /** An admin asked a running run to stop (`hoard job cancel`). */
  cancelRequestedAt?: string;
  /** Upload cap in bytes per second (the policy's limits.bandwidth). */
  bandwidth?: number;
}

/** How long a claimed run's lease lasts without a renewal (docs/protocol.md, "Leases"). */
export const DEFAULT_RUN_LEASE_MS = 60_000;

export class RunBoard {
  private readonly agentWaiters = new Map<string, Set<() => void>>();
  private readonly runWaiters = new Map<string, Set<() => void>>();
  readonly leaseMs: number;

  constructor(
    private readonly catalog: Catalog,
    options: { leaseMs?: number } = {},
  ) {
    this.leaseMs = options.leaseMs ?? DEFAULT_RUN_LEASE_MS;
  }

  async create(
    agent: string,
    job: string,
    sources: string[],
    hooks?: RunHooks,
    full?: boolean,
    restore?: RestoreRunSpec,
    origin?: { manual?: boolean },
    limits?: { bandwidth?: number },
  ): Promise<RunView> {
    const run: RunRecord = {
      id: timeOrderedId(new Date(), randomBytes(6).toString('hex')),
      agent,
      job,
      sources,
      state: 'queued',
      createdAt: new Date().toISOString(),
      sessions: [],
      result: {
        targets: [],
        discovered: [],
        hooks,
        ...(full ? { full } : {}),
        ...(restore ? { restore } : {}),
        ...(origin?.manual ? { manual: true } : {}),
        ...(limits?.bandwidth ? { bandwidth: limits.bandwidth } : {}),
      } satisfies RunResult,
    };
    await this.catalog.putRun(run);
    this.wake(this.agentWaiters, agent);
    return view(run);
  }

  async get(id: string): Promise<RunRecord> {
    const run = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id) ? await this.catalog.getRun(id) : undefined;
    if (!run) throw new RequestError('run_not_found', `no run ${id}`);
    return run;
  }

  async view(id: string): Promise<RunView> {
    return view(await this.get(id));
  }

  /**
   * The agent's next run, waiting up to `waitMs` for one to be queued, and for one of its
   * running runs to finish while it runs as many as its policies allow at once (the
   * smallest max-concurrent-jobs-per-agent of the policies naming it, default 1). The
   * answer tells the agent that number (`maxConcurrentRuns`).
   */
  async claim(agent: string, waitMs: number, signal: AbortSignal): Promise<RunView | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      // A poll whose client is gone must not take a run: nobody would start it.
      if (signal.aborted) return undefined;
      const maxRunning = await agentRunLimitFromCatalog(this.catalog, agent);
      const run = await this.catalog.claimNextRun(agent, undefined, { maxRunning, leaseMs: this.leaseMs });
      if (run) {
        this.wake(this.runWaiters, run.id);
        return { ...view(run), maxConcurrentRuns: maxRunning, leaseMs: this.leaseMs };
      }
      const left = deadline - Date.now();
      if (left <= 0 || signal.aborted) return undefined;
      await this.wait(this.agentWaiters, agent, left, signal);
    }
  }

  /** The run once it has finished, or as it is after `waitMs`. */
  async waitFinished(id: string, waitMs: number, signal: AbortSignal): Promise<RunView> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const run = await this.get(id);
      const left = deadline - Date.now();
      if (finished(run) || left <= 0 || signal.aborted) return view(run);
      await this.wait(this.runWaiters, id, left, signal);
    }
  }

  async addSession(id: string, session: string, discovered: string[]): Promise<void> {
    const run = await this.get(id);
    const result = (run.result ?? { targets: [], discovered: [] }) as RunResult;
    result.discovered = [...new Set([...result.discovered, ...discovered])];
    await this.catalog.putRun({ ...run, sessions: [...run.sessions, session], result });
  }

  /**
   * Records the agent's progress, which renews the run's lease too. The answer tells the
   * agent whether to stop: an admin asked to cancel the run while it was running (or it is
   * `cancelled` already).
   */
  async progress(id: string, agent: string, progress: RunProgress): Promise<{ cancel: boolean }> {
    const { cancel } = await this.renew(id, agent, progress);
    this.wake(this.runWaiters, id);
    return { cancel: cancel === true };
  }

  /**
   * Renews a running run's lease (a progress report renews it too), so the run outlives
   * `leaseMs` only while its agent is alive. A run the server has ended meanwhile (lease
   * passed, server restart, an admin's cancel of a silent agent) answers 409 with the
   * reason, and the agent stops working on it.
   */
  async renew(id: string, agent: string, progress?: RunProgress): Promise<RunLeaseAnswer> {
    const now = new Date();
    const leaseExpiresAt = new Date(now.getTime() + this.leaseMs).toISOString();
    const stored = await this.catalog.updateRun(this.checkId(id), (run) => {
      if (run.agent !== agent) throw new RequestError('forbidden', `run ${id} belongs to agent ${run.agent}`);
      // Cancelled (ended by an admin's cancel): nothing to renew, the agent is told to stop.
      if (run.state === 'cancelled') return undefined;
      if (run.state !== 'running') throw new RequestError('run_not_running', `run ${id} is ${run.state}, not running${run.error ? `: ${run.error}` : ''}`);
      const result = run.result as RunResult;
      return { ...run, leaseRenewedAt: now.toISOString(), leaseExpiresAt, result: progress ? { ...result, progress } : result };
    });
    if (!stored) throw new RequestError('run_not_found', `no run ${id}`);
    const cancel = stored.state === 'cancelled' || (stored.result as RunResult).cancelRequestedAt !== undefined;
    return { ok: true, leaseExpiresAt: stored.leaseExpiresAt ?? leaseExpiresAt, leaseMs: this.leaseMs, ...(cancel ? { cancel: true } : {}) };
  }

  /**
   * Ends a running run without its agent (a lease that passed, a session that expired, a
   * server restart, an agent that restarted without it), if `still` holds for the stored
   * run at that moment: a renewal or a finish that got there first wins. Returns the
   * ended run, or undefined when it was not ended.
   */
  async end(id: string, state: 'failed' | 'cancelled', error: string, still: (run: RunRecord) => boolean = () => true): Promise<RunView | undefined> {
    let ended = false;
    const stored = await this.catalog.updateRun(this.checkId(id), (run) => {
      if (run.state !== 'running' || !still(run)) return undefined;
      ended = true;
      return { ...run, state, finishedAt: new Date().toISOString(), error };
    });
    if (!stored || !ended) return undefined;
    this.wake(this.runWaiters, id);
    // The agent's concurrency slot is free: a claim waiting on it may go on.
    this.wake(this.agentWaiters, stored.agent);
    return view(stored);
  }

  /**
   * Adds snapshots that sessions of run `id` committed although the server ended the run
   * (run-results.ts, recordLateSnapshots). The run stays as it ended (it did not finish);
   * its record names each such snapshot and its error says so. Already listed snapshots
   * are skipped, so calling twice changes nothing.
   */
  async addLateTargets(id: string, targets: readonly TargetResult[]): Promise<RunView | undefined> {
    let added = false;
    const stored = await this.catalog.updateRun(this.checkId(id), (run) => {
      if (run.state === 'queued' || run.state === 'running') return undefined;
      const result = run.result as RunResult;
      const listed = new Set(result.targets.map((t) => t.snapshot?.id).filter((s) => s !== undefined));
      const late = targets.filter((t) => t.snapshot !== undefined && !listed.has(t.snapshot.id));
      if (late.length === 0) return undefined;
      added = true;
      const notes = late.map((t) => `snapshot ${t.snapshot!.id} of ${t.name} was committed although the run did not finish; it is whole and restores`);
      return { ...run, error: [run.error, ...notes].filter((e) => e !== undefined).join('; '), result: { ...result, targets: [...result.targets, ...late] } };
    });
    if (!stored || !added) return undefined;
    this.wake(this.runWaiters, id);
    return view(stored);
  }

  /**
   * Cancels a run (docs/protocol.md, "Cancelling a run"): a queued run becomes
   * `cancelled` at once; a running one records the request, and its agent, told so in
   * the answer to its next progress report, abandons its session and finishes the run
   * as `cancelled`. Cancelling a cancelled run changes nothing; a succeeded or failed
   * run is a 409.
   */
  async cancel(id: string, describeSilence: (run: RunRecord) => Promise<string>): Promise<RunView> {
    const now = new Date();
    const at = now.toISOString();
    const before = await this.get(id);
    // A running run whose lease has passed has no agent left to hear the request: it ends now.
    const silence = before.state === 'running' && leaseExpired(before, now) ? await describeSilence(before) : undefined;
    const stored = await this.catalog.updateRun(this.checkId(id), (run) => {
      if (run.state === 'queued') return { ...run, state: 'cancelled', finishedAt: at, error: 'cancelled by an admin before it started' };
      if (run.state === 'cancelled') return undefined; // asked twice: nothing more to do
      if (run.state !== 'running') throw new RequestError('conflict', `run ${id} is ${run.state} already; only a queued or running run can be cancelled`);
      const result = run.result as RunResult;
      if (silence !== undefined && leaseExpired(run, now)) {
        return {
          ...run,
          state: 'cancelled',
          finishedAt: at,
          error: `cancelled by an admin at ${at}; ${silence}, so the server ended the run`,
          result: { ...result, cancelRequestedAt: result.cancelRequestedAt ?? at },
        };
      }
      if (result.cancelRequestedAt !== undefined) return undefined;
      return { ...run, result: { ...result, cancelRequestedAt: at } };
    });
    if (!stored) throw new RequestError('run_not_found', `no run ${id}`);
    this.wake(this.runWaiters, id);
    if (stored.state === 'cancelled') this.wake(this.agentWaiters, stored.agent);
    return view(stored);
  }

  /**
   * Records the agent's result. `check` turns the agent's report into what the server
   * records (run-results.ts: snapshots and byte counts from the server's own session
   * records); it gets the run as stored before the update.
   */
  async finish(
    id: string,
    agent: string,
    report: FinishRunRequest,
    check: (run: RunRecord, report: FinishRunRequest) => Promise<FinishRunRequest> = async (_r, x) => x,
  ): Promise<RunView> {
    const before = await this.get(id);
    if (before.agent !== agent) throw new RequestError('forbidden', `run ${id} belongs to agent ${before.agent}`);
    const checked = await check(before, report);
    const stored = await this.catalog.updateRun(this.checkId(id), (run) => {
      // Ended by an admin's cancel while the agent still worked on it: the agent's report
      // of stopping is kept.
      const stopped = run.state === 'cancelled' && checked.state === 'cancelled';
      if (!stopped && run.state !== 'running')
        throw new RequestError('run_not_running', `run ${id} is ${run.state}, not running${run.error ? `: ${run.error}` : ''}`);
      const result = run.result as RunResult;
      return {
        ...run,
        state: checked.state,
        finishedAt: new Date().toISOString(),
        error:
          checked.error ??
          (checked.state === 'cancelled'
            ? (run.error ?? `cancelled by an admin while running (asked at ${result.cancelRequestedAt ?? 'claim time'})`)
            : undefined),
        result: {
          targets: checked.targets,
          discovered: result.discovered,
          hooks: result.hooks,
          full: result.full,
          restore: result.restore,
          ...(result.manual ? { manual: true } : {}),
          // What the run was limited to stays part of its record.
          ...(result.bandwidth ? { bandwidth: result.bandwidth } : {}),
          ...(result.cancelRequestedAt ? { cancelRequestedAt: result.cancelRequestedAt } : {}),
        },
      };
    });
    if (!stored) throw new RequestError('run_not_found', `no run ${id}`);
    this.wake(this.runWaiters, id);
    // A slot is free: a claim waiting on the agent's concurrency limit may go on.
    this.wake(this.agentWaiters, stored.agent);
    return view(stored);
  }

  private checkId(id: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) throw new RequestError('run_not_found', `no run ${id}`);
    return id;
  }

  private wait(waiters: Map<string, Set<() => void>>, key: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      let set = waiters.get(key);
      if (!set) waiters.set(key, (set = new Set()));
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        set!.delete(done);
        if (set!.size === 0 && waiters.get(key) === set) waiters.delete(key);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done);
      set.add(done);
    });
  }

  private wake(waiters: Map<string, Set<() => void>>, key: string): void {
    for (const done of [...(waiters.get(key) ?? [])]) done();
  }

  /** Ends every long poll (server shutdown). */
  close(): void {
    for (const set of [...this.agentWaiters.values(), ...this.runWaiters.values()]) for (const done of [...set]) done();
  }
}

/** `20261122T090000-<suffix>`: ids that sort by creation time (runs, tasks). */
export function timeOrderedId(at: Date, suffix: string): string {
  return `${at.toISOString().replace(/[-:.]/g, '').slice(0, 15)}-${suffix}`;
}

/** Whether a running run's lease has passed (a run claimed without one: a lease from its start). */
export function leaseExpired(run: RunRecord, now: Date, leaseMs = DEFAULT_RUN_LEASE_MS): boolean {
  const expires = run.leaseExpiresAt ?? (run.startedAt ? new Date(Date.parse(run.startedAt) + leaseMs).toISOString() : undefined);
  return expires === undefined || Date.parse(expires) <= now.getTime();
}

function finished(run: RunRecord): boolean {
  return run.state === 'succeeded' || run.state === 'failed' || run.state === 'cancelled';
}

/** A run as the API shows it (the console's event stream sends the same view). */
export function view(run: RunRecord): RunView {
  const result = (run.result ?? { targets: [], discovered: [] }) as RunResult;
  return {
    id: run.id,
    agent: run.agent,
    job: run.job,
    sources: run.sources,
    state: run.state,
    hooks: result.hooks,
    ...(result.full ? { full: true } : {}),
    ...(result.manual ? { manual: true } : {}),
    ...(result.bandwidth ? { bandwidth: result.bandwidth } : {}),
    ...(result.restore ? { restore: result.restore } : {}),
    createdAt: run.createdAt,
    startedAt: run.startedAt,
    finishedAt: run.finishedAt,
    error: run.error,
    targets: result.targets,
    discovered: result.discovered,
    progress: result.progress,
    ...(result.cancelRequestedAt ? { cancelRequestedAt: result.cancelRequestedAt } : {}),
    ...(run.state === 'running' && run.leaseExpiresAt ? { leaseExpiresAt: run.leaseExpiresAt } : {}),
    ...(run.leaseRenewedAt ? { leaseRenewedAt: run.leaseRenewedAt } : {}),
  };
}
