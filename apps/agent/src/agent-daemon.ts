/**
 * The agent daemon: says hello, then long-polls the media server for runs and executes
 * up to N of them at once, N being what the server's claim answer says (its policies'
 * max-concurrent-jobs-per-agent; 1 until told). It only ever opens connections to the
 * server (agents may sit behind NAT). Each run expands its source specs into targets (a
 * glob or libvirt spec may find VMs that did not exist last time) and backs up each target
 * as its own session, its uploads throttled to the run's bandwidth cap if it has one.
 *
 * While a run executes, the daemon renews its lease on a timer of its own (a quarter of
 * the server's lease, independent of progress), so the server ends the run when this
 * process dies, and this process stops a run the server has ended. Each poll lists the
 * runs this process holds: after a restart, the server ends the runs the old process held
 * at once (docs/protocol.md, "Leases").
 */
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  HoardClient,
  ServerError,
  ServerUnreachableError,
  TokenBucket,
  dedupRatio,
  parseSourceSpec,
  type FinishRunRequest,
  type RunProgress,
  type RunView,
  type TargetResult,
} from '@hoard/protocol/agent';
import { retrying } from '@hoard/repository';
import { runHook } from './hooks.js';
import { silentLogger, type Logger } from './log.js';
import { applyPriority, describeFootprint, readThrottle, type AgentFootprint } from './footprint.js';
import { executeRestoreRun } from './restore-run.js';
import { resolveSource, type SourceTarget } from './sources/index.js';
import { uploadSource } from './uploader.js';

export const AGENT_VERSION = '0.1.0';
const POLL_SECONDS = 25;
const PROGRESS_EVERY_MS = 1_000;
/** A progress report at least this often while a target runs, so a cancel is heard even while nothing is sent. */
const PROGRESS_HEARTBEAT_MS = 2_000;

/**
 * Reporting a run's result while the server is unreachable: 10 attempts, waiting 400 ms
 * after the first and doubling up to 10 s (about a minute in all); the server's lease
 * ends the run if this never gets through.
 */
const REPORT_ATTEMPTS = 10;
const reportDelayMs = (attempt: number): number => Math.min(10_000, 200 * 2 ** attempt);
/** Polling the server after a failed poll: waits from 500 ms, doubling up to 30 s, until a poll gets through. */
const POLL_FIRST_BACKOFF_MS = 500;
const POLL_MAX_BACKOFF_MS = 30_000;

export interface AgentOptions {
  server: string;
  token: string;
  /** Where the daemon logs (agentLogger(), or a child of the caller's pino logger); default nowhere. */
  logger?: Logger;
  /** Environment for dump commands and tools (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Chunker worker threads (footprint.workers when not given). */
  workers?: number;
  /** Nice level, I/O class, worker threads and source read cap (footprint.ts). */
  footprint?: AgentFootprint;
  /** What snapshots record as their start time, in ms (default Date.now; tests simulate months). */
  clock?: () => number;
}

export class AgentDaemon {
  readonly client: HoardClient;
  private readonly log: Logger;
  /** The warnings of source resolution (a spec that matched a VM it cannot read...). */
  private readonly sourceLog: Logger;
  private readonly stop = new AbortController();
  /** Runs an admin cancelled (the answer to a progress report said so), by run id. */
  private readonly cancels = new Map<string, AbortController>();
  private loop: Promise<void> | undefined;
  /** Runs being executed, at most `concurrency` of them. */
  private readonly active = new Set<Promise<void>>();
  /** Ids of the runs being executed (sent with each poll). */
  private readonly holding = new Set<string>();
  /** Runs the server ended while this process worked on them, with the server's reason. */
  private readonly endedByServer = new Map<string, string>();
  /** How many runs the server lets this agent run at once (in each claim answer; 1 until told). */
  private concurrency = 1;
  /** One read cap for the whole agent: runs at once share it. */
  private readonly readThrottle: TokenBucket | undefined;
  name = '';

  constructor(private readonly options: AgentOptions) {
    this.client = new HoardClient({ url: options.server, token: options.token });
    const logger = options.logger ?? silentLogger;
    this.log = logger.child({ component: 'daemon' });
    this.sourceLog = logger.child({ component: 'sources' });
    this.readThrottle = readThrottle(options.footprint ?? {});
  }

  /** Registers with the server; fails fast on a bad token or an unreachable server. */
  async start(): Promise<void> {
    const footprint = this.options.footprint ?? {};
    applyPriority(footprint);
    // The encode pool starts on the first encode: its size is read then.
    if (footprint.workers !== undefined) process.env.HOARD_ENCODE_WORKERS = String(footprint.workers);
    const hello = await this.client.hello({ hostname: hostname(), version: AGENT_VERSION });
    this.name = hello.agent;
    this.log.info({ agent: this.name, server: this.client.base, footprint: describeFootprint(footprint) }, 'agent connected');
    this.loop = this.pollLoop();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop?.catch(() => undefined);
  }

  private async pollLoop(): Promise<void> {
    try {
      await this.poll();
    } finally {
      await Promise.allSettled([...this.active]);
    }
  }

