/**
 * Where notifications come from (docs/notifications.md, "Events"): what the catalog
 * records (runs and maintenance tasks as they end), what the scheduler dispatched, and
 * checks on a timer for what is noticed by its absence (a job with no success for longer
 * than its policy's alert-after, an agent not seen, a filling repository).
 */
import type { Catalog, RunRecord, TaskRecord } from '@hoard/catalog';
import type { TargetResult } from '@hoard/protocol';
import type { Logger } from 'pino';
import { policiesByJob } from '../job-history.js';
import type { DispatchedRun } from '../policy-scheduler.js';
import type { Notifier } from './notifier.js';

export interface WatchOptions {
  /** How often the timed checks run (default 60 s). */
  checkMs?: number;
  /** An agent not seen for this long is offline (default 15 minutes); 0 turns the check off. */
  agentOfflineAfterMs?: number;
  /** Repository usage (of the quota) at or above which store-capacity fires (default 85 %). */
  usagePercent?: number;
  /** store-capacity fires when the forecast fills the quota within this many days (default 30). */
  fillWithinDays?: number;
  /** How often the capacity forecast is computed (default hourly): it reads the index. */
  capacityCheckMs?: number;
}

/** What the capacity check needs (the `hoard report` figures). */
export interface CapacityFigures {
  storedBytes: number;
  quotaBytes: number | null;
  fillDays: number | null;
}

/** Characters of a failed source's error (with its stderr tail) kept in an event. */
const ERROR_TAIL = 2000;

export class NotificationSources {
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;
  private lastCapacityCheck = 0;
  private checking: Promise<void> | undefined;

  constructor(
    private readonly catalog: Catalog,
    private readonly notifier: Notifier,
    private readonly options: WatchOptions & {
      log: Logger;
      now: () => number;
      capacity: () => Promise<CapacityFigures>;
    },
  ) {}

  start(): void {
    this.unsubscribe = this.catalog.onChange((change) => {
      if (change.run) void this.runWritten(change.run);
      if (change.task) void this.taskWritten(change.task);
    });
    const every = this.options.checkMs ?? 60_000;
    this.timer = setInterval(() => void this.check(), every);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.unsubscribe?.();
    clearInterval(this.timer);
    await this.checking;
  }

  /** A run as the catalog wrote it: a failure opens run-failed, a success clears the job's problems. */
  async runWritten(run: RunRecord): Promise<void> {
    const restore = (run.result as { restore?: unknown } | undefined)?.restore !== undefined;
    const what = restore ? 'restore run' : 'backup run';
    if (run.state === 'failed') {
      const targets = ((run.result as { targets?: TargetResult[] } | undefined)?.targets ?? []).filter((t) => !t.ok);
      const lines = [run.error ?? 'no error given', ...targets.map((t) => `${t.name}: ${t.error ?? 'failed'}`)];
      const detail = lines.join('\n').slice(-ERROR_TAIL);
      await this.notifier.raise({
        kind: 'run-failed',
        severity: 'error',
        subject: [run.job],
        summary: `job ${run.job}: ${what} ${run.id} failed`,
        detail,
        job: run.job,
        agent: run.agent,
        run: run.id,
        policy: await this.policyOf(run.job),
        data: { error: run.error ?? null, targets: targets.map((t) => ({ name: t.name, error: t.error ?? null })) },
      });
    } else if (run.state === 'succeeded' && !restore) {
      for (const kind of ['run-failed', 'run-missed', 'job-overdue'] as const)
        await this.notifier.resolve(kind, [run.job], `job ${run.job}: backup run ${run.id} succeeded`);
    }
  }

  /** A maintenance task as the catalog wrote it. */
  async taskWritten(task: TaskRecord): Promise<void> {
    if (task.state === 'running') return;
    const scope = task.job ?? 'repository';
    const findings = (task.result as { findings?: { object: string; problem: string }[] } | undefined)?.findings;
    if (task.kind === 'verify' && findings !== undefined) {
      if (findings.length > 0) {
        await this.notifier.raise({
          kind: 'verify-damage',
          severity: 'error',
          subject: [scope],
          summary: `verify of ${task.job ? `job ${task.job}` : 'the repository'} found ${findings.length} problem(s)`,
          detail: findings
            .slice(0, 20)
            .map((f) => `${f.object}: ${f.problem}`)
            .join('\n'),
          job: task.job,
          policy: task.policy,
          data: { task: task.id, findings: findings.length, summary: task.summary ?? null },
        });
      } else await this.notifier.resolve('verify-damage', [scope], `verify of ${task.job ? `job ${task.job}` : 'the repository'} is clean again`);
    }
    // A task that failed by an error (not by what it found) is a maintenance failure.
    const subject = [task.kind, ...(task.job ? [task.job] : [])];
    if (task.state === 'failed' && findings === undefined) {
      await this.notifier.raise({
        kind: 'maintenance-failed',
        severity: 'error',
        subject,
        summary: `${task.kind} of ${task.job ? `job ${task.job}` : 'the repository'} failed`,
        detail: task.error,
        job: task.job,
        policy: task.policy,
        data: { task: task.id, error: task.error ?? null },
      });
    } else if (task.state === 'succeeded') {
      await this.notifier.resolve('maintenance-failed', subject, `${task.kind} of ${task.job ? `job ${task.job}` : 'the repository'} succeeded`);
    }
  }

