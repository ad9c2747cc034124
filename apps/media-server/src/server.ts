/**
 * The media server: an HTTP API (routes/, declared in @hoard/protocol's api contracts) in
 * front of one repository.
 *
 * It owns the fingerprint stores (indexes in memory, one shared writer per store), the
 * backup sessions, the runs handed to agents, and the catalog (a cache of the bucket plus
 * the history only the server knows). It never connects to an agent: agents poll. This
 * class holds that state and its lifecycle; each route module handles one concern.
 */
import { Catalog, type SnapshotRecord } from '@hoard/catalog';
import { parseSchedule, validatePolicy, type Policy, type RunView, type TargetSettings } from '@hoard/protocol';
import type { Repository, SnapshotInfo } from '@hoard/repository';
import { pino, type Logger } from 'pino';
import { Authenticator, hashToken, newToken } from './auth.js';
import { Api } from './http/api.js';
import { buildReport } from './capacity-report.js';
import { buildValidityReport } from './validity-report.js';
import { MaintenanceScheduler } from './maintenance-scheduler.js';
import { Notifier } from './notify/notifier.js';
import { NotificationSources, type WatchOptions } from './notify/sources.js';
import { Maintenance } from './maintenance.js';
import { ServerMetrics } from './metrics.js';
import { PolicyScheduler, policyJobs, type SchedulerClock } from './policy-scheduler.js';
import { registerRoutes } from './routes/index.js';
import { RunBoard } from './run-board.js';
import { recordLateSnapshots } from './run-results.js';
import { RunLeases } from './run-leases.js';
import { SessionRegistry } from './session-registry.js';
import { StateMirror, type StateMirrorOptions } from './state-mirror.js';
import { StoreHub } from './store-hub.js';
import { CopyTargets, type CopyTargetConfig } from './copy-targets.js';
import { ConsoleEvents } from './console-events.js';
import { ConsoleSessions } from './console-sessions.js';
import { registerConsoleAssets } from './http/console-assets.js';

/** Notification settings (docs/notifications.md); the config file's `notifications`. */
export interface NotificationOptions extends WatchOptions {
  /** Targets from the config file (read-only through the API). */
  targets?: Record<string, TargetSettings>;
  /** The server's name in events (default its URL). */
  serverName?: string;
  /** First retry delay of a failed delivery (default 10 s). */
  retryBaseMs?: number;
  /** Longest delay between delivery attempts (default 15 minutes). */
  retryMaxMs?: number;
  /** The periodic backup-validity report, sent to targets (docs/notifications.md). */
  report?: ValidityReportSchedule;
}

export interface ValidityReportSchedule {
  /** A cron expression or calendar word, e.g. `0 6 1 * *` or `monthly`. */
  schedule: string;
  /** Time zone of the schedule (default UTC). */
  timeZone?: string;
  /** The period the report covers, in days (default 90). */
  days?: number;
  /** Run a restore drill of every job first (default true). */
  drill?: boolean;
  /** Notification targets that get it. */
  targets: string[];
}

export interface MediaServerOptions {
  repo: Repository;
  /** Directory of the LevelDB catalog. */
  catalogDir: string;
  /** Default 127.0.0.1:8420; port 0 picks a free port. */
  host?: string;
  port?: number;
  tls?: { certFile: string; keyFile: string };
  /** Idle time after which a backup session expires (default 10 minutes). */
  sessionIdleMs?: number;
  /**
   * A store's open pack is sealed and uploaded when no blob was added to it for this long
   * (default 5 s), so what an agent that went away uploaded becomes durable for its retry.
   */
  sealIdleMs?: number;
  /** Decode uploaded blobs and check their fingerprints (default true). */
  verifyUploads?: boolean;
  /** Batch limits announced to agents. */
  batchChunks?: number;
  batchBytes?: number;
  logger?: Logger;
  /** pino level when no logger is given (default info). */
  logLevel?: string;
  /** Run the policies' schedules (default true). */
  scheduler?: boolean;
  /** Repository quota for `hoard report`'s fill date when the request names none (bytes). */
  quotaBytes?: number;
  /** Run once at start what was missed while the server was down (default true). */
  catchUpMissedRuns?: boolean;
  /** The scheduler's clock (tests). */
  clock?: SchedulerClock;
  /**
   * When the server collects garbage: a cron expression or calendar word (default
   * `30 4 * * *`, daily at 04:30), or null for never (then run `hoard gc --server`).
   */
  gcSchedule?: string | null;
  /** Time zone of gcSchedule (default UTC). */
  gcTimeZone?: string;
  /** Grace period of scheduled GC runs (default 24 h). */
  gcGraceMs?: number;
  /**
   * How long a claimed run lives without its agent renewing its lease (default 60 s); the
   * agent renews every quarter of it. docs/protocol.md, "Leases".
   */
  runLeaseMs?: number;
  /** How often passed leases are looked for (default a quarter of the lease, 0.1-5 s). */
  runLeaseCheckMs?: number;
  /**
   * An empty catalog takes over the server state the bucket holds (`--adopt-state`);
   * without it such a start is refused. docs/repair.md, "Losing the server's data directory".
   */
  adoptState?: boolean;
  /** How soon changes reach the server state in the bucket (state-mirror.ts). */
  stateMirror?: StateMirrorOptions;
  /** Notification targets and checks (docs/notifications.md). */
  notifications?: NotificationOptions;
  /** Second repositories a policy's copy-to names (config `copyTargets`, docs/sync.md). */
  copyTargets?: Record<string, CopyTargetConfig>;
  /** How long a web console sign-in lasts (default 8 hours; docs/console.md). */
  consoleSessionMs?: number;
  /** The built web console served under /ui (default apps/console/dist of this checkout). */
  consoleDir?: string;
}

