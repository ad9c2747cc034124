/**
 * Notifications (docs/notifications.md): problems become events, events are routed to
 * targets by their matchers, and each target's events wait in a durable outbox in the
 * catalog until delivered, in order.
 *
 * - Never blocks a backup: raise() and resolve() only write to the catalog; delivery runs
 *   on its own, one loop per target.
 * - Never loses a notification: the event and its condition are written in one batch
 *   before anything is sent; a target that is down keeps its events (retried with backoff,
 *   forever) and gets them in order when it is back, also across server restarts.
 * - One message per problem: a problem has a condition (`run-failed:db1`); while it is
 *   open its repeats are counted, not sent, and when it clears one `resolved` event goes out.
 */
import { randomUUID } from 'node:crypto';
import type { Catalog, OutboxRecord } from '@hoard/catalog';
import type { EventKind, NotificationEvent, Severity, TargetSettings, TargetView } from '@hoard/protocol';
import type { Logger } from 'pino';
import { matches } from './match.js';
import { deliver } from './senders.js';

/** A problem as the server's components report it. */
export interface Problem {
  kind: EventKind;
  severity: Severity;
  /**
   * What the problem is about, after its kind in the condition key (`['db1']` makes
   * `run-failed:db1`). Undefined for a one-off event, which is never coalesced.
   */
  subject?: string[];
  summary: string;
  detail?: string;
  job?: string;
  policy?: string;
  agent?: string;
  run?: string;
  data?: Record<string, unknown>;
}

export interface NotifierOptions {
  /** Targets from the server config file: listed, tested and used, not changed through the API. */
  configTargets?: Record<string, TargetSettings>;
  /** The server's name in events (its URL when not configured). */
  serverName: () => string;
  /** First retry delay of a failed delivery (default 10 s); doubles up to retryMaxMs. */
  retryBaseMs?: number;
  /** Longest delay between attempts (default 15 minutes). */
  retryMaxMs?: number;
  log: Logger;
  /** Counts deliveries (metrics.ts). */
  onDelivery?: (target: string, ok: boolean) => void;
}

export interface ResolvedTarget {
  name: string;
  source: 'api' | 'config';
  settings: TargetSettings;
}

export class Notifier {
  private readonly busy = new Set<string>();
  private readonly again = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(
    private readonly catalog: Catalog,
    private readonly options: NotifierOptions,
  ) {}

  /** Starts delivering what the outbox holds (also what an earlier process left). */
  start(): void {
    this.unsubscribe = this.catalog.onChange((change) => {
      if (change.kind === 'notification' || change.kind === 'notify-target') this.pump();
    });
    this.pump();
  }

