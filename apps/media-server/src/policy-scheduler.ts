/**
 * Turns policies into runs: at each policy's full and incremental fire times, a run per
 * agent of the policy is queued for that agent (agents long-poll for work, so the server
 * never connects to them).
 *
 * - Fire times come from @hoard/protocol's nextPolicyRuns (its cron and DST rules), not
 *   from node-cron's matcher, so `hoard policy show` and the scheduler always agree.
 * - No overlap: while a job's previous run is queued or running, a due run of the same
 *   job is skipped and logged.
 * - Missed runs: the time of the last check is kept in the catalog; fire times that passed
 *   while the server was down are collapsed into one run at start (full if any of them
 *   was a full run). `catchUp: false` skips them instead.
 * - Retries: a failed scheduled run is queued again after 1, 4 and 16 minutes (in memory:
 *   a restart forgets pending retries; the next fire time still comes).
 * - Run window (limits.run-window): fire times lie inside it already, but a retry or a
 *   missed-run catch-up can fall outside; then it waits until the window next opens (a
 *   deferred catch-up is kept in the catalog with the policy's state, so it survives a
 *   restart; a deferred retry is in memory like any retry). Manual runs are not limited.
 * - Bandwidth (limits.bandwidth): each run carries the policy's cap, which the agent
 *   applies to its uploads.
 *
 * The clock is injectable so a test can drive months of schedule in milliseconds.
 */
import type { Catalog } from '@hoard/catalog';
import type { Logger } from 'pino';
import { inRunWindow, nextPolicyRuns, nextRunWindowOpen, validatePolicy, type Policy, type RunView } from '@hoard/protocol';
import type { RunBoard } from './run-board.js';
import { Serial } from './serial.js';

export interface SchedulerClock {
  now(): number;
}

export const systemClock: SchedulerClock = { now: () => Date.now() };

export interface SchedulerOptions {
  clock?: SchedulerClock;
  /** Run once at start what was missed while the server was down (default true). */
  catchUp?: boolean;
  /** Retry delays for a failed scheduled run (default 1, 4, 16 minutes). */
  retryDelaysMs?: number[];
  /** The server's logger; the scheduler logs through a child of it (component scheduler). */
  log?: Logger;
  /** What each check dispatched, skipped or held back (the server's notifications). */
  onDispatched?: (runs: DispatchedRun[]) => void;
}

/** Longest sleep between checks: policy edits and clock jumps are noticed within it. */
const MAX_SLEEP_MS = 60_000;
const STATE_KEY = (policy: string) => `scheduler/${policy}`;

interface PolicyState {
  /** Fire times up to here (ms) have been handled. */
  checkedUntil: number;
  /** A due run held back by the run window, queued when it opens (ms). */
  deferred?: { kind: 'full' | 'incremental'; until: number };
}

export interface DispatchedRun {
  policy: string;
  job: string;
  agent: string;
  kind: 'full' | 'incremental';
  at: number;
  run?: RunView;
  skipped?: string;
  /** Outside the policy's run window: queued when the window opens, at this time (ms). */
  deferredUntil?: number;
  attempt: number;
}

/** Job name of a policy's agent: the policy's name when it has one agent, else `<policy>.<agent>`. */
export function policyJobName(policy: Policy, agent: string): string {
  const agents = policy.sources.flatMap((s) => s.agents);
  return agents.length === 1 ? policy.name : `${policy.name}.${agent}`;
}

/** Every job of a policy (one per agent). */
export function policyJobs(policy: Policy): string[] {
  return [...new Set(policy.sources.flatMap((s) => s.agents).map((a) => policyJobName(policy, a)))];
}

export class PolicyScheduler {
  private readonly clock: SchedulerClock;
  private readonly retryDelays: number[];
  private readonly log: Logger | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly checks = new Serial();
  /** Scheduled runs awaiting their result, for retries. */
  private readonly watched = new Map<string, DispatchedRun>();
  private readonly retryTimers = new Set<NodeJS.Timeout>();
  /** Retries that fell outside their policy's run window, by job: retried by tick() once it opens. */
  private readonly deferredRetries = new Map<string, { failed: DispatchedRun; until: number }>();

