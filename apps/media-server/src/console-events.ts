/**
 * The console's live updates (GET /v1/events, docs/console.md): server-sent events fed by
 * the catalog's change events, the same writes the notifier watches (notify/sources.ts),
 * so nothing polls. One catalog subscription fans out to every connected console.
 *
 * - `run`: a run as written (queued, claimed, each progress report, finished), with the
 *   read rate over the last reports and, when the total is known, the time left.
 * - `task`: a verify, prune, GC, copy or drill task started or ended.
 * - `changed`: which other kinds of records changed (snapshots, agents, jobs, policies,
 *   alerts), at most once a second, so the dashboard reloads just those.
 *
 * A client that does not read (its socket's buffer over a limit) is dropped rather than
 * buffered for without bound; EventSource reconnects by itself.
 */
import type { ServerResponse } from 'node:http';
import type { Catalog, CatalogChange, CatalogChangeKind, RunRecord, TaskRecord } from '@hoard/catalog';
import type { RunEvent, TaskEvent } from '@hoard/protocol';
import { view } from './run-board.js';

/** Kinds whose changes the dashboard shows; `agent-contact` tells it agents came or went. */
const WATCHED: ReadonlySet<CatalogChangeKind> = new Set(['snapshot', 'agent', 'agent-contact', 'job', 'policy', 'notification']);
const MAX_BUFFERED = 1 << 20;
const MAX_CLIENTS = 200;

export interface ConsoleEventsOptions {
  /** Comment lines that keep proxies from closing an idle stream (default 20 s). */
  heartbeatMs?: number;
  /** How long `changed` kinds are gathered before they are sent (default 1 s). */
  coalesceMs?: number;
}

interface Rate {
  at: number;
  bytes: number;
  rate?: number;
}

export class ConsoleEvents {
  private readonly clients = new Set<ServerResponse>();
  private readonly rates = new Map<string, Rate>();
  private readonly pending = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly catalog: Catalog,
    private readonly options: ConsoleEventsOptions = {},
  ) {}

  get connected(): number {
    return this.clients.size;
  }

  /** Takes over `res` as an event stream until the client goes away or the server stops. */
  attach(res: ServerResponse): void {
    if (this.clients.size >= MAX_CLIENTS) {
      // The oldest stream makes room; its EventSource reconnects.
      const oldest = this.clients.values().next().value!;
      this.drop(oldest);
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
      connection: 'keep-alive',
    });
    // A reconnecting client waits 3 s, and the first event says the stream is live.
    res.write('retry: 3000\nevent: ready\ndata: {}\n\n');
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
    this.start();
  }

  /** Ends every stream (the server stops). */
  close(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    clearInterval(this.heartbeat);
    clearTimeout(this.flushTimer);
    for (const res of this.clients) res.end();
    this.clients.clear();
  }

  /** Subscribes to the catalog on the first client. */
  private start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.catalog.onChange((change) => this.changed(change));
    this.heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), this.options.heartbeatMs ?? 20_000);
    this.heartbeat.unref();
  }

  private changed(change: CatalogChange): void {
    if (this.clients.size === 0) return;
    if (change.run) this.send('run', this.runEvent(change.run));
    else if (change.task) this.send('task', taskEvent(change.task));
    else if (WATCHED.has(change.kind)) {
      this.pending.add(change.kind);
      this.flushTimer ??= setTimeout(() => {
        this.flushTimer = undefined;
        this.send('changed', { kinds: [...this.pending].sort() });
        this.pending.clear();
      }, this.options.coalesceMs ?? 1_000);
    }
  }

  /** The run's view, with its read rate (smoothed over reports) and the time left. */
  private runEvent(run: RunRecord): RunEvent {
    const event: RunEvent = { run: view(run) };
    const progress = event.run.progress;
    if (run.state !== 'running' || !progress) {
      if (run.state !== 'running' && run.state !== 'queued') this.rates.delete(run.id);
      return event;
    }
    const now = Date.now();
    const last = this.rates.get(run.id);
    let rate = last?.rate;
    if (last && now > last.at && progress.bytesRead >= last.bytes) {
      const instant = ((progress.bytesRead - last.bytes) * 1000) / (now - last.at);
      rate = rate === undefined ? instant : 0.7 * rate + 0.3 * instant;
    }
    this.rates.set(run.id, { at: now, bytes: progress.bytesRead, rate });
    if (rate !== undefined) {
      event.rate = Math.round(rate);
      if (progress.bytesTotal !== undefined && rate > 0) event.etaSeconds = Math.max(0, Math.round((progress.bytesTotal - progress.bytesRead) / rate));
    }
    return event;
  }

  private send(event: string, data: unknown): void {
    this.broadcast(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  }

  private broadcast(text: string): void {
    for (const res of this.clients) {
      if (res.writableLength > MAX_BUFFERED) this.drop(res);
      else res.write(text);
    }
  }

  private drop(res: ServerResponse): void {
    this.clients.delete(res);
    res.destroy();
  }
}

function taskEvent(task: TaskRecord): TaskEvent {
  return {
    id: task.id,
    kind: task.kind,
    state: task.state,
    startedAt: task.startedAt,
    ...(task.job ? { job: task.job } : {}),
    ...(task.finishedAt ? { finishedAt: task.finishedAt } : {}),
    ...(task.summary ? { summary: task.summary } : {}),
    ...(task.error ? { error: task.error } : {}),
  };
}