  /** What the scheduler did: a run that did not start (missed) or waits for its window (held). */
  async dispatched(runs: readonly DispatchedRun[]): Promise<void> {
    for (const d of runs) {
      if (d.skipped !== undefined) {
        await this.notifier.raise({
          kind: 'run-missed',
          severity: 'warning',
          subject: [d.job],
          summary: `job ${d.job}: scheduled ${d.kind} run did not start`,
          detail: d.skipped,
          job: d.job,
          policy: d.policy,
          agent: d.agent,
          data: { reason: d.skipped, at: new Date(d.at).toISOString() },
        });
      } else if (d.deferredUntil !== undefined) {
        // One-off (no condition): it clears by itself when the window opens.
        await this.notifier.raise({
          kind: 'run-held',
          severity: 'info',
          summary: `job ${d.job}: scheduled ${d.kind} run held back by the run window until ${new Date(d.deferredUntil).toISOString()}`,
          job: d.job,
          policy: d.policy,
          agent: d.agent,
          data: { until: new Date(d.deferredUntil).toISOString() },
        });
      }
    }
  }

  /** The timed checks; also callable by tests (serialized). */
  check(): Promise<void> {
    if (!this.checking) {
      this.checking = this.runChecks()
        .catch((err: unknown) => this.options.log.warn({ error: (err as Error).message }, 'notification checks failed'))
        .finally(() => {
          this.checking = undefined;
        });
    }
    return this.checking;
  }

  private async runChecks(): Promise<void> {
    await this.checkOverdueJobs();
    await this.checkAgents();
    const every = this.options.capacityCheckMs ?? 3_600_000;
    if (this.options.now() - this.lastCapacityCheck >= every) {
      this.lastCapacityCheck = this.options.now();
      await this.checkCapacity();
    }
  }

  /** job-overdue: no successful backup for longer than the policy's alert-after. */
  private async checkOverdueJobs(): Promise<void> {
    const now = this.options.now();
    const policies = await this.catalog.listPolicies();
    for (const [job, policy] of await policiesByJob(this.catalog)) {
      if (!policy.alertAfter) continue;
      const [newest] = await this.catalog.listSnapshots({ job, newestFirst: true, limit: 1 });
      // Without a snapshot yet, the clock starts when the policy was made.
      const since = newest ? Date.parse(newest.finishedAt) : Date.parse(policies.find((p) => p.name === policy.name)?.createdAt ?? new Date(now).toISOString());
      if (now - since <= policy.alertAfter.ms) continue;
      const hours = Math.floor((now - since) / 3_600_000);
      await this.notifier.raise({
        kind: 'job-overdue',
        severity: 'error',
        subject: [job],
        summary: `job ${job}: no successful backup for ${hours} h (alert-after ${policy.alertAfter.text})`,
        detail: newest ? `The newest snapshot, ${newest.id}, finished at ${newest.finishedAt}.` : 'The job has no snapshot yet.',
        job,
        policy: policy.name,
        data: { lastSuccess: newest?.finishedAt ?? null, alertAfter: policy.alertAfter.text },
      });
    }
  }

  /** agent-offline: a (not revoked) agent that was seen, and not for agentOfflineAfter. */
  private async checkAgents(): Promise<void> {
    const after = this.options.agentOfflineAfterMs ?? 15 * 60_000;
    if (after === 0) return;
    const now = this.options.now();
    for (const agent of await this.catalog.listAgents()) {
      if (agent.lastSeenAt === undefined) continue;
      const silent = now - Date.parse(agent.lastSeenAt);
      if (silent > after) {
        await this.notifier.raise({
          kind: 'agent-offline',
          severity: 'warning',
          subject: [agent.name],
          summary: `agent ${agent.name} has not been seen for ${Math.floor(silent / 60_000)} min`,
          detail: `Last seen at ${agent.lastSeenAt}. Its scheduled runs wait in the queue until it is back.`,
          agent: agent.name,
          data: { lastSeenAt: agent.lastSeenAt },
        });
      } else await this.notifier.resolve('agent-offline', [agent.name], `agent ${agent.name} is back (seen at ${agent.lastSeenAt})`);
    }
  }

  /** store-capacity: usage past its threshold, or a forecast that fills the quota soon. */
  private async checkCapacity(): Promise<void> {
    const figures = await this.options.capacity();
    if (figures.quotaBytes === null) return;
    const usage = (figures.storedBytes / figures.quotaBytes) * 100;
    const threshold = this.options.usagePercent ?? 85;
    const within = this.options.fillWithinDays ?? 30;
    const reasons: string[] = [];
    if (usage >= threshold) reasons.push(`${usage.toFixed(1)} % of the quota is used (threshold ${threshold} %)`);
    if (figures.fillDays !== null && figures.fillDays <= within) reasons.push(`at the current growth the quota is full in ${figures.fillDays} day(s)`);
    if (reasons.length > 0) {
      await this.notifier.raise({
        kind: 'store-capacity',
        severity: 'warning',
        subject: ['repository'],
        summary: `repository: ${reasons[0]}`,
        detail: reasons.join('\n'),
        data: { storedBytes: figures.storedBytes, quotaBytes: figures.quotaBytes, usagePercent: Number(usage.toFixed(2)), fillDays: figures.fillDays },
      });
    } else
      await this.notifier.resolve('store-capacity', ['repository'], `repository: ${usage.toFixed(1)} % of the quota used, no fill date within ${within} days`);
  }

  private async policyOf(job: string): Promise<string | undefined> {
    return (await policiesByJob(this.catalog)).get(job)?.name;
  }
}
