/**
 * The backup sessions the server holds in memory: looked up per request (with who may
 * use them), one request at a time each, expired when idle, and recorded in the catalog
 * whenever their state changes (the catalog keeps the history; docs/protocol.md).
 */
import type { Catalog } from '@hoard/catalog';
import { RequestError } from '@hoard/protocol';
import type { Logger } from 'pino';
import type { Principal } from './auth.js';
import type { BackupSession } from './backup-session.js';
import type { ServerMetrics } from './metrics.js';
import type { RunLeases } from './run-leases.js';

export class SessionRegistry {
  private readonly sessions = new Map<string, BackupSession>();

  constructor(
    private readonly catalog: Catalog,
    private readonly leases: RunLeases,
    private readonly metrics: ServerMetrics,
    private readonly log: Logger,
    /** Idle time after which a session expires. */
    readonly idleMs: number,
  ) {}

  get size(): number {
    return this.sessions.size;
  }

  get running(): number {
    let n = 0;
    for (const s of this.sessions.values()) if (s.state === 'running') n++;
    return n;
  }

  add(session: BackupSession): void {
    this.sessions.set(session.id, session);
  }

  /** The running session `id`, if `who` may use it; else the precise reason it cannot. */
  get(id: string, who: Principal): BackupSession {
    const session = this.sessions.get(id);
    if (!session) throw new RequestError('session_not_found', `no session ${id} (sessions live until they commit or expire; start a new one)`);
    if (who.kind === 'agent' && session.init.agent !== who.name) throw new RequestError('forbidden', `session ${id} belongs to agent ${session.init.agent}`);
    if (session.state === 'expired')
      throw new RequestError(
        'session_gone',
        `session ${id} expired after ${Math.round(this.idleMs / 1000)} s without requests; start a new session (what it uploaded is kept)`,
      );
    if (session.state === 'committed')
      throw new RequestError('conflict', `session ${id} is already committed as snapshot ${session.snapshot?.id}`, {
        snapshot: session.snapshot?.id,
        committed: session.committed,
      });
    if (session.state === 'failed') throw new RequestError('conflict', `session ${id} failed (${session.error}); start a new session`);
    if (session.runEnded !== undefined && !session.busy) {
      const reason = session.runEnded;
      void this.end(session, 'failed', reason).catch((err: unknown) => this.log.error({ err, session: id }, 'ending the session of an ended run failed'));
      throw new RequestError('run_not_running', `session ${id} belongs to a run the server ended (${reason}); nothing more is taken for it`);
    }
    return session;
  }

  /**
   * The server ended run `runId` (its lease passed, its agent restarted): its sessions can no
   * longer finish a source of it, so they end now rather than at their idle expiry. A session
   * in the middle of a request ends when the request is done; a commit under way completes
   * (whole, or nothing) and the run's record names its snapshot (run-results.ts).
   */
  async endRun(runId: string, reason: string): Promise<void> {
    for (const session of this.sessions.values()) {
      if (session.init.run !== runId || session.state !== 'running') continue;
      if (session.busy) session.runEnded = reason;
      else await this.end(session, 'failed', reason);
    }
  }

  /** Runs `work` with the session marked busy: one request at a time per session. */
  async exclusive<T>(session: BackupSession, work: () => Promise<T>): Promise<T> {
    if (session.busy) throw new RequestError('conflict', `session ${session.id} is busy with another request; retry when it has finished`);
    session.busy = true;
    session.lastActivity = Date.now();
    try {
      return await work();
    } finally {
      session.busy = false;
      session.lastActivity = Date.now();
    }
  }

  async expireIdle(): Promise<void> {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (session.state === 'running' && !session.busy && now - session.lastActivity > this.idleMs) {
        const reason = `no request for ${Math.round(this.idleMs / 1000)} s`;
        await this.end(session, 'expired', reason);
        // Its run cannot finish this source any more: it ends now, not when its agent returns.
        if (session.init.run !== undefined) {
          await this.leases
            .sessionExpired(session.init.run, `session ${session.id} (source ${session.init.source.name}) expired: ${reason} from agent ${session.init.agent}`)
            .catch((err: unknown) => this.log.error({ err }, 'ending the run of an expired session failed'));
        }
      } else if (session.state !== 'running' && now - session.lastActivity > Math.max(this.idleMs, 60_000)) {
        // Ended sessions stay a while so a replayed id gets a precise answer; the catalog keeps the history.
        this.sessions.delete(session.id);
      }
    }
  }

  async end(session: BackupSession, state: 'failed' | 'expired', reason: string): Promise<void> {
    session.state = state;
    session.error = reason;
    session.lastActivity = Date.now();
    this.metrics.sessions.inc({ result: state });
    await session.abandon();
    await this.record(session).catch((err: unknown) => this.log.error({ err }, 'recording session failed'));
    this.log.warn({ session: session.id, job: session.init.job, state, reason }, 'session ended without a snapshot');
  }

  async record(session: BackupSession): Promise<void> {
    const done = session.state !== 'running';
    await this.catalog.putSession({
      id: session.id,
      agent: session.init.agent,
      job: session.init.job,
      source: session.init.source.name,
      store: session.init.store.store.id,
      startedAt: session.startedAt.toISOString(),
      finishedAt: done ? new Date().toISOString() : undefined,
      state: session.state,
      ...session.totals,
      error: session.error,
      snapshot: session.snapshot?.id,
    });
  }
}