  /** Stops delivering; what is left stays in the outbox for the next start. */
  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.inFlight]);
  }

  /** Every target: the config file's, then the API's (a config name wins). */
  async targets(): Promise<ResolvedTarget[]> {
    const config = Object.entries(this.options.configTargets ?? {}).map(([name, settings]) => ({ name, source: 'config' as const, settings }));
    const names = new Set(config.map((t) => t.name));
    const api = (await this.catalog.listNotifyTargets())
      .filter((r) => !names.has(r.name))
      .map((r) => ({ name: r.name, source: 'api' as const, settings: r.settings as unknown as TargetSettings }));
    return [...config, ...api];
  }

  async target(name: string): Promise<ResolvedTarget | undefined> {
    return (await this.targets()).find((t) => t.name === name);
  }

  isConfigTarget(name: string): boolean {
    return Object.hasOwn(this.options.configTargets ?? {}, name);
  }

  /** The targets as the API lists them: secrets hidden, with their outbox. */
  async views(): Promise<TargetView[]> {
    const waiting = new Map<string, OutboxRecord[]>();
    for (const entry of await this.catalog.listOutbox()) {
      let list = waiting.get(entry.target);
      if (!list) waiting.set(entry.target, (list = []));
      list.push(entry);
    }
    return (await this.targets()).map((t) => targetView(t, waiting.get(t.name) ?? []));
  }

  /**
   * Records a problem: queued for every matching target, unless its condition is open
   * already (then only counted). True when it was queued. Never throws: a catalog
   * failure is logged (the caller is a backup's bookkeeping, which must go on).
   */
  async raise(problem: Problem): Promise<boolean> {
    try {
      const condition = problem.subject ? [problem.kind, ...problem.subject].join(':') : undefined;
      const event = this.event(problem, 'firing', condition);
      const targets = await this.matching(event);
      const queued = await this.catalog.raiseNotification(condition, event, targets);
      if (queued) this.options.log.info({ kind: event.kind, condition, targets }, 'notification queued');
      return queued;
    } catch (err) {
      this.options.log.warn({ kind: problem.kind, error: (err as Error).message }, 'notification could not be recorded');
      return false;
    }
  }

  /**
   * Queues a one-off event for the named targets, whatever they match (the periodic
   * validity report goes where its schedule says). Unknown names are dropped and logged.
   */
  async send(problem: Problem, targetNames: readonly string[]): Promise<string[]> {
    const known = new Set((await this.targets()).map((t) => t.name));
    const targets = targetNames.filter((n) => known.has(n));
    const unknown = targetNames.filter((n) => !known.has(n));
    if (unknown.length > 0) this.options.log.warn({ kind: problem.kind, unknown }, 'notification targets not defined; skipped');
    await this.catalog.raiseNotification(undefined, this.event(problem, 'firing', undefined), targets);
    return targets;
  }

  /** Clears a problem's condition: one `resolved` event if it was open. Never throws. */
  async resolve(kind: EventKind, subject: string[], summary: string): Promise<boolean> {
    const condition = [kind, ...subject].join(':');
    try {
      const targets = await this.targets();
      let resolved: NotificationEvent | undefined;
      const open = await this.catalog.resolveNotification(condition, (record) => {
        const first = record.event as unknown as NotificationEvent;
        resolved = {
          ...this.event({ kind, severity: first.severity, summary, job: first.job, policy: first.policy, agent: first.agent }, 'resolved', condition),
          openedAt: record.openedAt,
          repeats: record.repeats,
        };
        const event = resolved;
        return { event: event as unknown as Record<string, unknown>, targets: targets.filter((t) => matches(t.settings.match, event)).map((t) => t.name) };
      });
      if (open && resolved) this.options.log.info({ kind, condition }, 'resolved notification queued');
      return open !== undefined;
    } catch (err) {
      this.options.log.warn({ condition, error: (err as Error).message }, 'resolved notification could not be recorded');
      return false;
    }
  }

  /** Sends a test event to one target now, outside the outbox. */
  async test(name: string): Promise<{ delivered: boolean; error?: string; ms: number; event: NotificationEvent }> {
    const target = await this.target(name);
    if (!target) throw new Error(`no notification target ${name}`);
    const event = this.event({ kind: 'test', severity: 'info', summary: `test notification to target ${name}` }, 'firing', undefined);
    const started = Date.now();
    try {
      await deliver(target.settings, event);
      this.options.onDelivery?.(name, true);
      return { delivered: true, ms: Date.now() - started, event };
    } catch (err) {
      this.options.onDelivery?.(name, false);
      return { delivered: false, error: (err as Error).message, ms: Date.now() - started, event };
    }
  }

  private event(problem: Problem, status: 'firing' | 'resolved', condition: string | undefined): NotificationEvent {
    const event: NotificationEvent = {
      version: 1,
      id: randomUUID(),
      kind: problem.kind,
      severity: problem.severity,
      status,
      at: new Date().toISOString(),
      server: this.options.serverName(),
      summary: problem.summary,
    };
    if (condition !== undefined) event.condition = condition;
    if (problem.detail !== undefined) event.detail = problem.detail;
    if (problem.job !== undefined) event.job = problem.job;
    if (problem.policy !== undefined) event.policy = problem.policy;
    if (problem.agent !== undefined) event.agent = problem.agent;
    if (problem.run !== undefined) event.run = problem.run;
    if (problem.data !== undefined) event.data = problem.data;
    return event;
  }

  private async matching(event: NotificationEvent): Promise<string[]> {
    return (await this.targets()).filter((t) => matches(t.settings.match, event)).map((t) => t.name);
  }

  // ------------------------------------------------------------------ delivery

  /** Looks at every target's outbox (a change, a timer, the start). */
  pump(): void {
    if (this.closed) return;
    void this.targets()
      .then((targets) => {
        for (const t of targets) this.drain(t.name);
      })
      .catch((err: unknown) => this.options.log.warn({ error: (err as Error).message }, 'notification delivery check failed'));
  }

  private drain(name: string): void {
    if (this.closed) return;
    if (this.busy.has(name)) {
      this.again.add(name);
      return;
    }
    this.busy.add(name);
    const work = this.deliverQueued(name)
      .catch((err: unknown) => this.options.log.warn({ target: name, error: (err as Error).message }, 'notification delivery failed'))
      .finally(() => {
        this.busy.delete(name);
        this.inFlight.delete(work);
        if (this.again.delete(name)) this.drain(name);
      });
    this.inFlight.add(work);
  }

  /** Delivers the target's outbox in order until it is empty or a delivery fails. */
  private async deliverQueued(name: string): Promise<void> {
    while (!this.closed) {
      const target = await this.target(name);
      if (!target) return;
      const [head] = await this.catalog.outbox(name, 1);
      if (!head) return;
      const wait = head.nextAttemptAt ? Date.parse(head.nextAttemptAt) - Date.now() : 0;
      if (wait > 0) return this.later(name, wait);
      try {
        await deliver(target.settings, head.event as unknown as NotificationEvent);
      } catch (err) {
        const error = (err as Error).message;
        const delay = Math.min(this.options.retryMaxMs ?? 15 * 60_000, (this.options.retryBaseMs ?? 10_000) * 2 ** Math.min(head.attempts, 20));
        await this.catalog.outboxRetry(name, head.id, { error, nextAttemptAt: new Date(Date.now() + delay).toISOString() });
        this.options.onDelivery?.(name, false);
        this.options.log.warn(
          { target: name, kind: (head.event as { kind?: string }).kind, attempts: head.attempts + 1, retryInMs: delay, error },
          'notification not delivered; will retry',
        );
        return this.later(name, delay);
      }
      await this.catalog.outboxDone(name, head.id);
      this.options.onDelivery?.(name, true);
    }
  }

  private later(name: string, ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timers.get(name));
    const timer = setTimeout(() => {
      this.timers.delete(name);
      this.drain(name);
    }, ms);
    timer.unref();
    this.timers.set(name, timer);
  }
}

/** Secrets are shown as "(set)": the API lists targets to people. */
function targetView(t: ResolvedTarget, waiting: OutboxRecord[]): TargetView {
  const settings: Record<string, unknown> = { ...t.settings };
  for (const secret of ['password', 'secret']) if (settings[secret] !== undefined) settings[secret] = '(set)';
  if (t.settings.kind === 'webhook' && t.settings.headers) settings.headers = Object.fromEntries(Object.keys(t.settings.headers).map((h) => [h, '(set)']));
  const head = waiting[0];
  return {
    name: t.name,
    source: t.source,
    settings,
    pending: waiting.length,
    ...(head?.lastError !== undefined ? { lastError: head.lastError } : {}),
    ...(head?.nextAttemptAt !== undefined ? { nextAttemptAt: head.nextAttemptAt } : {}),
  };
}