  constructor(
    private readonly catalog: Catalog,
    private readonly runs: RunBoard,
    private readonly options: SchedulerOptions = {},
  ) {
    this.clock = options.clock ?? systemClock;
    this.retryDelays = options.retryDelaysMs ?? [60_000, 240_000, 960_000];
    this.log = options.log?.child({ component: 'scheduler' });
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const t of this.retryTimers) clearTimeout(t);
    this.retryTimers.clear();
  }

  /** A policy changed: look again now. */
  wake(): void {
    if (!this.stopped) this.schedule(0);
  }

  /**
   * Handles every fire time up to now, and returns what it dispatched. Safe to call at
   * any time (calls are serialized); the timer calls it, and so can a test's clock.
   */
  tick(): Promise<DispatchedRun[]> {
    return this.checks.run(async () => this.report(await this.check()));
  }

  private report(runs: DispatchedRun[]): DispatchedRun[] {
    if (runs.length > 0) {
      try {
        this.options.onDispatched?.(runs);
      } catch (err) {
        this.log?.warn({ error: (err as Error).message }, 'reporting dispatched runs failed');
      }
    }
    return runs;
  }

  /** A run finished: retry a failed scheduled run after its backoff. */
  async runFinished(run: RunView): Promise<DispatchedRun | undefined> {
    const dispatched = this.watched.get(run.id);
    if (!dispatched) return undefined;
    this.watched.delete(run.id);
    if (run.state !== 'failed' || this.stopped) return undefined;
    const delay = this.retryDelays[dispatched.attempt - 1];
    if (delay === undefined) {
      this.log?.warn({ policy: dispatched.policy, job: dispatched.job, run: run.id, attempts: dispatched.attempt }, 'scheduled run failed; no retries left');
      return undefined;
    }
    this.log?.warn({ policy: dispatched.policy, job: dispatched.job, run: run.id, retryInMs: delay }, 'scheduled run failed; retrying');
    const timer = setTimeout(() => {
      this.retryTimers.delete(timer);
      void this.retry(dispatched)
        .then((retried) => retried && this.report([retried]))
        .catch(() => undefined);
    }, delay);
    timer.unref();
    this.retryTimers.add(timer);
    return dispatched;
  }

  /**
   * Queues a retry now (the timer calls it; a test may too), or, outside the policy's run
   * window, holds it until the window opens (tick() then retries it).
   */
  async retry(failed: DispatchedRun): Promise<DispatchedRun | undefined> {
    const record = await this.catalog.getPolicy(failed.policy);
    if (!record) return undefined;
    const policy = validatePolicy(record.document);
    const source = policy.sources.find((s) => s.agents.includes(failed.agent));
    if (!source) return undefined;
    const now = this.clock.now();
    const until = windowOpensAt(policy, now);
    if (until !== undefined) {
      this.deferredRetries.set(failed.job, { failed, until });
      this.log?.info(
        { policy: policy.name, job: failed.job, kind: failed.kind, until: new Date(until).toISOString() },
        'retry outside the run window; waiting until it opens',
      );
      return { policy: policy.name, job: failed.job, agent: failed.agent, kind: failed.kind, at: now, attempt: failed.attempt + 1, deferredUntil: until };
    }
    return this.dispatch(policy, source, failed.agent, failed.kind, now, failed.attempt + 1);
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.tick()
        .catch((err: unknown) => this.log?.warn({ error: (err as Error).message }, 'scheduler check failed'))
        .finally(() => {
          if (!this.stopped) void this.nextWait().then((wait) => this.schedule(wait));
        });
    }, ms);
    this.timer.unref();
  }

  /** Until the earliest next fire time, at most MAX_SLEEP_MS. */
  private async nextWait(): Promise<number> {
    const now = this.clock.now();
    let wait = MAX_SLEEP_MS;
    for (const { until } of this.deferredRetries.values()) wait = Math.min(wait, Math.max(0, until - now));
    for (const record of await this.catalog.listPolicies()) {
      try {
        const [next] = nextPolicyRuns(validatePolicy(record.document), new Date(now), 1);
        if (next) wait = Math.min(wait, Math.max(0, next.at.getTime() - now));
        const deferred = (await this.catalog.getMeta<PolicyState>(STATE_KEY(record.name)))?.deferred;
        if (deferred) wait = Math.min(wait, Math.max(0, deferred.until - now));
      } catch {
        // an unreadable policy is reported by check()
      }
    }
    return wait;
  }

  private async check(): Promise<DispatchedRun[]> {
    const now = this.clock.now();
    const out: DispatchedRun[] = [];
    for (const [job, { failed, until }] of [...this.deferredRetries]) {
      if (until > now) continue;
      this.deferredRetries.delete(job);
      const retried = await this.retry(failed).catch((err: unknown) => {
        this.log?.warn({ policy: failed.policy, job, error: (err as Error).message }, 'deferred retry failed');
        return undefined;
      });
      if (retried) out.push(retried);
    }
    for (const record of await this.catalog.listPolicies()) {
      let policy: Policy;
      try {
        policy = validatePolicy(record.document);
      } catch (err) {
        this.log?.warn({ policy: record.name, error: (err as Error).message }, 'policy in the catalog does not validate; not scheduled');
        continue;
      }
      const state = await this.catalog.getMeta<PolicyState>(STATE_KEY(policy.name));
      if (!state) {
        // A new policy starts from now: nothing before it existed is "missed".
        await this.catalog.putMeta(STATE_KEY(policy.name), { checkedUntil: now } satisfies PolicyState);
        continue;
      }
      if (now <= state.checkedUntil && !(state.deferred && state.deferred.until <= now)) continue;
      let due = now > state.checkedUntil ? duePolicyRuns(policy, state.checkedUntil, now) : [];
      const late = due.length > 0 && now - due[due.length - 1]!.at.getTime() > MAX_SLEEP_MS * 2;
      if (late && this.options.catchUp === false) {
        this.log?.info({ policy: policy.name, missed: due.length }, 'missed runs skipped (catch-up is off)');
        const missed = due.length;
        for (const agent of policy.sources.flatMap((s) => s.agents)) {
          const kind = due.some((d) => d.kind === 'full') ? 'full' : 'incremental';
          out.push({
            policy: policy.name,
            job: policyJobName(policy, agent),
            agent,
            kind,
            at: now,
            attempt: 1,
            skipped: `${missed} run(s) missed while the server was down; catch-up is off`,
          });
        }
        due = [];
      }
      // Several fire times at once (missed while down, or a coarse test clock), and a run
      // held back by the run window: one run, full if any of them was full.
      const kinds = [...due.map((d) => d.kind), ...(state.deferred ? [state.deferred.kind] : [])];
      const kind = kinds.includes('full') ? 'full' : 'incremental';
      const until = kinds.length > 0 ? windowOpensAt(policy, now) : undefined;
      await this.catalog.putMeta(STATE_KEY(policy.name), {
        checkedUntil: Math.max(now, state.checkedUntil),
        ...(until !== undefined ? { deferred: { kind, until } } : {}),
      } satisfies PolicyState);
      if (kinds.length === 0) continue;
      if (until !== undefined) {
        // Reported once, when it is held back (not again at every check while it waits).
        const unchanged = due.length === 0 && state.deferred?.kind === kind && state.deferred.until === until;
        if (unchanged) continue;
        this.log?.info(
          { policy: policy.name, kind, missed: due.length, until: new Date(until).toISOString() },
          'due run outside the run window; waiting until it opens',
        );
        for (const agent of policy.sources.flatMap((s) => s.agents))
          out.push({ policy: policy.name, job: policyJobName(policy, agent), agent, kind, at: now, attempt: 1, deferredUntil: until });
        continue;
      }
      for (const source of policy.sources) {
        for (const agent of source.agents) out.push(await this.dispatch(policy, source, agent, kind, now, 1, due.length > 1 ? due.length : undefined));
      }
    }
    return out;
  }

  private async dispatch(
    policy: Policy,
    source: Policy['sources'][number],
    agent: string,
    kind: 'full' | 'incremental',
    at: number,
    attempt: number,
    collapsed?: number,
  ): Promise<DispatchedRun> {
    const job = policyJobName(policy, agent);
    const result: DispatchedRun = { policy: policy.name, job, agent, kind, at, attempt };
    const active = [...(await this.catalog.listRuns({ agent, state: 'queued' })), ...(await this.catalog.listRuns({ agent, state: 'running' }))].find(
      (r) => r.job === job,
    );
    if (active) {
      result.skipped = `run ${active.id} of job ${job} is still ${active.state}`;
      this.log?.warn({ policy: policy.name, job, kind, previous: active.id }, 'scheduled run skipped: the previous run of the job has not finished');
      return result;
    }
    const existing = await this.catalog.getJob(job);
    await this.catalog.putJob({
      name: job,
      agent,
      sources: source.specs,
      store: policy.store.scope === 'global' ? 'global' : job,
      knownSources: existing?.knownSources,
    });
    result.run = await this.runs.create(agent, job, source.specs, source.hooks, kind === 'full', undefined, undefined, {
      bandwidth: policy.limits.bandwidth?.bytesPerSecond,
    });
    this.watched.set(result.run.id, result);
    this.log?.info({ policy: policy.name, job, agent, kind, run: result.run.id, attempt, collapsed }, 'scheduled run queued');
    return result;
  }
}

/** When a run due at `now` may start: undefined inside the policy's run window (or without one), else when the window next opens (ms). */
function windowOpensAt(policy: Policy, now: number): number | undefined {
  const window = policy.limits.runWindow;
  if (!window || inRunWindow(window, new Date(now), policy.schedule.timeZone)) return undefined;
  return nextRunWindowOpen(window, new Date(now), policy.schedule.timeZone).getTime();
}

/** Fire times in (from, to], in order. */
export function duePolicyRuns(policy: Policy, from: number, to: number): { at: Date; kind: 'full' | 'incremental' }[] {
  const out: { at: Date; kind: 'full' | 'incremental' }[] = [];
  let cursor = from;
  for (;;) {
    const batch = nextPolicyRuns(policy, new Date(cursor), 64);
    for (const run of batch) {
      if (run.at.getTime() > to) return out;
      out.push(run);
      cursor = run.at.getTime();
    }
    if (batch.length < 64) return out;
  }
}
