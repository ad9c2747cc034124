/**
 * Schedules the server's own work, next to PolicyScheduler (which schedules backups):
 *
 * - verify: each policy's `verify:` schedules, for each of its jobs: a structure check
 *   (default daily) and a read-data check of a subset of the packs (default weekly, 10%);
 * - prune: after every successful run of a policy's job, that job is pruned by the
 *   policy's retention (PolicyScheduler calls `afterRun`);
 * - gc: the whole repository on the server's GC schedule (default daily 04:30 UTC), so
 *   what prune forgot is condemned one night and deleted the next (grace 24 h).
 *
 * Like PolicyScheduler, fire times come from @hoard/protocol's schedule code, the clock
 * is injectable (a test drives months in seconds), and the last handled time is kept in
 * the catalog, so a restart neither repeats nor loses a check: fire times missed while
 * the server was down collapse into one run at start.
 */
import type { Catalog } from '@hoard/catalog';
import type { Logger } from 'pino';
import { fireTimes, nextVerifyRuns, validatePolicy, type Policy, type RunView, type Schedule } from '@hoard/protocol';
import type { Maintenance } from './maintenance.js';
import { Serial } from './serial.js';
import { policyJobs, type SchedulerClock } from './policy-scheduler.js';

const MAX_SLEEP_MS = 60_000;
const VERIFY_STATE = (policy: string) => `maintenance/verify/${policy}`;
const GC_STATE = 'maintenance/gc';
const REPORT_STATE = 'maintenance/validity-report';

interface CheckState {
  checkedUntil: number;
}

export interface MaintenanceSchedulerOptions {
  clock: SchedulerClock;
  /** The repository-wide GC schedule; null: no scheduled GC. */
  gcSchedule: Schedule | null;
  /** Grace period of scheduled GC runs (default: the repository default, 24 h). */
  gcGraceMs?: number;
  /** The server's logger; the scheduler logs through a child of it (component maintenance-scheduler). */
  log: Logger;
  /** The periodic backup-validity report: when, and what sends it (the server's notifications). */
  validityReport?: { schedule: Schedule; send: () => Promise<void> };
}

export interface MaintenanceDone {
  kind: 'verify-structure' | 'verify-data' | 'prune' | 'gc' | 'copy' | 'validity-report';
  job?: string;
  policy?: string;
  /** A copy target's GC: which target. */
  target?: string;
  ok: boolean;
  error?: string;
}

export class MaintenanceScheduler {
  private timer: NodeJS.Timeout | undefined;
  private stopped = true;
  private readonly checks = new Serial();
  private readonly log: Logger;

  constructor(
    private readonly catalog: Catalog,
    private readonly maintenance: Maintenance,
    private readonly options: MaintenanceSchedulerOptions,
  ) {
    this.log = options.log.child({ component: 'maintenance-scheduler' });
  }

