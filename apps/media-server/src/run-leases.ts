/**
 * Invariant 8, "nothing waits forever", for runs: a running run holds a lease its agent
 * renews (RunBoard.renew). This class ends the runs nobody holds any more:
 *
 * - a run whose lease passed (the agent was killed, lost its network, or hangs) ends
 *   `failed`, or `cancelled` when an admin had asked it to stop;
 * - at server start, runs and sessions a previous server process left `running` end
 *   `failed` (their sessions lived in that process's memory; nothing of them can commit);
 * - a restarted agent that polls without a run it held ends that run at once.
 *
 * Each ended run frees its agent's concurrency slot (RunBoard.end wakes waiting claims)
 * and goes to `onEnded`, which hands it to the policy scheduler's retry rules.
 */
import type { Catalog, RunRecord } from '@hoard/catalog';
import type { Logger } from 'pino';
import type { RunView } from '@hoard/protocol';
import { leaseExpired, type RunBoard } from './run-board.js';
import { Serial } from './serial.js';

export const SERVER_RESTARTED = 'the media server restarted while this run was running';
const SESSION_SERVER_RESTARTED = 'the media server restarted while this session was running';

export interface RunLeaseOptions {
  /** How often to look for passed leases (default: a quarter of the lease, 0.1-5 s). */
  checkMs?: number;
  log?: Logger;
  /** A run this class ended (the scheduler's retry rules, logs). */
  onEnded?: (run: RunView) => Promise<unknown> | undefined;
}

export class RunLeases {
  private timer: NodeJS.Timeout | undefined;
  private readonly checks = new Serial();
  readonly checkMs: number;

  constructor(
    private readonly catalog: Catalog,
    private readonly runs: RunBoard,
    private readonly options: RunLeaseOptions = {},
  ) {
    this.checkMs = options.checkMs ?? Math.min(5_000, Math.max(100, Math.floor(runs.leaseMs / 4)));
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(
      () => void this.check().catch((err: unknown) => this.options.log?.warn({ error: (err as Error).message }, 'checking run leases failed')),
      this.checkMs,
    );
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * At start, before agents can reach this server: every run and session still marked
   * running was left by a previous process, which held their sessions in memory.
   */
  async reapAtStart(): Promise<{ runs: RunView[]; sessions: number }> {
    const at = new Date().toISOString();
    let sessions = 0;
    for (const session of await this.catalog.listSessions({ state: 'running' })) {
      await this.catalog.putSession({ ...session, state: 'failed', finishedAt: at, error: SESSION_SERVER_RESTARTED });
      sessions++;
    }
    const runs: RunView[] = [];
    for (const run of await this.catalog.listRuns({ state: 'running' })) {
      const ended = await this.endRun(run.id, 'failed', `${SERVER_RESTARTED} (agent ${run.agent} held it since ${run.startedAt ?? 'its claim'})`);
      if (ended) runs.push(ended);
    }
    if (runs.length > 0 || sessions > 0)
      this.options.log?.warn({ runs: runs.map((r) => r.id), sessions }, 'runs and sessions left running by the previous server process ended as failed');
    return { runs, sessions };
  }

  /** Ends every running run whose lease has passed. Safe to call at any time (serialized). */
  check(now = new Date()): Promise<RunView[]> {
    return this.checks.run(async () => {
      const ended: RunView[] = [];
      for (const run of await this.catalog.listRuns({ state: 'running' })) {
        if (!leaseExpired(run, now, this.runs.leaseMs)) continue;
        const silence = await this.describeSilence(run);
        const cancelAsked = (run.result as { cancelRequestedAt?: string } | undefined)?.cancelRequestedAt;
        const done = cancelAsked
          ? await this.endRun(run.id, 'cancelled', `cancelled by an admin at ${cancelAsked}; ${silence}, so the server ended the run`, now)
          : await this.endRun(run.id, 'failed', silence, now);
        if (done) ended.push(done);
      }
      return ended;
    });
  }

  /** "agent a0 stopped renewing its lease at ... (...); last seen ...": for errors and logs. */
  async describeSilence(run: RunRecord): Promise<string> {
    const agent = await this.catalog.getAgent(run.agent);
    const renewed = run.leaseRenewedAt ?? run.startedAt ?? 'its claim';
    const expires = run.leaseExpiresAt ? `, expired at ${run.leaseExpiresAt}` : '';
    return `agent ${run.agent} stopped renewing its lease at ${renewed} (lease of ${formatSeconds(this.runs.leaseMs)}${expires}); agent last seen ${agent?.lastSeenAt ?? 'never'}`;
  }

  /** A session of a running run expired: the run cannot finish that source, so it ends. */
  async sessionExpired(runId: string, reason: string): Promise<RunView | undefined> {
    return this.endRun(runId, 'failed', reason);
  }

  /**
   * The agent polled for work holding only `holding`: its other running runs belong to a
   * process of it that is gone (it restarted), so they end now instead of at their lease.
   */
  async agentHolds(agent: string, holding: ReadonlySet<string>): Promise<RunView[]> {
    const ended: RunView[] = [];
    const at = new Date().toISOString();
    for (const run of await this.catalog.listRuns({ agent, state: 'running' })) {
      if (holding.has(run.id)) continue;
      const done = await this.endRun(
        run.id,
        'failed',
        `agent ${agent} restarted: it polled for work at ${at} without this run among the ones it holds`,
        undefined,
        (r) => r.startedAt === run.startedAt,
      );
      if (done) ended.push(done);
    }
    return ended;
  }

  private async endRun(
    id: string,
    state: 'failed' | 'cancelled',
    error: string,
    leaseAt?: Date,
    still?: (run: RunRecord) => boolean,
  ): Promise<RunView | undefined> {
    // With `leaseAt`: only while the lease is still passed (a renewal that got in first wins).
    const check = (run: RunRecord): boolean => (leaseAt === undefined || leaseExpired(run, leaseAt, this.runs.leaseMs)) && (still?.(run) ?? true);
    const ended = await this.runs.end(id, state, error, check);
    if (!ended) return undefined;
    this.options.log?.warn({ run: id, agent: ended.agent, job: ended.job, state, error }, 'run ended by the server');
    await this.options.onEnded?.(ended);
    return ended;
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}