  /** Claims runs while fewer than `concurrency` are executing (the server enforces the same limit). */
  private async poll(): Promise<void> {
    let backoff = POLL_FIRST_BACKOFF_MS;
    while (!this.stop.signal.aborted) {
      if (this.active.size >= this.concurrency) {
        await Promise.race(this.active);
        continue;
      }
      try {
        const run = await this.client.work(POLL_SECONDS, this.stop.signal, [...this.holding]);
        backoff = POLL_FIRST_BACKOFF_MS;
        if (run) this.launch(run);
      } catch (err) {
        if (this.stop.signal.aborted) return;
        if (err instanceof ServerError && err.status === 401) {
          this.log.error({ error: err.message }, "the server refused this agent's token (revoked?); stopping");
          return;
        }
        this.log.warn({ error: (err as Error).message, retryInMs: backoff }, 'polling the server failed; retrying');
        // An abort (close()) ends the wait; the loop then ends.
        await sleep(backoff, undefined, { signal: this.stop.signal }).catch(() => undefined);
        backoff = Math.min(POLL_MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  private launch(run: RunView): void {
    if (run.maxConcurrentRuns !== undefined) this.concurrency = Math.max(1, run.maxConcurrentRuns);
    this.holding.add(run.id);
    const stopRenewing = this.keepLease(run);
    const running: Promise<void> = this.execute(run)
      .catch((err: unknown) => this.log.error({ run: run.id, error: (err as Error).message }, 'run failed'))
      .finally(() => {
        stopRenewing();
        this.holding.delete(run.id);
        this.endedByServer.delete(run.id);
        this.active.delete(running);
      });
    this.active.add(running);
  }

  /**
   * Renews the run's lease every quarter of the server's lease until the returned
   * function is called. An older server that grants no lease (no `leaseMs`) gets none.
   */
  private keepLease(run: RunView): () => void {
    if (run.leaseMs === undefined) return () => undefined;
    let inFlight = false;
    const renew = async (): Promise<void> => {
      if (inFlight) return;
      inFlight = true;
      try {
        const answer = await this.client.renewLease(run.id, this.stop.signal);
        if (answer?.cancel) this.cancelRun(run.id, 'the run was cancelled by an admin');
      } catch (err) {
        if (err instanceof ServerError && (err.status === 409 || err.status === 404)) {
          // The server ended the run (its lease passed, it restarted, an admin cancelled
          // it): nothing this process does for it can be committed any more.
          if (!this.endedByServer.has(run.id)) {
            this.endedByServer.set(run.id, err.message);
            this.log.warn({ run: run.id, reason: err.message }, 'the server ended this run; stopping it');
            this.cancelRun(run.id, err.message);
          }
        } else if (!this.stop.signal.aborted) {
          this.log.warn({ run: run.id, error: (err as Error).message }, "renewing the run's lease failed; retrying");
        }
      } finally {
        inFlight = false;
      }
    };
    const timer = setInterval(() => void renew(), Math.max(50, Math.floor(run.leaseMs / 4)));
    timer.unref();
    return () => clearInterval(timer);
  }

  private cancelRun(id: string, reason: string): void {
    let cancel = this.cancels.get(id);
    if (!cancel) this.cancels.set(id, (cancel = new AbortController()));
    if (!cancel.signal.aborted) cancel.abort(new Error(reason));
  }

  /**
   * Runs one job: the pre hook, every target of every source spec, the post hook (always,
   * once the pre hook ran); reports the result to the server.
   */
  async execute(run: RunView): Promise<void> {
    if (run.restore) {
      // A restore run: write a snapshot on this host (restore-run.ts).
      this.log.info({ run: run.id, job: run.job, snapshot: run.restore.snapshot, path: run.restore.path }, 'restore run started');
      const report = await executeRestoreRun(this.client, run, { agent: this.name, signal: this.runSignal(run.id), env: this.options.env });
      this.cancels.delete(run.id);
      if (this.endedByServer.has(run.id)) return this.log.warn({ run: run.id, reason: this.endedByServer.get(run.id) }, 'restore run ended by the server');
      await this.report(run, report);
      this.log.info({ run: run.id, state: report.state, error: report.error }, 'restore run finished');
      return;
    }
    this.log.info({ run: run.id, job: run.job, sources: run.sources }, 'run started');
    const targets: TargetResult[] = [];
    const errors: string[] = [];
    const hookEnv = { ...(this.options.env ?? process.env), HOARD_JOB: run.job, HOARD_RUN: run.id };
    let preOk = true;
    if (run.hooks?.pre) {
      try {
        await runHook('pre', run.hooks.pre, hookEnv);
      } catch (err) {
        preOk = false;
        errors.push(`${(err as Error).message}; no source was read`);
      }
    }
    if (preOk) {
      try {
        await this.backupSources(run, targets, errors);
      } finally {
        if (run.hooks?.post) {
          await runHook('post', run.hooks.post, { ...hookEnv, HOARD_RESULT: errors.length === 0 && targets.every((t) => t.ok) ? 'succeeded' : 'failed' }).catch(
            (err: unknown) => errors.push((err as Error).message),
          );
        }
      }
    }
    for (const t of targets)
      if (!t.ok && t.error && !errors.some((e) => e.includes(t.error!))) errors.push(t.error.includes(t.name) ? t.error : `${t.name}: ${t.error}`);
    const cancelled = this.cancels.get(run.id)?.signal.aborted === true;
    this.cancels.delete(run.id);
    if (this.endedByServer.has(run.id)) {
      // The server has recorded the run's end already and would refuse a report.
      this.log.warn({ run: run.id, reason: this.endedByServer.get(run.id) }, 'run ended by the server');
      return;
    }
    const state = cancelled ? 'cancelled' : errors.length === 0 ? 'succeeded' : 'failed';
    const error = cancelled
      ? 'cancelled by an admin while running; the interrupted source was abandoned, nothing of it was committed'
      : errors.length
        ? errors.join('; ')
        : undefined;
    await this.report(run, { state, targets, error });
    this.log.info({ run: run.id, state }, 'run finished');
  }

  /** Sends the run's result, retrying while the server is unreachable; a failure is logged. */
  private async report(run: RunView, result: FinishRunRequest): Promise<void> {
    await retrying(() => this.client.finishRun(run.id, result), {
      attempts: REPORT_ATTEMPTS,
      retryable: (err) => err instanceof ServerUnreachableError,
      delayMs: reportDelayMs,
      signal: this.stop.signal,
    }).catch((err: unknown) => this.log.error({ run: run.id, error: (err as Error).message }, 'reporting the run result failed'));
  }

  private async backupSources(run: RunView, targets: TargetResult[], errors: string[]): Promise<void> {
    for (const text of run.sources) {
      let resolved: SourceTarget[];
      try {
        resolved = await resolveSource(parseSourceSpec(text), { env: this.options.env, onWarning: (message) => this.sourceLog.warn({ run: run.id }, message) });
        if (resolved.length === 0) throw new Error(`${text} matched nothing`);
      } catch (err) {
        errors.push(`${text}: ${(err as Error).message}`);
        targets.push({ name: text, ok: false, error: (err as Error).message, durationMs: 0 });
        continue;
      }
      for (const target of resolved) if (!this.runSignal(run.id).aborted) targets.push(await this.backupTarget(run, target));
    }
  }

  /** Aborted when the daemon stops or an admin cancels the run. */
  private runSignal(id: string): AbortSignal {
    let cancel = this.cancels.get(id);
    if (!cancel) this.cancels.set(id, (cancel = new AbortController()));
    return AbortSignal.any([this.stop.signal, cancel.signal]);
  }

  private async backupTarget(run: RunView, target: SourceTarget): Promise<TargetResult> {
    const started = Date.now();
    let last = 0;
    let pendingReport: Promise<unknown> = Promise.resolve();
    let latest: RunProgress = { target: target.name, bytesRead: 0, bytesSent: 0, bytesNew: 0 };
    const onProgress = (p: RunProgress): void => {
      latest = p;
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      pendingReport = this.client
        .runProgress(run.id, p)
        .then((answer) => {
          if (answer?.cancel && !this.cancels.get(run.id)?.signal.aborted) {
            this.log.warn({ run: run.id, target: target.name }, 'run cancelled by an admin; abandoning the current source');
            this.cancels.get(run.id)?.abort(new Error('the run was cancelled by an admin'));
          }
        })
        .catch(() => undefined);
    };
    const heartbeat = setInterval(() => {
      if (Date.now() - last >= PROGRESS_HEARTBEAT_MS) onProgress(latest);
    }, PROGRESS_HEARTBEAT_MS);
    try {
      const result = await uploadSource(this.client, target, {
        job: run.job,
        run: run.id,
        signal: this.runSignal(run.id),
        onProgress,
        workers: this.options.workers ?? this.options.footprint?.workers,
        full: run.full,
        clock: this.options.clock,
        throttle: run.bandwidth ? new TokenBucket(run.bandwidth) : undefined,
        readThrottle: this.readThrottle,
      });
      await pendingReport;
      this.log.info({ run: run.id, target: target.name, snapshot: result.snapshot.id, ...result.totals }, 'snapshot committed');
      const a = result.archive;
      return {
        name: target.name,
        ok: true,
        snapshot: result.snapshot,
        totals: { ...result.totals, bytesSent: result.wireBytes },
        dedupRatio: dedupRatio(result.snapshot.logicalBytes, result.totals.bytesNew),
        ...(a ? { files: { read: a.filesRead, unchanged: a.filesUnchanged, bytesUnchanged: a.bytesUnchanged, skipped: a.skipped } } : {}),
        ...(result.image ? { image: result.image } : {}),
        durationMs: Date.now() - started,
      };
    } catch (err) {
      await pendingReport;
      this.log.warn({ run: run.id, target: target.name, error: (err as Error).message }, 'backup failed');
      return { name: target.name, ok: false, error: (err as Error).message, durationMs: Date.now() - started };
    } finally {
      clearInterval(heartbeat);
    }
  }
}
