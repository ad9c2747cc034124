/**
 * The agent daemon: says hello, then long-polls the media server for runs and executes
 * them one at a time. It only ever opens connections to the server (agents may sit
 * behind NAT). Each run expands its source specs into targets (a glob or libvirt spec may
 * find VMs that did not exist last time) and backs up each target as its own session.
 */
import { hostname } from 'node:os';
import { HoardClient, ServerError, ServerUnreachableError, dedupRatio, parseSourceSpec, type RunProgress, type RunView, type TargetResult } from '@hoard/protocol';
import { runHook } from './hooks.js';
import { resolveSource, type SourceTarget } from './sources/index.js';
import { uploadSource } from './uploader.js';

export const AGENT_VERSION = '0.1.0';
const POLL_SECONDS = 25;
const PROGRESS_EVERY_MS = 1_000;

export interface AgentLog {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface AgentOptions {
  server: string;
  token: string;
  log?: AgentLog;
  /** Environment for dump commands and tools (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Chunker worker threads. */
  workers?: number;
}

const quiet: AgentLog = { info() {}, warn() {}, error() {} };

export class AgentDaemon {
  readonly client: HoardClient;
  private readonly log: AgentLog;
  private readonly stop = new AbortController();
  private loop: Promise<void> | undefined;
  name = '';

  constructor(private readonly options: AgentOptions) {
    this.client = new HoardClient({ url: options.server, token: options.token });
    this.log = options.log ?? quiet;
  }

  /** Registers with the server; fails fast on a bad token or an unreachable server. */
  async start(): Promise<void> {
    const hello = await this.client.hello({ hostname: hostname(), version: AGENT_VERSION });
    this.name = hello.agent;
    this.log.info('agent connected', { agent: this.name, server: this.client.base });
    this.loop = this.pollLoop();
  }

  async close(): Promise<void> {
    this.stop.abort();
    await this.loop?.catch(() => undefined);
  }

  private async pollLoop(): Promise<void> {
    let backoff = 500;
    while (!this.stop.signal.aborted) {
      try {
        const run = await this.client.work(POLL_SECONDS, this.stop.signal);
        backoff = 500;
        if (run) await this.execute(run);
      } catch (err) {
        if (this.stop.signal.aborted) return;
        if (err instanceof ServerError && err.status === 401) {
          this.log.error('the server refused this agent\'s token (revoked?); stopping', { error: err.message });
          return;
        }
        this.log.warn('polling the server failed; retrying', { error: (err as Error).message, retryInMs: backoff });
        await sleep(backoff, this.stop.signal);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  }

  /**
   * Runs one job: the pre hook, every target of every source spec, the post hook (always,
   * once the pre hook ran); reports the result to the server.
   */
  async execute(run: RunView): Promise<void> {
    this.log.info('run started', { run: run.id, job: run.job, sources: run.sources });
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
          await runHook('post', run.hooks.post, { ...hookEnv, HOARD_RESULT: errors.length === 0 && targets.every((t) => t.ok) ? 'succeeded' : 'failed' }).catch((err: unknown) =>
            errors.push((err as Error).message),
          );
        }
      }
    }
    for (const t of targets) if (!t.ok && t.error && !errors.some((e) => e.includes(t.error!))) errors.push(t.error.includes(t.name) ? t.error : `${t.name}: ${t.error}`);
    const state = errors.length === 0 ? 'succeeded' : 'failed';
    await retry(() => this.client.finishRun(run.id, { state, targets, error: errors.length ? errors.join('; ') : undefined }), this.stop.signal).catch((err: unknown) =>
      this.log.error('reporting the run result failed', { run: run.id, error: (err as Error).message }),
    );
    this.log.info('run finished', { run: run.id, state });
  }

  private async backupSources(run: RunView, targets: TargetResult[], errors: string[]): Promise<void> {
    for (const text of run.sources) {
      let resolved: SourceTarget[];
      try {
        resolved = await resolveSource(parseSourceSpec(text), { env: this.options.env, onWarning: (message) => this.log.warn(message, { run: run.id }) });
        if (resolved.length === 0) throw new Error(`${text} matched nothing`);
      } catch (err) {
        errors.push(`${text}: ${(err as Error).message}`);
        targets.push({ name: text, ok: false, error: (err as Error).message, durationMs: 0 });
        continue;
      }
      for (const target of resolved) targets.push(await this.backupTarget(run, target));
    }
  }

  private async backupTarget(run: RunView, target: SourceTarget): Promise<TargetResult> {
    const started = Date.now();
    let last = 0;
    let pendingReport: Promise<unknown> = Promise.resolve();
    const onProgress = (p: RunProgress): void => {
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS) return;
      last = now;
      pendingReport = this.client.runProgress(run.id, p).catch(() => undefined);
    };
    try {
      const result = await uploadSource(this.client, target, { job: run.job, run: run.id, signal: this.stop.signal, onProgress, workers: this.options.workers, full: run.full });
      await pendingReport;
      this.log.info('snapshot committed', { run: run.id, target: target.name, snapshot: result.snapshot.id, ...result.totals });
      const a = result.archive;
      return {
        name: target.name,
        ok: true,
        snapshot: result.snapshot,
        totals: { ...result.totals, bytesSent: result.wireBytes },
        dedupRatio: dedupRatio(result.snapshot.logicalBytes, result.totals.bytesStored),
        ...(a ? { files: { read: a.filesRead, unchanged: a.filesUnchanged, bytesUnchanged: a.bytesUnchanged, skipped: a.skipped } } : {}),
        durationMs: Date.now() - started,
      };
    } catch (err) {
      await pendingReport;
      this.log.warn('backup failed', { run: run.id, target: target.name, error: (err as Error).message });
      return { name: target.name, ok: false, error: (err as Error).message, durationMs: Date.now() - started };
    }
  }
}

async function retry<T>(call: () => Promise<T>, signal: AbortSignal): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ServerUnreachableError) || attempt >= 10 || signal.aborted) throw err;
      await sleep(Math.min(10_000, 200 * 2 ** attempt), signal);
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
