/**
 * The work the media server does on the repository itself, by hand (`hoard prune|gc
 * --server`) or on a policy's schedule: prune (a job's snapshots by its policy's
 * retention), gc (the whole repository) and verify (a job's snapshots, with or without
 * reading data). Each real run is recorded as a catalog task, so job history shows it;
 * dry runs change nothing and record nothing.
 *
 * GC here runs while backups run: sessions pass every pack they reference to the commit
 * check (backup-session.ts), and after GC the store indexes stop using condemned packs
 * and learn repacked ones (StoreHub.followGc).
 */
import { randomBytes } from 'node:crypto';
import type { Catalog, TaskKind, TaskRecord } from '@hoard/catalog';
import type { Logger } from 'pino';
import { policyRetentionRules, RequestError, type DrillDatabase, type DrillPolicy, type Policy } from '@hoard/protocol';
import {
  collectGarbage,
  NullSink,
  pruneJob,
  restore,
  syncRepositories,
  verify,
  type GcReport,
  type PruneResult,
  type Repository,
  type RetentionRules,
  type SyncReport,
  type VerifyReport,
} from '@hoard/repository';
import { CopyTargets } from './copy-targets.js';
import { drillIntoPostgres } from './drill-database.js';
import type { StoreHub } from './store-hub.js';
import { policyJobs } from './policy-scheduler.js';
import { timeOrderedId } from './run-board.js';

/** What a restore drill restored and checked. */
export interface DrillResult {
  job: string;
  snapshot: string;
  snapshotStartedAt: string;
  bytes: number;
  ms: number;
  /** With a policy `drill:`: the restore into the scratch database and the query's answer. */
  database?: DrillDatabase;
}

export interface GcRequest {
  dryRun?: boolean;
  graceMs?: number;
  repackThreshold?: number;
  breakLock?: boolean;
  /** The policy whose schedule asked for it. */
  policy?: string;
}

export interface VerifyRequest {
  job?: string;
  readData?: boolean;
  /** Percent of the packs read with readData. */
  subset?: number;
  policy?: string;
}

/** A prune result as the API answers it and the task records it. */
export function pruneSummary(r: PruneResult): {
  job: string;
  dryRun: boolean;
  kept: number;
  forgotten: number;
  snapshots: { id: string; source: string; startedAt: string; keep: boolean; reasons: string[] }[];
} {
  return {
    job: r.job,
    dryRun: r.dryRun,
    kept: r.kept,
    forgotten: r.forgotten,
    snapshots: r.decisions.map((d) => ({
      id: d.snapshot.id,
      source: d.snapshot.meta.source.name,
      startedAt: d.snapshot.meta.startedAt,
      keep: d.keep,
      reasons: d.reasons,
    })),
  };
}

