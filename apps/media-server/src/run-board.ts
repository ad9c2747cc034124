/**
 * Runs: work the server hands to agents. Agents pull (long-poll) rather than being called,
 * so they may sit behind NAT. A run is queued for one agent, claimed by that agent's next
 * poll, reported on while it runs, and finished by the agent's result. The catalog keeps
 * every run; this class adds the waiting: an agent's poll and an admin's "wait for the
 * result" both return as soon as there is something to say.
 */
import { randomBytes } from 'node:crypto';
import type { Catalog, RunRecord } from '@hoard/catalog';
import { RequestError, type FinishRunRequest, type RestoreRunSpec, type RunHooks, type RunProgress, type RunView, type TargetResult } from '@hoard/protocol';
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

export class RunBoard {
  private readonly agentWaiters = new Map<string, Set<() => void>>();
  private readonly runWaiters = new Map<string, Set<() => void>>();

  constructor(private readonly catalog: Catalog) {}

  async create(agent: string, job: string, sources: string[], hooks?: RunHooks, full?: boolean, restore?: RestoreRunSpec, origin?: { manual?: boolean }, limits?: { bandwidth?: number }): Promise<RunView> {
    const run: RunRecord = {
      id: timeOrderedId(new Date(), randomBytes(6).toString('hex')),
      agent,
      job,
      sources,
      state: 'queued',
      createdAt: new Date().toISOString(),
      sessions: [],
      result: { targets: [], discovered: [], hooks, ...(full ? { full } : {}), ...(restore ? { restore } : {}), ...(origin?.manual ? { manual: true } : {}), ...(limits?.bandwidth ? { bandwidth: limits.bandwidth } : {}) } satisfies RunResult,
    };
    await this.catalog.putRun(run);
    this.wake(this.agentWaiters, agent);
    return view(run);
  }

  async get(id: string): Promise<RunRecord> {
    const run = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id) ? await this.catalog.getRun(id) : undefined;
    if (!run) throw new RequestError(404, `no run ${id}`);
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
      const maxRunning = await agentRunLimitFromCatalog(this.catalog, agent);
      const run = await this.catalog.claimNextRun(agent, undefined, { maxRunning });
      if (run) {
        this.wake(this.runWaiters, run.id);
        return { ...view(run), maxConcurrentRuns: maxRunning };
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
   * Records the agent's progress. The answer tells the agent whether to stop: an admin
   * asked to cancel the run while it was running, or cancelled it while the agent was
   * claiming it (then it is `cancelled` already).
   */
  async progress(id: string, agent: string, progress: RunProgress): Promise<{ cancel: boolean }> {
    const owned = await this.get(id);
    if (owned.agent === agent && owned.state === 'cancelled') return { cancel: true };
    const run = await this.ownedRunning(id, agent);
    const result = run.result as RunResult;
    await this.catalog.putRun({ ...run, result: { ...result, progress } });
    this.wake(this.runWaiters, id);
    return { cancel: result.cancelRequestedAt !== undefined };
  }

  /**
   * Cancels a run (docs/protocol.md, "Cancelling a run"): a queued run becomes
   * `cancelled` at once; a running one records the request, and its agent, told so in
   * the answer to its next progress report, abandons its session and finishes the run
   * as `cancelled`. Cancelling a cancelled run changes nothing; a succeeded or failed
   * run is a 409.
   */
  async cancel(id: string): Promise<RunView> {
    const run = await this.get(id);
    const at = new Date().toISOString();
    let next: RunRecord;
    if (run.state === 'queued') {
      next = { ...run, state: 'cancelled', finishedAt: at, error: 'cancelled by an admin before it started' };
    } else if (run.state === 'cancelled') {
      return view(run); // asked twice: nothing more to do
    } else if (run.state === 'running') {
      const result = run.result as RunResult;
      if (result.cancelRequestedAt !== undefined) return view(run);
      next = { ...run, result: { ...result, cancelRequestedAt: at } };
    } else {
      throw new RequestError(409, `run ${id} is ${run.state} already; only a queued or running run can be cancelled`);
    }
    // Claimed in between (queued -> running): ask it to stop instead.
    if ((await this.get(id)).state !== run.state) return this.cancel(id);
    await this.catalog.putRun(next);
    this.wake(this.runWaiters, id);
    return view(next);
  }

  async finish(id: string, agent: string, report: FinishRunRequest): Promise<RunView> {
    const owned = await this.get(id);
    // Cancelled while the agent was claiming it: the agent's report of stopping is kept.
    const run = owned.agent === agent && owned.state === 'cancelled' && report.state === 'cancelled' ? owned : await this.ownedRunning(id, agent);
    const result = run.result as RunResult;
    const done: RunRecord = {
      ...run,
      state: report.state,
      finishedAt: new Date().toISOString(),
      error: report.error ?? (report.state === 'cancelled' ? (run.error ?? `cancelled by an admin while running (asked at ${result.cancelRequestedAt ?? 'claim time'})`) : undefined),
      result: {
        targets: report.targets,
        discovered: result.discovered,
        hooks: result.hooks,
        full: result.full,
        restore: result.restore,
        ...(result.manual ? { manual: true } : {}),
        ...(result.cancelRequestedAt ? { cancelRequestedAt: result.cancelRequestedAt } : {}),
      },
    };
    await this.catalog.putRun(done);
    this.wake(this.runWaiters, id);
    // A slot is free: a claim waiting on the agent's concurrency limit may go on.
    this.wake(this.agentWaiters, run.agent);
    return view(done);
  }

  private async ownedRunning(id: string, agent: string): Promise<RunRecord> {
    const run = await this.get(id);
    if (run.agent !== agent) throw new RequestError(403, `run ${id} belongs to agent ${run.agent}`);
    if (run.state !== 'running') throw new RequestError(409, `run ${id} is ${run.state}, not running`);
    return run;
  }

  private wait(waiters: Map<string, Set<() => void>>, key: string, ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
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

function finished(run: RunRecord): boolean {
  return run.state === 'succeeded' || run.state === 'failed' || run.state === 'cancelled';
}

function view(run: RunRecord): RunView {
  const result = (run.result ?? { targets: [], discovered: [] }) as RunResult;
  return {
    id: run.id,
    agent: run.agent,
    job: run.job,
    sources: run.sources,
    state: run.state,
    hooks: result.hooks,
    ...(result.full ? { full: true } : {}),
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
  };
}