const DEFAULT_PORT = 8420;
/** The version in the OpenAPI document and `hoard --version`. */
const VERSION = '0.1.0';

export class MediaServer {
  readonly stores: StoreHub;
  readonly runs: RunBoard;
  readonly leases: RunLeases;
  readonly scheduler: PolicyScheduler;
  readonly maintenance: Maintenance;
  readonly maintenanceScheduler: MaintenanceScheduler;
  readonly metrics: ServerMetrics;
  readonly sessions: SessionRegistry;
  readonly auth: Authenticator;
  readonly stateMirror: StateMirror;
  readonly notifier: Notifier;
  readonly notificationSources: NotificationSources;
  /** Web console sign-ins (in memory: console-sessions.ts says why). */
  readonly consoleSessions: ConsoleSessions;
  /** The console's live event stream (GET /v1/events). */
  readonly consoleEvents: ConsoleEvents;
  readonly log: Logger;
  /** Aborted when the server stops: long polls answer at once. */
  readonly polls = new AbortController();
  /** Prunes started after runs finished, not awaited by the agent's request. */
  private readonly background = new Set<Promise<unknown>>();
  private readonly expiry: NodeJS.Timeout;
  private api: Api | undefined;
  url = '';

  private constructor(
    readonly repo: Repository,
    readonly catalog: Catalog,
    readonly options: MediaServerOptions,
  ) {
    this.log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'hoard-server' } });
    this.stores = new StoreHub(repo, { sealIdleMs: options.sealIdleMs });
    this.runs = new RunBoard(catalog, { leaseMs: options.runLeaseMs });
    // A run the server ended (lease passed, session expired, restart) is retried by the
    // policy's rules like a run its agent reported failed.
    this.leases = new RunLeases(catalog, this.runs, {
      checkMs: options.runLeaseCheckMs,
      log: this.log.child({ component: 'leases' }),
      onEnded: async (run) => {
        // What the run's sessions were doing can no longer finish it; a commit already
        // under way may still land, and then the run's record names its snapshot.
        await this.sessions.endRun(run.id, `run ${run.id} ended ${run.state}: ${run.error ?? 'no reason given'}`);
        await recordLateSnapshots(catalog, this.runs, run.id);
        return this.scheduler.runFinished(run);
      },
    });
    const notify = options.notifications ?? {};
    this.notifier = new Notifier(catalog, {
      configTargets: notify.targets,
      serverName: () => notify.serverName ?? this.url,
      retryBaseMs: notify.retryBaseMs,
      retryMaxMs: notify.retryMaxMs,
      log: this.log.child({ component: 'notify' }),
      onDelivery: (target, ok) => this.metrics.notifications.inc({ target, result: ok ? 'delivered' : 'failed' }),
    });
    this.notificationSources = new NotificationSources(catalog, this.notifier, {
      ...notify,
      log: this.log.child({ component: 'notify' }),
      now: () => this.now().getTime(),
      capacity: () => this.capacityFigures(),
    });
    this.scheduler = new PolicyScheduler(catalog, this.runs, {
      clock: options.clock,
      catchUp: options.catchUpMissedRuns,
      log: this.log,
      onDispatched: (runs) => void this.notificationSources.dispatched(runs),
    });
    this.maintenance = new Maintenance(
      repo,
      catalog,
      this.stores,
      () => this.now(),
      this.log.child({ component: 'maintenance' }),
      new CopyTargets(options.copyTargets),
    );
    const gcSchedule = options.gcSchedule === null ? null : parseSchedule(options.gcSchedule ?? '30 4 * * *', options.gcTimeZone ?? 'UTC');
    this.maintenanceScheduler = new MaintenanceScheduler(catalog, this.maintenance, {
      clock: options.clock ?? { now: () => Date.now() },
      gcSchedule,
      gcGraceMs: options.gcGraceMs,
      log: this.log,
      ...(options.notifications?.report
        ? {
            validityReport: {
              schedule: parseSchedule(options.notifications.report.schedule, options.notifications.report.timeZone ?? 'UTC'),
              send: () => this.sendValidityReport(options.notifications!.report!),
            },
          }
        : {}),
    });
    this.consoleSessions = new ConsoleSessions(catalog, { ttlMs: options.consoleSessionMs });
    this.consoleEvents = new ConsoleEvents(catalog);
    this.auth = new Authenticator(catalog, this.consoleSessions);
    this.stateMirror = new StateMirror(repo, catalog, this.log.child({ component: 'state-mirror' }), options.stateMirror);
    this.metrics = new ServerMetrics(this.stores, () => this.sessions.running, catalog);
    this.sessions = new SessionRegistry(catalog, this.leases, this.metrics, this.log, options.sessionIdleMs ?? 10 * 60_000);
    this.expiry = setInterval(() => void this.sessions.expireIdle(), Math.min(5_000, this.sessions.idleMs));
    this.expiry.unref();
  }

  /**
   * Opens the catalog, adopts the server state in the bucket into an empty catalog (or
   * refuses to start: options.adoptState), loads every fingerprint store's index, rebuilds
   * the snapshot list from the bucket (the catalog is a cache: invariant 3, docs/design.md),
   * starts mirroring the catalog into the bucket and listening. Returns the admin token
   * when this start created one: the first start, and a start that adopted a state.
   */
  static async start(options: MediaServerOptions): Promise<{ server: MediaServer; adminToken?: string; adopted: boolean }> {
    const catalog = await Catalog.open(options.catalogDir);
    let server: MediaServer | undefined;
    try {
      server = new MediaServer(options.repo, catalog, options);
      // An empty catalog and a server state in the bucket: adopted, or the start refused.
      const { adopted } = await server.stateMirror.adoptAtStart(options.adoptState === true);
      // Before anyone can connect: what a previous process left running is over.
      await server.leases.reapAtStart();
      await server.stores.loadAll();
      await server.rebuildSnapshots();
      let adminToken: string | undefined;
      // An adopted state's admin tokens may have been known only to the lost data
      // directory (<data>/admin-token): the new one is the way in, and may be revoked.
      if (adopted || (await catalog.listAdminTokens()).length === 0) {
        adminToken = newToken('admin');
        await catalog.setAdminToken(hashToken(adminToken), { label: adopted ? 'created when the server state was adopted' : 'created at first start' });
      }
      server.stateMirror.start();
      server.api = await Api.create({ auth: server.auth, metrics: server.metrics, log: server.log, tls: options.tls, version: VERSION });
      registerRoutes(server.api, server);
      registerConsoleAssets(server.api.app, options.consoleDir);
      server.url = await server.api.listen(options.host ?? '127.0.0.1', options.port ?? DEFAULT_PORT);
      server.log.info({ url: server.url, repository: server.repo.location }, 'media server listening');
      server.leases.start();
      server.notifier.start();
      server.notificationSources.start();
      if (options.scheduler !== false) {
        server.scheduler.start();
        server.maintenanceScheduler.start();
      }
      return { server, adminToken, adopted: adopted !== undefined };
    } catch (err) {
      if (server) await server.close().catch(() => undefined);
      else await catalog.close().catch(() => undefined);
      throw err;
    }
  }

  get stopping(): boolean {
    return this.polls.signal.aborted;
  }

  async close(): Promise<void> {
    this.leases.stop();
    this.scheduler.stop();
    this.maintenanceScheduler.stop();
    await this.notificationSources.close();
    await this.settled();
    clearInterval(this.expiry);
    this.polls.abort();
    this.runs.close();
    this.consoleEvents.close();
    if (this.api) await this.api.close();
    this.auth.close();
    await this.notifier.close();
    await this.stateMirror.close();
    await this.stores.close();
    await this.catalog.close();
  }

  /** Replaces the catalog's snapshot list with what the bucket holds. */
  async rebuildSnapshots(): Promise<number> {
    const all = await this.repo.snapshots(undefined, {
      onDamaged: (key, error) => this.log.warn({ key, error: error.message }, 'damaged snapshot manifest skipped'),
    });
    await this.catalog.replaceSnapshots(undefined, all.map(snapshotRecord));
    return all.length;
  }

  /** Stored bytes against the quota, and the forecast: the store-capacity check's input. */
  async capacityFigures(): Promise<{ storedBytes: number; quotaBytes: number | null; fillDays: number | null }> {
    if (this.options.quotaBytes === undefined) return { storedBytes: 0, quotaBytes: null, fillDays: null };
    const { capacity } = await buildReport(this.catalog, this.repo, { now: this.now(), quotaBytes: this.options.quotaBytes, growthYears: 1 });
    return { storedBytes: capacity.storedBytes, quotaBytes: capacity.quotaBytes, fillDays: capacity.fill.status === 'full' ? 0 : capacity.fill.days };
  }

  /**
   * The periodic validity report: drills first (when asked), then the report over the
   * period, queued for its targets like any notification (a mail attaches the HTML page).
   */
  async sendValidityReport(schedule: ValidityReportSchedule): Promise<void> {
    if (schedule.drill !== false) {
      for (const job of [...new Set((await this.catalog.listSnapshots({})).map((s) => s.job))].sort()) {
        const policy = (await this.policies()).find((p) => policyJobs(p).includes(job));
        await this.maintenance.drill(job, { policy: policy?.name, database: policy?.drill }).catch(() => undefined); // recorded as a failed drill task
      }
    }
    const report = await buildValidityReport(this.catalog, this.repo, {
      now: this.now(),
      days: schedule.days ?? 90,
      server: this.options.notifications?.serverName ?? this.url,
      quotaBytes: this.options.quotaBytes,
    });
    const attention = report.jobs.filter((j) => !j.ok);
    await this.notifier.send(
      {
        kind: 'validity-report',
        severity: report.ok ? 'info' : 'warning',
        summary: `backup validity report ${report.since.slice(0, 10)} to ${report.until.slice(0, 10)}: ${report.ok ? 'every job complies' : `${attention.length} of ${report.jobs.length} job(s) need attention`}`,
        detail: [
          `${report.jobs.length} job(s); the report is attached as an HTML page.`,
          ...attention.flatMap((j) => j.problems.map((p) => `${j.job}: ${p}`)),
        ].join('\n'),
        data: { report },
      },
      schedule.targets,
    );
  }

  /** The scheduler's clock, so what `policy show` lists is what the scheduler will do. */
  now(): Date {
    return new Date(this.options.clock?.now() ?? Date.now());
  }

  /** Every stored policy that validates (the scheduler logs the others). */
  async policies(): Promise<Policy[]> {
    const out: Policy[] = [];
    for (const record of await this.catalog.listPolicies()) {
      try {
        out.push(validatePolicy(record.document));
      } catch {
        // reported by the scheduler
      }
    }
    return out;
  }

  /** After a successful run of a policy's job: prune that job by the policy's retention. */
  afterRun(run: RunView): void {
    const work = (async () => {
      const policy = (await this.policies()).find((p) => policyJobs(p).includes(run.job));
      const done = await this.maintenanceScheduler.afterRun(run, policy);
      if (done && !done.ok) this.log.warn({ job: run.job, error: done.error }, 'prune after the run failed');
      // The copy is a task of its own: its failure is recorded there and never fails the run.
      const copied = await this.maintenanceScheduler.copyAfterRun(run, policy);
      if (copied && !copied.ok) this.log.warn({ job: run.job, error: copied.error }, 'copy after the run failed');
    })().catch((err: unknown) => this.log.warn({ job: run.job, error: (err as Error).message }, 'prune after the run failed'));
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  /** Waits for work started in the background (prunes after runs). */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }
}

export function snapshotRecord(s: SnapshotInfo): SnapshotRecord {
  return {
    job: s.meta.job,
    id: s.id,
    key: s.key,
    source: s.meta.source,
    startedAt: s.meta.startedAt,
    finishedAt: s.meta.finishedAt,
    logicalBytes: s.meta.logicalBytes,
    store: s.meta.store,
  };
}