export class Maintenance {
  /** One GC at a time in this server (the repository lock covers other processes). */
  private gcRunning: Promise<unknown> | undefined;

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly stores: StoreHub,
    private readonly now: () => Date,
    private readonly log: Logger,
    private readonly copyTargets: CopyTargets = new CopyTargets(),
  ) {}

  /** Names of the copy targets in the server config. */
  copyTargetNames(): string[] {
    return this.copyTargets.names;
  }

  /**
   * Collects the garbage of each copy target this server manages (config `gc`, default on):
   * copy-keep forgets copies there, and without a GC their packs would stay forever. One
   * `gc` task per target, its summary naming the target; a target that fails does not stop
   * the others (each failure is its task's error, and a maintenance-failed notification).
   */
  async gcCopyTargets(request: Pick<GcRequest, 'graceMs'> = {}): Promise<{ target: string; ok: boolean; error?: string }[]> {
    const out: { target: string; ok: boolean; error?: string }[] = [];
    for (const name of this.copyTargets.collected) {
      try {
        await this.recorded(
          'gc',
          {},
          () => this.copyTargets.with(name, (target) => collectGarbage(target, { graceMs: request.graceMs, now: this.now })),
          (r) =>
            `copy target ${name}: condemned ${r.packs.condemned} pack(s), repacked ${r.packs.repacked}, deleted ${r.packs.deleted}; stored ${r.bytes.before} -> ${r.bytes.after} bytes`,
          (r) => ({ target: name, ...r }),
        );
        out.push({ target: name, ok: true });
      } catch (err) {
        out.push({ target: name, ok: false, error: `copy target ${name}: ${(err as Error).message}` });
      }
    }
    return out;
  }

  /**
   * Copies a job's snapshots into the policy's copy target (docs/sync.md): every snapshot
   * the target has no copy of, or with copy-keep only those copy-keep keeps (planned over
   * the job's snapshots here, so that the target's prune and the next copy agree and a
   * pruned copy is not copied again); then the target is pruned by copy-keep. Recorded as a
   * `copy` task of the job.
   */
  async copyJob(job: string, policy: Policy): Promise<{ sync: SyncReport; prune?: PruneResult }> {
    const name = policy.copyTo;
    if (name === undefined) throw new RequestError('invalid_request', `policy ${policy.name} has no copy-to`);
    const keep = policy.copyKeep ? { ...policy.copyKeep, timeZone: policy.schedule.timeZone } : undefined;
    const work = () =>
      this.copyTargets.with(name, async (target) => {
        const snapshots = keep ? (await pruneJob(this.repo, job, keep, { dryRun: true })).decisions.filter((d) => d.keep).map((d) => d.snapshot.id) : undefined;
        const sync = await syncRepositories(this.repo, target, { jobs: [job], snapshots });
        const prune = keep && sync.ok ? await pruneJob(target, job, keep) : undefined;
        return { sync, ...(prune ? { prune } : {}) };
      });
    return this.recorded(
      'copy',
      { job, policy: policy.name },
      work,
      (r) =>
        `to ${name}: ${r.sync.copied} snapshot(s) copied, ${r.sync.present} there before, ${r.sync.blobsWritten} new blob(s)` +
        (r.prune ? `; kept ${r.prune.kept}, forgot ${r.prune.forgotten} there` : ''),
      (r) => ({
        target: name,
        copied: r.sync.snapshots.filter((s) => s.status === 'copied').map((s) => ({ source: s.source, target: s.target })),
        present: r.sync.present,
        blobsWritten: r.sync.blobsWritten,
        bytesStored: r.sync.bytesStored,
        verification: r.sync.verification ?? null,
        ...(r.prune ? { prune: pruneSummary(r.prune) } : {}),
      }),
      (r) =>
        r.sync.ok
          ? undefined
          : `the copies in ${name} did not check out: ${JSON.stringify(r.sync.verification?.checks.filter((c) => c.problems.length > 0) ?? r.sync.damaged)}`,
    );
  }

  /** Applies a policy's retention to each of its jobs. A policy without retention keeps everything. */
  async prunePolicy(policy: Policy, options: { dryRun?: boolean; jobs?: string[] } = {}): Promise<PruneResult[]> {
    const rules = policyRetentionRules(policy);
    if (!rules) return [];
    const jobs = policyJobs(policy).filter((j) => options.jobs === undefined || options.jobs.includes(j));
    const out: PruneResult[] = [];
    for (const job of jobs) out.push(await this.pruneJob(job, rules, { dryRun: options.dryRun, policy: policy.name }));
    return out;
  }

  async pruneJob(job: string, rules: RetentionRules, options: { dryRun?: boolean; policy?: string; source?: string } = {}): Promise<PruneResult> {
    const work = async (): Promise<PruneResult> => {
      const result = await pruneJob(this.repo, job, rules, {
        dryRun: options.dryRun,
        source: options.source,
        onDamaged: (key, error) => this.log.warn({ job, key, error: error.message }, 'damaged snapshot manifest left alone by prune'),
      });
      if (!options.dryRun) {
        for (const d of result.decisions) if (!d.keep) await this.catalog.deleteSnapshot(job, d.snapshot.id);
      }
      return result;
    };
    if (options.dryRun) return work();
    return this.recorded('prune', { job, policy: options.policy }, work, (r) => `kept ${r.kept}, forgot ${r.forgotten} snapshot(s)`, pruneSummary);
  }

  async gc(request: GcRequest = {}): Promise<GcReport> {
    if (this.gcRunning) throw new RequestError('conflict', 'a garbage collection is already running on this server; wait for it to finish');
    const work = async (): Promise<GcReport> => {
      const report = await collectGarbage(this.repo, {
        dryRun: request.dryRun,
        graceMs: request.graceMs,
        repackThreshold: request.repackThreshold,
        breakLock: request.breakLock,
        now: this.now,
      });
      // Even a GC that failed midway may have condemned packs: follow whatever it did.
      if (!request.dryRun) {
        const followed = await this.stores.followGc(true);
        this.log.info({ ...followed }, 'store indexes follow the garbage collection');
      }
      return report;
    };
    const run = request.dryRun
      ? work()
      : this.recorded(
          'gc',
          { policy: request.policy },
          work,
          (r) =>
            `condemned ${r.packs.condemned} pack(s), repacked ${r.packs.repacked}, deleted ${r.packs.deleted}; stored ${r.bytes.before} -> ${r.bytes.after} bytes`,
          (r) => r,
        );
    this.gcRunning = run;
    try {
      return await run;
    } finally {
      this.gcRunning = undefined;
    }
  }

  async verify(request: VerifyRequest = {}): Promise<VerifyReport> {
    return this.recorded(
      'verify',
      { job: request.job, policy: request.policy },
      () => verify(this.repo, { job: request.job, readData: request.readData, subsetPercent: request.readData ? request.subset : undefined }),
      (r) =>
        `${r.findings.length === 0 ? 'ok' : `${r.findings.length} problem(s)`}: ${r.snapshots} snapshot(s), ${r.packs} pack(s)${request.readData ? `, data of ${r.packsRead} pack(s) read (${request.subset ?? 100}%)` : ', structure only'}`,
      (r) => r,
      (r) => (r.findings.length > 0 ? `${r.findings.length} problem(s), first: ${r.findings[0]!.object}: ${r.findings[0]!.problem}` : undefined),
    );
  }

  /**
   * A restore drill: the job's newest snapshot restored through the whole restore pipeline
   * into nothing (every chunk decoded and checked against its fingerprint, the stream hash
   * checked), recorded as a `drill` task. What `hoard restore --verify-only` does, on the
   * server, for the validity report.
   *
   * With `database` (the policy's `drill:`), the job's newest PostgreSQL dump is restored
   * into a scratch database instead, and the policy's query must succeed there
   * (drill-database.ts); a failing query fails the drill with the database's message.
   */
  async drill(job: string, about: { policy?: string; database?: DrillPolicy } = {}): Promise<DrillResult> {
    return this.recorded(
      'drill',
      { job, policy: about.policy },
      async () => {
        const snapshots = (await this.repo.snapshots(job)).sort((a, b) => b.meta.startedAt.localeCompare(a.meta.startedAt));
        const started = Date.now();
        if (about.database) {
          // The database drill needs a PostgreSQL dump: the agent names such a source postgres://host:port/db.
          const newest = snapshots.find((s) => /^postgres(ql)?:\/\//i.test(s.meta.source.name));
          if (!newest)
            throw new RequestError(
              'snapshot_not_found',
              `job ${job} has no snapshot of a PostgreSQL dump (a postgres:// source) to restore into a scratch database; remove drill: from policy ${about.policy ?? '?'} or back up a postgres:// source in it`,
            );
          const { bytes, database } = await drillIntoPostgres(this.repo, newest, about.database, this.now());
          return { job, snapshot: newest.id, snapshotStartedAt: newest.meta.startedAt, bytes, ms: Date.now() - started, database };
        }
        const [newest] = snapshots;
        if (!newest) throw new RequestError('snapshot_not_found', `job ${job} has no snapshot to restore`);
        const sink = new NullSink({ discards: true });
        const restored = await restore(this.repo, newest, sink);
        return { job, snapshot: newest.id, snapshotStartedAt: newest.meta.startedAt, bytes: restored.bytesWritten, ms: Date.now() - started };
      },
      (r) =>
        `snapshot ${r.snapshot} of ${r.snapshotStartedAt} restored and checked: ${r.bytes} bytes in ${(r.ms / 1000).toFixed(1)} s` +
        (r.database ? `, into ${r.database.database} on ${r.database.server} with ${r.database.tool}; the query returned ${r.database.rows} row(s)` : ''),
      (r) => r,
    );
  }

  /** Runs `work` as a recorded task: running, then succeeded or failed with a summary. */
  private async recorded<T>(
    kind: TaskKind,
    about: { job?: string; policy?: string },
    work: () => Promise<T>,
    summary: (result: T) => string,
    result: (result: T) => unknown,
    failure?: (result: T) => string | undefined,
  ): Promise<T> {
    const task: TaskRecord = {
      id: timeOrderedId(this.now(), `${kind}-${randomBytes(4).toString('hex')}`),
      kind,
      ...(about.job !== undefined ? { job: about.job } : {}),
      ...(about.policy !== undefined ? { policy: about.policy } : {}),
      state: 'running',
      startedAt: this.now().toISOString(),
    };
    await this.catalog.putTask(task);
    try {
      const value = await work();
      const error = failure?.(value);
      await this.catalog.putTask({
        ...task,
        state: error ? 'failed' : 'succeeded',
        finishedAt: this.now().toISOString(),
        summary: summary(value),
        result: result(value),
        ...(error ? { error } : {}),
      });
      this.log[error ? 'warn' : 'info']({ task: task.id, kind, job: about.job, summary: summary(value) }, `${kind} finished`);
      return value;
    } catch (err) {
      const message = (err as Error)?.message ?? String(err);
      await this.catalog.putTask({ ...task, state: 'failed', finishedAt: this.now().toISOString(), error: message }).catch(() => undefined);
      this.log.warn({ task: task.id, kind, job: about.job, error: message }, `${kind} failed`);
      throw err;
    }
  }
}