  start(): void {
    this.stopped = false;
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** Handles every verify and GC fire time up to now; calls are serialized. */
  tick(): Promise<MaintenanceDone[]> {
    return this.checks.run(() => this.check());
  }

  /**
   * A run finished: after a successful run of a policy's job, prune that job by the
   * policy's retention. Failed runs prune nothing (the snapshots they would have
   * replaced must stay).
   */
  async afterRun(run: RunView, policy: Policy | undefined): Promise<MaintenanceDone | undefined> {
    if (run.state !== 'succeeded' || policy === undefined) return undefined;
    // Retention runs on the policy's schedule, not after a run someone started by hand (or
    // a restore run): like restic and PBS, which prune only on a schedule or when asked.
    // A manual run between two scheduled ones would otherwise make that day's earlier
    // snapshot go without anyone asking; the next scheduled run's prune applies the rules.
    if (run.manual || run.restore) return undefined;
    try {
      const results = await this.maintenance.prunePolicy(policy, { jobs: [run.job] });
      return results.length > 0 ? { kind: 'prune', job: run.job, policy: policy.name, ok: true } : undefined;
    } catch (err) {
      return { kind: 'prune', job: run.job, policy: policy.name, ok: false, error: (err as Error).message };
    }
  }

  /**
   * A run finished: after a successful backup run of a job whose policy has copy-to, copy
   * the job's new snapshots there. Manual runs too (a copy forgets nothing). A failed copy
   * is a failed `copy` task; the run stays succeeded.
   */
  async copyAfterRun(run: RunView, policy: Policy | undefined): Promise<MaintenanceDone | undefined> {
    if (run.state !== 'succeeded' || run.restore || policy?.copyTo === undefined) return undefined;
    try {
      await this.maintenance.copyJob(run.job, policy);
      return { kind: 'copy', job: run.job, policy: policy.name, ok: true };
    } catch (err) {
      return { kind: 'copy', job: run.job, policy: policy.name, ok: false, error: (err as Error).message };
    }
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.tick()
        .catch((err: unknown) => this.log.warn({ error: (err as Error).message }, 'maintenance check failed'))
        .finally(() => {
          if (!this.stopped) this.schedule(MAX_SLEEP_MS);
        });
    }, ms);
    this.timer.unref();
  }

  private async check(): Promise<MaintenanceDone[]> {
    const now = this.options.clock.now();
    const out: MaintenanceDone[] = [];
    for (const record of await this.catalog.listPolicies()) {
      let policy: Policy;
      try {
        policy = validatePolicy(record.document);
      } catch {
        continue; // PolicyScheduler reports it
      }
      const due = await this.due(VERIFY_STATE(policy.name), now, (from, to) => verifyRunsBetween(policy, from, to));
      if (due.length === 0) continue;
      // Several at once (missed while down, or a coarse clock): one check, reading data if any did.
      const kind = due.includes('verify-data') ? 'verify-data' : 'verify-structure';
      for (const job of policyJobs(policy)) {
        try {
          const report = await this.maintenance.verify({ job, readData: kind === 'verify-data', subset: policy.verify.subset, policy: policy.name });
          out.push({
            kind,
            job,
            policy: policy.name,
            ok: report.findings.length === 0,
            ...(report.findings.length > 0 ? { error: `${report.findings.length} problem(s)` } : {}),
          });
        } catch (err) {
          out.push({ kind, job, policy: policy.name, ok: false, error: (err as Error).message });
        }
      }
    }
    const schedule = this.options.gcSchedule;
    if (schedule) {
      const due = await this.due(GC_STATE, now, (from, to) => timesBetween(schedule, from, to).map(() => 'gc'));
      if (due.length > 0) {
        try {
          await this.maintenance.gc({ graceMs: this.options.gcGraceMs });
          out.push({ kind: 'gc', ok: true });
        } catch (err) {
          out.push({ kind: 'gc', ok: false, error: (err as Error).message });
        }
        // Then the copy targets': what copy-keep forgot there is freed on the same schedule.
        for (const done of await this.maintenance.gcCopyTargets({ graceMs: this.options.gcGraceMs }))
          out.push({ kind: 'gc', ok: done.ok, target: done.target, ...(done.error !== undefined ? { error: done.error } : {}) });
      }
    }
    const report = this.options.validityReport;
    if (report) {
      const due = await this.due(REPORT_STATE, now, (from, to) => timesBetween(report.schedule, from, to));
      if (due.length > 0) {
        try {
          await report.send();
          out.push({ kind: 'validity-report', ok: true });
        } catch (err) {
          this.log.warn({ error: (err as Error).message }, 'validity report failed');
          out.push({ kind: 'validity-report', ok: false, error: (err as Error).message });
        }
      }
    }
    return out;
  }

  /** Fire times in (last check, now]; a first check starts from now (nothing is "missed" before it existed). */
  private async due<K>(key: string, now: number, between: (from: number, to: number) => K[]): Promise<K[]> {
    const state = await this.catalog.getMeta<CheckState>(key);
    await this.catalog.putMeta(key, { checkedUntil: now } satisfies CheckState);
    if (!state || now <= state.checkedUntil) return [];
    return between(state.checkedUntil, now);
  }
}

function verifyRunsBetween(policy: Policy, from: number, to: number): ('verify-structure' | 'verify-data')[] {
  const out: ('verify-structure' | 'verify-data')[] = [];
  let cursor = from;
  for (;;) {
    const batch = nextVerifyRuns(policy, new Date(cursor), 64);
    for (const run of batch) {
      if (run.at.getTime() > to) return out;
      out.push(run.kind);
      cursor = run.at.getTime();
    }
    if (batch.length < 64) return out;
  }
}

function timesBetween(schedule: Schedule, from: number, to: number): number[] {
  const out: number[] = [];
  for (const t of fireTimes(schedule, from)) {
    if (t > to) break;
    if (t > from) out.push(t);
  }
  return out;
}
