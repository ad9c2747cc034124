/**
 * The media server: an HTTP API in front of one repository. Routes and bodies are
 * specified in docs/protocol.md.
 *
 * It owns the fingerprint stores (indexes in memory, one shared writer per store), the
 * backup sessions, the runs handed to agents, and the catalog (a cache of the bucket plus
 * the history only the server knows). It never connects to an agent: agents poll.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { resolveChunker, type ChunkerSpec } from '@hoard/chunker';
import {
  AgentExistsError,
  AgentNotFoundError,
  AgentRevokedError,
  Catalog,
  CatalogError,
  CatalogValidationError,
  JobNotFoundError,
  TokenInUseError,
  type SnapshotRecord,
} from '@hoard/catalog';
import {
  CONTENT_TYPE_BINARY,
  CONTENT_TYPE_RESTORE_FRAMES,
  dataFrameHeader,
  endFrame,
  errorFrame,
  zerosFrame,
  type RestoreEnd,
  type RestoreFailure,
  MAX_CHUNK_REFS,
  MAX_QUERY_FINGERPRINTS,
  RequestError,
  WireFormatError,
  checkAgentName,
  checkJobName,
  checkQueryBody,
  chunkerToWire,
  encodeMissingBitmap,
  encodeRefs,
  parseBeginSession,
  parseCommit,
  parseCreateRun,
  parseFinishRun,
  parseRunProgress,
  parseSourceSpec,
  parseSchedule,
  nextPolicyRuns,
  parsePolicyDocument,
  policyToDocument,
  serializePolicies,
  validatePolicy,
  type BeginSessionResponse,
  type Policy,
  type RunView,
  type CommitResponse,
  type SnapshotSummary,
  type WireRef,
} from '@hoard/protocol';
import {
  findEnvironmentError,
  GcConflictError,
  GcLockedError,
  IntegrityError,
  InvalidJobNameError,
  RetentionRuleError,
  SnapshotProtectedError,
  InvalidStoreNameError,
  ObjectFormatError,
  RepositoryError,
  SnapshotNotFoundError,
  StoreScopeError,
  UnknownStoreError,
  StreamSink,
  restore,
  snapshotChunkRefs,
  type Repository,
  type SnapshotInfo,
} from '@hoard/repository';
import { Authenticator, hashToken, newToken, requireAdmin, requireAgent, type Principal } from './auth.js';
import { BackupSession } from './backup-session.js';
import { BodyReader, readBody, readJson, requireContentType, sendBinary, sendJson } from './http-util.js';
import { ServerMetrics } from './metrics.js';
import { RunBoard } from './run-board.js';
import { RunLeases } from './run-leases.js';
import { checkFinishReport } from './run-results.js';
import { clientGone } from './client-gone.js';
import { jobHistory, listJobSummaries, queueJobRun } from './job-history.js';
import { buildReport } from './capacity-report.js';
import { queueRestoreRun, restoreReadAccess } from './restore-runs.js';
import { PolicyScheduler, policyJobName, policyJobs, type SchedulerClock } from './policy-scheduler.js';
import { Maintenance, pruneSummary } from './maintenance.js';
import { MaintenanceScheduler } from './maintenance-scheduler.js';
import { StoreHub } from './store-hub.js';

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
}

const DEFAULT_PORT = 8420;
const MAX_POLL_MS = 60_000;

type Handler = (req: IncomingMessage, res: ServerResponse, who: Principal, params: string[], url: URL) => Promise<void>;

interface Route {
  method: string;
  pattern: RegExp;
  handler: Handler;
  /** Routes anyone may call (no token). */
  open?: boolean;
}

export class MediaServer {
  readonly stores: StoreHub;
  readonly runs: RunBoard;
  readonly leases: RunLeases;
  readonly scheduler: PolicyScheduler;
  readonly maintenance: Maintenance;
  readonly maintenanceScheduler: MaintenanceScheduler;
  /** Prunes started after runs finished, not awaited by the agent's request. */
  private readonly background = new Set<Promise<unknown>>();
  readonly metrics: ServerMetrics;
  readonly log: Logger;
  private readonly sessions = new Map<string, BackupSession>();
  private readonly auth: Authenticator;
  private readonly routes: Route[];
  private readonly expiry: NodeJS.Timeout;
  private readonly polls = new AbortController();
  private server: Server | undefined;
  url = '';

  private constructor(
    readonly repo: Repository,
    readonly catalog: Catalog,
    private readonly options: MediaServerOptions,
  ) {
    this.log = options.logger ?? pino({ level: options.logLevel ?? 'info', base: { service: 'hoard-server' } });
    this.stores = new StoreHub(repo, { sealIdleMs: options.sealIdleMs });
    this.runs = new RunBoard(catalog, { leaseMs: options.runLeaseMs });
    // A run the server ended (lease passed, session expired, restart) is retried by the
    // policy's rules like a run its agent reported failed.
    this.leases = new RunLeases(catalog, this.runs, { checkMs: options.runLeaseCheckMs, log: this.log, onEnded: (run) => this.scheduler.runFinished(run) });
    this.scheduler = new PolicyScheduler(catalog, this.runs, { clock: options.clock, catchUp: options.catchUpMissedRuns, log: this.log });
    this.maintenance = new Maintenance(repo, catalog, this.stores, () => this.now(), this.log);
    const gcSchedule = options.gcSchedule === null ? null : parseSchedule(options.gcSchedule ?? '30 4 * * *', options.gcTimeZone ?? 'UTC');
    this.maintenanceScheduler = new MaintenanceScheduler(catalog, this.maintenance, { clock: options.clock ?? { now: () => Date.now() }, gcSchedule, gcGraceMs: options.gcGraceMs, log: this.log });
    this.auth = new Authenticator(catalog);
    this.metrics = new ServerMetrics(this.stores, () => [...this.sessions.values()].filter((s) => s.state === 'running').length);
    this.routes = this.buildRoutes();
    this.expiry = setInterval(() => void this.expireSessions(), Math.min(5_000, this.idleMs));
    this.expiry.unref();
  }

  /**
   * Opens the catalog, loads every fingerprint store's index, rebuilds the snapshot list
   * from the bucket (the catalog is a cache: invariant 3) and starts listening.
   * Returns the admin token when this start created the first one.
   */
  static async start(options: MediaServerOptions): Promise<{ server: MediaServer; adminToken?: string }> {
    const catalog = await Catalog.open(options.catalogDir);
    let server: MediaServer | undefined;
    try {
      server = new MediaServer(options.repo, catalog, options);
      // Before anyone can connect: what a previous process left running is over.
      await server.leases.reapAtStart();
      await server.stores.loadAll();
      await server.rebuildSnapshots();
      let adminToken: string | undefined;
      if ((await catalog.listAdminTokens()).length === 0) {
        adminToken = newToken('admin');
        await catalog.setAdminToken(hashToken(adminToken), { label: 'created at first start' });
      }
      await server.listen();
      server.leases.start();
      if (options.scheduler !== false) {
        server.scheduler.start();
        server.maintenanceScheduler.start();
      }
      return { server, adminToken };
    } catch (err) {
      if (server) await server.close().catch(() => undefined);
      else await catalog.close().catch(() => undefined);
      throw err;
    }
  }

  private get idleMs(): number {
    return this.options.sessionIdleMs ?? 10 * 60_000;
  }

  private async listen(): Promise<void> {
    const handler = (req: IncomingMessage, res: ServerResponse): void => void this.handle(req, res);
    if (this.options.tls) {
      const [cert, key] = await Promise.all([readFile(this.options.tls.certFile), readFile(this.options.tls.keyFile)]);
      this.server = createHttpsServer({ cert, key }, handler);
    } else this.server = createHttpServer(handler);
    // A client that sends its request and then shuts down its write side (a TCP half-close)
    // still gets its answer: by default node:http aborts the request and ends the socket at
    // the client's FIN. `httpAllowHalfOpen` is node's (undocumented, untyped) switch for it;
    // with it, the socket ends once the pending answer is written.
    (this.server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    // Agents keep one connection open across a backup; long polls last up to a minute.
    this.server.keepAliveTimeout = 75_000;
    this.server.headersTimeout = 80_000;
    this.server.requestTimeout = 0;
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? DEFAULT_PORT, this.options.host ?? '127.0.0.1', () => resolve());
    });
    const address = server.address() as AddressInfo;
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    this.url = `${this.options.tls ? 'https' : 'http'}://${host}:${address.port}`;
    this.log.info({ url: this.url, repository: this.repo.location }, 'media server listening');
  }

  async close(): Promise<void> {
    this.leases.stop();
    this.scheduler.stop();
    this.maintenanceScheduler.stop();
    await this.settled();
    clearInterval(this.expiry);
    this.polls.abort();
    this.runs.close();
    if (this.server) {
      const server = this.server;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2_000).unref();
      });
    }
    await this.stores.close();
    await this.catalog.close();
  }

  /** Replaces the catalog's snapshot list with what the bucket holds. */
  async rebuildSnapshots(): Promise<number> {
    const all = await this.repo.snapshots(undefined, { onDamaged: (key, error) => this.log.warn({ key, error: error.message }, 'damaged snapshot manifest skipped') });
    await this.catalog.replaceSnapshots(undefined, all.map(snapshotRecord));
    return all.length;
  }

  // --- request handling ------------------------------------------------------------------

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://hoard');
    } catch {
      return this.fail(req, res, new RequestError('invalid_request', 'malformed request URL'), started);
    }
    try {
      const route = this.match(req.method ?? 'GET', url.pathname);
      if (!route) throw new RequestError('not_found', `no route ${req.method} ${url.pathname} (see docs/protocol.md)`);
      const who: Principal = route.route.open ? { kind: 'admin' } : await this.auth.principal(req);
      await route.route.handler(req, res, who, route.params, url);
      this.log.debug({ method: req.method, path: url.pathname, status: res.statusCode, ms: Date.now() - started }, 'request');
    } catch (err) {
      this.fail(req, res, err, started, url);
    }
  }

  private fail(req: IncomingMessage, res: ServerResponse, err: unknown, started: number, url?: URL): void {
    if (clientGone(req, err)) {
      // Not an error of the server's: counted apart, and nobody is left to answer.
      this.metrics.clientDisconnects.inc();
      this.log.info({ method: req.method, path: url?.pathname, ms: Date.now() - started, error: (err as Error)?.message }, 'client disconnected');
      if (!res.destroyed) res.destroy();
      return;
    }
    const { status, message, details } = describeError(err);
    this.metrics.httpErrors.inc({ status: String(status) });
    const log = { method: req.method, path: url?.pathname, status, ms: Date.now() - started, error: message };
    if (status >= 500) this.log.error({ ...log, stack: (err as Error)?.stack }, 'request failed');
    else this.log.info(log, 'request refused');
    if (res.headersSent) {
      // A restore stream that fails midway: cut the connection so the client sees an
      // incomplete body (Content-Length) instead of a short file that looks whole.
      res.destroy(err instanceof Error ? err : new Error(message));
      return;
    }
    // Leave the unread rest of a refused upload to be discarded, then close, so a client
    // still sending does not wedge the connection.
    if (!req.complete) res.setHeader('connection', 'close');
    sendJson(res, status, { error: message, status, ...details });
    if (!req.complete) req.resume();
  }

  private match(method: string, path: string): { route: Route; params: string[] } | undefined {
    let methodMismatch = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (!m) continue;
      if (route.method !== method) {
        methodMismatch = true;
        continue;
      }
      return { route, params: m.slice(1).map(decodePathPart) };
    }
    if (methodMismatch) throw new RequestError('method_not_allowed', `${method} is not allowed on ${path}`);
    return undefined;
  }

  private buildRoutes(): Route[] {
    const r = (method: string, pattern: RegExp, handler: Handler, open = false): Route => ({ method, pattern, handler: handler.bind(this), open });
    const ID = '([^/]+)';
    return [
      r('GET', /^\/v1\/health$/, this.health, true),
      r('GET', /^\/metrics$/, this.prometheus, true),
      r('GET', /^\/v1\/stores$/, this.listStores),
      // agents (admin)
      r('POST', /^\/v1\/agents$/, this.addAgent),
      r('GET', /^\/v1\/agents$/, this.listAgents),
      r('DELETE', new RegExp(`^/v1/agents/${ID}$`), this.revokeAgent),
      // the agent's own calls
      r('POST', /^\/v1\/agent\/hello$/, this.hello),
      r('GET', /^\/v1\/agent\/work$/, this.work),
      // runs
      r('GET', /^\/v1\/policies$/, this.listPolicies),
      r('POST', /^\/v1\/policies$/, this.applyPolicies),
      r('GET', new RegExp(`^/v1/policies/${ID}$`), this.getPolicy),
      r('DELETE', new RegExp(`^/v1/policies/${ID}$`), this.deletePolicy),
      // the server's own work on the repository
      r('POST', /^\/v1\/prune$/, this.prune),
      r('POST', /^\/v1\/gc$/, this.gc),
      r('POST', /^\/v1\/verify$/, this.verifyRepository),
      r('POST', /^\/v1\/runs$/, this.createRun),
      r('GET', /^\/v1\/runs$/, this.listRuns),
      r('GET', new RegExp(`^/v1/runs/${ID}$`), this.getRun),
      r('POST', new RegExp(`^/v1/runs/${ID}/progress$`), this.runProgress),
      r('POST', new RegExp(`^/v1/runs/${ID}/lease$`), this.renewLease),
      r('POST', new RegExp(`^/v1/runs/${ID}/finish$`), this.finishRun),
      r('POST', new RegExp(`^/v1/runs/${ID}/cancel$`), this.cancelRun),
      // jobs and the report (job-history.ts, capacity-report.ts)
      r('GET', /^\/v1\/jobs$/, this.listJobs),
      r('POST', new RegExp(`^/v1/jobs/${ID}/run$`), this.runJob),
      r('GET', new RegExp(`^/v1/jobs/${ID}/history$`), this.jobHistory),
      r('GET', /^\/v1\/report$/, this.report),
      // backup sessions
      r('POST', /^\/v1\/sessions$/, this.beginSession),
      r('GET', /^\/v1\/sessions$/, this.listSessions),
      r('POST', new RegExp(`^/v1/sessions/${ID}/missing$`), this.missing),
      r('PUT', new RegExp(`^/v1/sessions/${ID}/batches/${ID}$`), this.batch),
      r('POST', new RegExp(`^/v1/sessions/${ID}/commit$`), this.commit),
      r('DELETE', new RegExp(`^/v1/sessions/${ID}$`), this.abortSession),
      // snapshots and restore
      r('GET', /^\/v1\/snapshots$/, this.listSnapshots),
      r('GET', new RegExp(`^/v1/jobs/${ID}/restore$`), this.restore),
      r('GET', new RegExp(`^/v1/jobs/${ID}/snapshots/${ID}/chunks$`), this.snapshotChunks),
    ];
  }

  // --- routes --------------------------------------------------------------------------

  private async health(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    sendJson(res, 200, { ok: true, repository: this.repo.location, sessions: this.sessions.size });
  }

  private async prometheus(_req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await this.metrics.registry.metrics();
    res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
    res.end(body);
  }

  private async listStores(_req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    sendJson(res, 200, { stores: await this.stores.reports() });
  }

  private async addAgent(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { name?: unknown };
    const name = checkAgentName(body?.name, 'name');
    const token = newToken('agent');
    await this.catalog.addAgent(name, hashToken(token));
    this.log.info({ agent: name }, 'agent added');
    sendJson(res, 201, { name, token });
  }

  private async listAgents(_req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const agents = await this.catalog.listAgents({ includeRevoked: true });
    sendJson(res, 200, { agents: agents.map(({ tokenHash: _hidden, ...a }) => a) });
  }

  private async revokeAgent(_req: IncomingMessage, res: ServerResponse, who: Principal, [name]: string[]): Promise<void> {
    requireAdmin(who);
    const agent = await this.catalog.revokeAgent(checkAgentName(name, 'agent name'));
    this.log.info({ agent: name }, 'agent revoked');
    sendJson(res, 200, { name: agent.name, revokedAt: agent.revokedAt });
  }

  private async hello(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    const agent = requireAgent(who);
    const body = (await readJson(req)) as { hostname?: unknown; version?: unknown };
    const text = (v: unknown): string | undefined => (typeof v === 'string' && v.length <= 255 ? v : undefined);
    await this.catalog.touchAgent(agent.name, { hostname: text(body?.hostname), version: text(body?.version) });
    sendJson(res, 200, { agent: agent.name, server: 'hoard', protocol: 1 });
  }

  private async work(req: IncomingMessage, res: ServerResponse, who: Principal, _p: string[], url: URL): Promise<void> {
    const agent = requireAgent(who);
    const waitMs = pollWait(url);
    const abort = abortOnClose(req, res, this.polls.signal);
    await this.catalog.touchAgent(agent.name, {});
    const holding = url.searchParams.get('holding');
    if (holding !== null) {
      // The agent says which runs it is executing; the others of its running runs were
      // held by a process of it that is gone (docs/protocol.md, "Leases").
      for (const ended of await this.leases.agentHolds(agent.name, new Set(holding.split(',').filter((id) => id !== '')))) {
        this.log.warn({ run: ended.id, agent: agent.name, error: ended.error }, 'run ended: its agent restarted without it');
      }
    }
    const run = await this.runs.claim(agent.name, waitMs, abort);
    if (!run) {
      if (!res.destroyed) res.writeHead(204).end();
      return;
    }
    this.log.info({ run: run.id, agent: agent.name, job: run.job }, 'run claimed');
    sendJson(res, 200, run);
  }

  // --- policies -----------------------------------------------------------------------

  /**
   * Creates or replaces policies: body {document: TEXT, format?: 'yaml'|'json', mode?:
   * 'apply'|'create'|'update', file?: NAME}. All or nothing: one invalid policy, or a
   * create of one that exists, stores none of them.
   */
  private async applyPolicies(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { document?: unknown; format?: unknown; mode?: unknown; file?: unknown };
    if (typeof body.document !== 'string') throw new RequestError('invalid_request', 'document must be the policy file as text (YAML or JSON)');
    if (body.format !== undefined && body.format !== 'yaml' && body.format !== 'json') throw new RequestError('invalid_request', 'format must be yaml or json');
    const mode = body.mode ?? 'apply';
    if (mode !== 'apply' && mode !== 'create' && mode !== 'update') throw new RequestError('invalid_request', 'mode must be apply, create or update');
    const policies = parsePolicyDocument(body.document, { format: body.format as 'yaml' | 'json' | undefined, file: typeof body.file === 'string' ? body.file : undefined });
    for (const policy of policies) {
      const agents = policy.sources.flatMap((s) => s.agents);
      for (const agent of agents) {
        const record = await this.catalog.getAgent(agent);
        if (!record || record.revokedAt) throw new RequestError('agent_not_found', `policy ${policy.name}: no agent ${agent} (\`hoard agent add ${agent}\` creates it)`);
        const job = policyJobName(policy, agent);
        if (job.length > 128) throw new RequestError('invalid_request', `policy ${policy.name}: job name ${job} is longer than 128 characters; use a shorter policy name`);
      }
      const exists = (await this.catalog.getPolicy(policy.name)) !== undefined;
      if (mode === 'create' && exists) throw new RequestError('policy_exists', `policy ${policy.name} exists; use \`hoard policy update\` or \`apply\` to change it`);
      if (mode === 'update' && !exists) throw new RequestError('policy_not_found', `no policy ${policy.name}; use \`hoard policy create\` or \`apply\``);
    }
    const stored = [];
    for (const policy of policies) {
      const before = await this.catalog.getPolicy(policy.name);
      await this.catalog.putPolicy(policy.name, policyToDocument(policy));
      stored.push({ name: policy.name, action: before ? 'updated' : 'created' });
    }
    this.scheduler.wake();
    this.log.info({ policies: stored }, 'policies applied');
    sendJson(res, 200, { policies: stored });
  }

  private async listPolicies(_req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const now = this.now();
    const out = [];
    for (const record of await this.catalog.listPolicies()) out.push(this.describePolicy(validatePolicy(record.document), record.updatedAt, now, 1));
    sendJson(res, 200, { policies: out });
  }

  private async getPolicy(_req: IncomingMessage, res: ServerResponse, who: Principal, [name]: string[], url: URL): Promise<void> {
    requireAdmin(who);
    const record = await this.catalog.getPolicy(name!);
    if (!record) throw new RequestError('policy_not_found', `no policy ${name} (\`hoard policy list\` shows them)`);
    const count = Math.min(100, Math.max(1, Number(url.searchParams.get('next') ?? 5) || 5));
    const policy = validatePolicy(record.document);
    sendJson(res, 200, { ...this.describePolicy(policy, record.updatedAt, this.now(), count), yaml: serializePolicies(policy, { format: 'yaml', redactSecrets: true }) });
  }

  /** The scheduler's clock, so what `policy show` lists is what the scheduler will do. */
  private now(): Date {
    return new Date(this.options.clock?.now() ?? Date.now());
  }

  private describePolicy(policy: Policy, updatedAt: string, now: Date, next: number): Record<string, unknown> {
    const agents = policy.sources.flatMap((s) => s.agents);
    return {
      name: policy.name,
      updatedAt,
      jobs: agents.map((a) => ({ agent: a, job: policyJobName(policy, a) })),
      nextRuns: nextPolicyRuns(policy, now, next).map((r) => ({ at: r.at.toISOString(), kind: r.kind })),
      document: policyToDocument(policy, { redactSecrets: true }),
    };
  }

  private async deletePolicy(_req: IncomingMessage, res: ServerResponse, who: Principal, [name]: string[]): Promise<void> {
    requireAdmin(who);
    if (!(await this.catalog.deletePolicy(name!))) throw new RequestError('policy_not_found', `no policy ${name}`);
    this.log.info({ policy: name }, 'policy deleted');
    sendJson(res, 200, { name, deleted: true, note: 'its jobs, snapshots and history stay' });
  }

  // --- prune, gc, verify ----------------------------------------------------------------

  /**
   * Applies retention: body {policy?, job?, dryRun?}. A job is pruned by the retention of
   * the policy it belongs to; a policy prunes each of its jobs; neither: every policy.
   */
  private async prune(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { policy?: unknown; job?: unknown; dryRun?: unknown };
    if (body.policy !== undefined && typeof body.policy !== 'string') throw new RequestError('invalid_request', 'policy must be a policy name');
    if (body.job !== undefined) checkJobName(body.job);
    const dryRun = body.dryRun === true;
    let policies = await this.policies();
    if (body.policy !== undefined) {
      policies = policies.filter((p) => p.name === body.policy);
      if (policies.length === 0) throw new RequestError('policy_not_found', `no policy ${body.policy as string} (\`hoard policy list\` shows them)`);
    }
    let jobs: string[] | undefined;
    if (body.job !== undefined) {
      const job = body.job as string;
      policies = policies.filter((p) => policyJobs(p).includes(job));
      if (policies.length === 0) throw new RequestError('not_found', `job ${job} belongs to no policy, so it has no retention rules; prune it with \`hoard prune --repo R --job ${job} --keep-...\``);
      jobs = [job];
    }
    const results = [];
    for (const policy of policies) {
      for (const r of await this.maintenance.prunePolicy(policy, { dryRun, jobs })) {
        results.push({ policy: policy.name, ...pruneSummary(r) });
      }
    }
    const skipped = policies.filter((p) => !p.retention).map((p) => p.name);
    sendJson(res, 200, { dryRun, results, withoutRetention: skipped });
  }

  /** Garbage collection of the repository: body {dryRun?, graceMs?, repackThreshold?, breakLock?}. */
  private async gc(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { dryRun?: unknown; graceMs?: unknown; repackThreshold?: unknown; breakLock?: unknown };
    const number = (name: string, v: unknown, max: number): number | undefined => {
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) throw new RequestError('invalid_request', `${name} must be a number from 0 to ${max}`);
      return v;
    };
    const graceMs = number('graceMs', body.graceMs, 365 * 86400_000);
    if (graceMs !== undefined && !Number.isSafeInteger(graceMs)) throw new RequestError('invalid_request', 'graceMs must be a whole number of milliseconds');
    const report = await this.maintenance.gc({ dryRun: body.dryRun === true, graceMs, repackThreshold: number('repackThreshold', body.repackThreshold, 1), breakLock: body.breakLock === true });
    sendJson(res, 200, report);
  }

  /** Checks the repository (or one job's snapshots): body {job?, readData?, subset?}. */
  private async verifyRepository(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { job?: unknown; readData?: unknown; subset?: unknown };
    if (body.job !== undefined) checkJobName(body.job);
    if (body.subset !== undefined && (typeof body.subset !== 'number' || !(body.subset > 0 && body.subset <= 100))) throw new RequestError('invalid_request', 'subset must be a percentage above 0 and at most 100');
    const report = await this.maintenance.verify({ job: body.job as string | undefined, readData: body.readData === true, subset: body.subset as number | undefined });
    sendJson(res, 200, report);
  }

  /** Every stored policy that validates (the scheduler logs the others). */
  private async policies(): Promise<Policy[]> {
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
  private afterRun(run: RunView): void {
    const work = (async () => {
      const policy = (await this.policies()).find((p) => policyJobs(p).includes(run.job));
      const done = await this.maintenanceScheduler.afterRun(run, policy);
      if (done && !done.ok) this.log.warn({ job: run.job, error: done.error }, 'prune after the run failed');
    })().catch((err: unknown) => this.log.warn({ job: run.job, error: (err as Error).message }, 'prune after the run failed'));
    this.background.add(work);
    void work.finally(() => this.background.delete(work));
  }

  /** Waits for work started in the background (prunes after runs). */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  private async createRun(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    const body = parseCreateRun(await readJson(req), (spec) => void parseSourceSpec(spec));
    if (body.restore) {
      const queued = await queueRestoreRun(this.catalog, this.repo, this.runs, body);
      this.log.info({ run: queued.id, agent: body.agent, job: body.job, snapshot: queued.restore?.snapshot, path: queued.restore?.path }, 'restore run queued');
      return sendJson(res, 201, queued);
    }
    const agent = await this.catalog.getAgent(body.agent);
    if (!agent || agent.revokedAt) throw new RequestError('agent_not_found', `no agent ${body.agent} (\`hoard agent add ${body.agent}\` creates it)`);
    // The job is bound to the agent: only that agent may write its snapshots.
    const existing = await this.catalog.getJob(body.job);
    if (body.store !== undefined) await this.repo.storeForJob(body.job, body.store);
    await this.catalog.putJob({ name: body.job, agent: body.agent, sources: body.sources, store: body.store ?? existing?.store });
    const run = await this.runs.create(body.agent, body.job, body.sources, body.hooks, body.full, undefined, { manual: true }, { bandwidth: body.bandwidth });
    this.log.info({ run: run.id, agent: body.agent, job: body.job }, 'run queued');
    sendJson(res, 201, run);
  }

  private async listRuns(_req: IncomingMessage, res: ServerResponse, who: Principal, _p: string[], url: URL): Promise<void> {
    requireAdmin(who);
    const agent = url.searchParams.get('agent') ?? undefined;
    const runs = await this.catalog.listRuns({ agent, newestFirst: true, limit: 100 });
    sendJson(res, 200, { runs: await Promise.all(runs.map((r) => this.runs.view(r.id))) });
  }

  private async getRun(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[], url: URL): Promise<void> {
    const run = await this.runs.get(id!);
    if (who.kind === 'agent' && run.agent !== who.name) throw new RequestError('forbidden', `run ${id} belongs to agent ${run.agent}`);
    const view = await this.runs.waitFinished(id!, pollWait(url), abortOnClose(req, res, this.polls.signal));
    if (!res.destroyed) sendJson(res, 200, view);
  }

  private async runProgress(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const agent = requireAgent(who);
    const { cancel } = await this.runs.progress(id!, agent.name, parseRunProgress(await readJson(req)));
    sendJson(res, 200, { ok: true, ...(cancel ? { cancel: true } : {}) });
  }

  /** Renews a running run's lease; the answer tells the agent whether to stop (cancel). */
  private async renewLease(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const agent = requireAgent(who);
    await readJson(req);
    const answer = await this.runs.renew(id!, agent.name);
    await this.catalog.touchAgent(agent.name, {});
    sendJson(res, 200, answer);
  }

  private async finishRun(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const agent = requireAgent(who);
    // Snapshots and byte counts come from the server's session records (run-results.ts).
    const view = await this.runs.finish(id!, agent.name, parseFinishRun(await readJson(req)), (run, report) => checkFinishReport(this.catalog, run, report));
    await this.scheduler.runFinished(view);
    this.afterRun(view);
    this.log.info({ run: id, state: view.state, error: view.error }, 'run finished');
    sendJson(res, 200, view);
  }

  // --- jobs, cancel and the report ---------------------------------------------------------

  private async cancelRun(_req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    requireAdmin(who);
    const view = await this.runs.cancel(id!, (run) => this.leases.describeSilence(run));
    this.log.info({ run: id, state: view.state, error: view.error }, view.state === 'cancelled' ? 'run cancelled' : 'run asked to stop');
    sendJson(res, 200, view);
  }

  private async listJobs(_req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    requireAdmin(who);
    sendJson(res, 200, { jobs: await listJobSummaries(this.catalog, this.now()) });
  }

  private async runJob(req: IncomingMessage, res: ServerResponse, who: Principal, [job]: string[]): Promise<void> {
    requireAdmin(who);
    const body = (await readJson(req)) as { full?: unknown };
    if (body?.full !== undefined && typeof body.full !== 'boolean') throw new RequestError('invalid_request', `full must be true or false; got ${JSON.stringify(body.full)}`);
    const run = await queueJobRun(this.catalog, this.runs, checkJobName(job), body?.full === true);
    this.log.info({ run: run.id, agent: run.agent, job }, 'run queued');
    sendJson(res, 201, run);
  }

  private async jobHistory(_req: IncomingMessage, res: ServerResponse, who: Principal, [job]: string[], url: URL): Promise<void> {
    requireAdmin(who);
    const record = await this.catalog.getJob(checkJobName(job));
    if (!record) throw new RequestError('job_not_found', `no job ${job} (\`hoard job list\` shows them)`);
    const limit = Number(url.searchParams.get('limit') ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw new RequestError('invalid_request', `limit must be a whole number from 1 to 10000; got ${JSON.stringify(url.searchParams.get('limit'))}`);
    sendJson(res, 200, { job: record.name, entries: await jobHistory(this.catalog, record, limit) });
  }

  private async report(_req: IncomingMessage, res: ServerResponse, who: Principal, _p: string[], url: URL): Promise<void> {
    requireAdmin(who);
    const q = url.searchParams;
    const quota = q.has('quota') ? Number(q.get('quota')) : this.options.quotaBytes;
    if (quota !== undefined && (!Number.isSafeInteger(quota) || quota <= 0)) throw new RequestError('invalid_request', `quota must be a number of bytes above 0; got ${JSON.stringify(q.get('quota'))}`);
    const years = q.has('growthYears') ? Number(q.get('growthYears')) : 1;
    if (!Number.isFinite(years) || years < 0 || years > 100) throw new RequestError('invalid_request', `growthYears must be a number from 0 to 100; got ${JSON.stringify(q.get('growthYears'))}`);
    sendJson(res, 200, await buildReport(this.catalog, this.repo, { now: this.now(), quotaBytes: quota, growthYears: years }));
  }

  private async beginSession(req: IncomingMessage, res: ServerResponse, who: Principal): Promise<void> {
    const body = parseBeginSession(await readJson(req));
    const job = await this.catalog.getJob(body.job);
    if (who.kind === 'agent') {
      if (!job) throw new RequestError('forbidden', `job ${body.job} is not defined on this server; an admin defines it (\`hoard run --agent ${who.name} --job ${body.job} ...\`)`);
      if (job.agent !== who.name) throw new RequestError('forbidden', `agent ${who.name} may not write job ${body.job}: it belongs to agent ${job.agent ?? '(none)'}`);
    }
    if (body.run !== undefined) {
      const run = await this.runs.get(body.run);
      if (who.kind === 'agent' && run.agent !== who.name) throw new RequestError('forbidden', `run ${body.run} belongs to agent ${run.agent}`);
      if (run.job !== body.job) throw new RequestError('invalid_request', `run ${body.run} is for job ${run.job}, not ${body.job}`);
      // A run the server ended (its lease passed, an admin cancelled it) takes no new sessions.
      if (run.state !== 'running') throw new RequestError('run_not_running', `run ${body.run} is ${run.state}, not running${run.error ? `: ${run.error}` : ''}`);
    }
    const store = await this.stores.forJob(body.job, job?.store);
    const chunker = store.store.chunking(body.chunking);
    const maxChunk = resolveChunker(chunker).maxSize;
    const parent = await this.repo.latestSnapshot(body.job, (s) => s.meta.source.name === body.source.name);
    const id = randomBytes(16).toString('hex');
    const session = new BackupSession(this.repo, {
      id,
      agent: who.kind === 'agent' ? who.name : 'admin',
      job: body.job,
      source: body.source,
      run: body.run,
      store,
      chunker,
      maxChunk,
      parent: parent?.key ?? null,
      verifyUploads: this.options.verifyUploads ?? true,
      now: () => this.now().getTime(),
    });
    this.sessions.set(id, session);
    const discovered = await this.catalog.addKnownSources(body.job, [body.source.name]).catch(() => [] as string[]);
    if (body.run !== undefined) await this.runs.addSession(body.run, id, discovered);
    await this.recordSession(session);
    this.log.info({ session: id, job: body.job, source: body.source.name, store: store.store.name, discovered: discovered.length > 0 }, 'session started');
    const response: BeginSessionResponse = {
      session: id,
      store: {
        id: store.store.id,
        name: store.store.name,
        encrypted: store.store.encrypted,
        secrets: store.store.wireSecrets(),
      },
      chunker: chunkerToWire(chunker),
      maxChunk,
      limits: { queryFingerprints: MAX_QUERY_FINGERPRINTS, batchChunks: this.options.batchChunks ?? 4096, batchBytes: this.options.batchBytes ?? 16 * 1024 * 1024 },
      idleTimeoutMs: this.idleMs,
      parent: parent?.key ?? null,
    };
    if (parent) response.parentSnapshot = { id: parent.id, kind: parent.meta.source.kind, logicalBytes: parent.meta.logicalBytes, sameStore: parent.meta.store === store.store.id, ...(parent.meta.sourceStat ? { sourceStat: parent.meta.sourceStat } : {}) };
    sendJson(res, 201, response);
  }

  private async listSessions(_req: IncomingMessage, res: ServerResponse, who: Principal, _p: string[], url: URL): Promise<void> {
    requireAdmin(who);
    const job = url.searchParams.get('job') ?? undefined;
    sendJson(res, 200, { sessions: await this.catalog.listSessions({ job, newestFirst: true, limit: Number(url.searchParams.get('limit') ?? 100) || 100 }) });
  }

  private session(id: string, who: Principal): BackupSession {
    const session = this.sessions.get(id);
    if (!session) throw new RequestError('session_not_found', `no session ${id} (sessions live until they commit or expire; start a new one)`);
    if (who.kind === 'agent' && session.init.agent !== who.name) throw new RequestError('forbidden', `session ${id} belongs to agent ${session.init.agent}`);
    if (session.state === 'expired') throw new RequestError('session_gone', `session ${id} expired after ${Math.round(this.idleMs / 1000)} s without requests; start a new session (what it uploaded is kept)`);
    if (session.state === 'committed') throw new RequestError('conflict', `session ${id} is already committed as snapshot ${session.snapshot?.id}`, { snapshot: session.snapshot?.id, committed: session.committed });
    if (session.state === 'failed') throw new RequestError('conflict', `session ${id} failed (${session.error}); start a new session`);
    return session;
  }

  /** Runs `work` with the session marked busy: one request at a time per session. */
  private async exclusive<T>(session: BackupSession, work: () => Promise<T>): Promise<T> {
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

  private async missing(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const session = this.session(id!, who);
    requireContentType(req, CONTENT_TYPE_BINARY);
    const body = await readBody(req, MAX_QUERY_FINGERPRINTS * 32);
    checkQueryBody(body.length);
    session.lastActivity = Date.now();
    this.metrics.bytesReceived.inc(body.length);
    sendBinary(res, encodeMissingBitmap(session.missing(body)));
  }

  private async batch(req: IncomingMessage, res: ServerResponse, who: Principal, [id, seqText]: string[]): Promise<void> {
    const session = this.session(id!, who);
    requireContentType(req, CONTENT_TYPE_BINARY);
    const seq = Number(seqText);
    if (!Number.isSafeInteger(seq) || seq < 0) throw new RequestError('invalid_request', `batch number must be a non-negative integer; got ${JSON.stringify(seqText)}`);
    const result = await this.exclusive(session, async () => {
      // An upload that stalls (an agent gone without closing its connection) would keep the
      // session busy, and so unexpired and refusing the agent's retry, forever: after the
      // session's idle time without a byte, the request is cut.
      req.setTimeout(this.idleMs, () => req.destroy(new RequestError('request_timeout', `batch ${seq} of session ${session.id} stalled: no bytes for ${Math.round(this.idleMs / 1000)} s`)));
      const reader = new BodyReader(req);
      try {
        return await session.applyBatch(seq, reader);
      } finally {
        req.setTimeout(0);
        this.metrics.bytesReceived.inc(reader.bytesRead);
      }
    });
    this.metrics.blobs.inc({ outcome: 'stored' }, result.blobsStored);
    this.metrics.blobs.inc({ outcome: 'duplicate' }, result.blobsDuplicate);
    if (result.duplicate) req.resume();
    sendJson(res, 200, result);
  }

  private async commit(req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const session = this.session(id!, who);
    const body = parseCommit(await readJson(req));
    const snapshot = await this.exclusive(session, async () => session.commit(body));
    session.state = 'committed';
    this.metrics.sessions.inc({ result: 'committed' });
    this.metrics.bytesNew.inc(session.totals.bytesNew);
    await this.catalog.putSnapshot({ ...snapshotRecord(snapshot), sessionId: session.id });
    await this.recordSession(session);
    this.log.info({ session: session.id, job: session.init.job, snapshot: snapshot.id, ...session.totals }, 'snapshot committed');
    const response: CommitResponse = { snapshot: summary(snapshot), totals: session.totals, dedupRatio: session.dedupRatio() };
    session.committed = response;
    sendJson(res, 200, response);
  }

  private async abortSession(_req: IncomingMessage, res: ServerResponse, who: Principal, [id]: string[]): Promise<void> {
    const session = this.session(id!, who);
    await this.endSession(session, 'failed', 'abandoned by the agent');
    sendJson(res, 200, { session: id, state: session.state });
  }

  private async listSnapshots(_req: IncomingMessage, res: ServerResponse, who: Principal, _p: string[], url: URL): Promise<void> {
    const q = url.searchParams;
    const job = q.get('job') ?? undefined;
    if (job !== undefined) checkJobName(job);
    if (who.kind === 'agent' && (job === undefined || (await this.catalog.getJob(job))?.agent !== who.name)) {
      throw new RequestError('forbidden', `agent ${who.name} may list only the snapshots of its own jobs (name one with ?job=)`);
    }
    const time = (name: string): string | undefined => {
      const v = q.get(name);
      if (v === null) return undefined;
      if (Number.isNaN(Date.parse(v))) throw new RequestError('invalid_request', `${name} must be an ISO-8601 time; got ${JSON.stringify(v)}`);
      return new Date(v).toISOString();
    };
    const snapshots = await this.catalog.listSnapshots({ job, source: q.get('source') ?? undefined, since: time('since'), until: time('until'), newestFirst: true });
    sendJson(res, 200, { snapshots });
  }

  private async restore(req: IncomingMessage, res: ServerResponse, who: Principal, [job]: string[], url: URL): Promise<void> {
    checkJobName(job);
    const mayRead = await restoreReadAccess(this.catalog, who, job!);
    const q = url.searchParams;
    const at = q.get('at');
    if (at !== null && Number.isNaN(Date.parse(at))) throw new RequestError('invalid_request', `at must be an ISO-8601 time; got ${JSON.stringify(at)}`);
    const snapshot = await this.repo.findSnapshot(job!, { id: q.get('id') ?? undefined, at: at === null ? undefined : new Date(at), source: q.get('source') ?? undefined });
    if (!mayRead(snapshot.id)) throw new RequestError('forbidden', `agent ${who.kind === 'agent' ? who.name : ''} may read only snapshot(s) of its restore run of job ${job}, not ${snapshot.id}`);
    const total = snapshot.meta.logicalBytes;
    for (const name of ['offset', 'length']) {
      const v = q.get(name);
      if (v !== null && !/^\d+$/.test(v)) throw new RequestError('invalid_request', `${name} must be a number of bytes (0 or more); got ${JSON.stringify(v)}`);
    }
    const offset = q.has('offset') ? Number(q.get('offset')) : 0;
    const length = q.has('length') ? Number(q.get('length')) : total - offset;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > total) {
      throw new RequestError('range_not_satisfiable', `range offset=${q.get('offset')} length=${q.get('length')} is outside snapshot ${snapshot.id} (${total} bytes)`);
    }
    const headers = {
      'x-hoard-snapshot': snapshot.id,
      'x-hoard-snapshot-key': snapshot.key,
      'x-hoard-started-at': snapshot.meta.startedAt,
      'x-hoard-source': encodeURIComponent(snapshot.meta.source.name),
      'x-hoard-source-kind': snapshot.meta.source.kind,
      'x-hoard-logical-bytes': String(total),
    };
    this.log.info({ job, snapshot: snapshot.id, offset, length, frames: q.has('frames') }, 'restore started');
    if (!q.has('frames')) {
      res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPE_BINARY, 'content-length': length });
      // restore() re-hashes every chunk and, for a whole stream, checks the stream hash
      // before finishing; on any mismatch the response is cut short (see fail()).
      await restore(this.repo, snapshot, new ResponseSink(res), { range: { offset, length } });
      return;
    }
    // Framed: holes as counts, and the verdict at the end, also a failure after the last byte.
    res.writeHead(200, { ...headers, 'content-type': CONTENT_TYPE_RESTORE_FRAMES });
    const sink = new FrameSink(res);
    let result;
    try {
      result = await restore(this.repo, snapshot, sink, { range: { offset, length } });
    } catch (err) {
      if (clientGone(req, err) || res.destroyed) throw err;
      const { message } = describeError(err);
      this.log.error({ job, snapshot: snapshot.id, offset, length, err: (err as Error).message }, 'restore failed');
      this.metrics.restoreFailures.inc();
      await sink.fail({ error: message, code: err instanceof IntegrityError || err instanceof ObjectFormatError ? 'damaged' : 'internal' });
      return;
    }
    await sink.end({ bytes: result.bytesWritten, streamHashChecked: result.streamHashChecked });
  }

  /**
   * A snapshot's chunk references over a byte range, for an agent that refers to chunks
   * of its previous snapshot again (unchanged files) instead of reading them.
   */
  private async snapshotChunks(_req: IncomingMessage, res: ServerResponse, who: Principal, [job, id]: string[], url: URL): Promise<void> {
    checkJobName(job);
    if (who.kind === 'agent' && (await this.catalog.getJob(job!))?.agent !== who.name) throw new RequestError('forbidden', `agent ${who.name} may not read job ${job}`);
    const q = url.searchParams;
    for (const name of ['offset', 'length']) {
      if (!/^\d+$/.test(q.get(name) ?? '')) throw new RequestError('invalid_request', `${name} must be a number of bytes (0 or more); got ${JSON.stringify(q.get(name))}`);
    }
    const snapshot = await this.repo.findSnapshot(job!, { id: id! });
    const offset = Number(q.get('offset'));
    const length = Number(q.get('length'));
    if (!Number.isSafeInteger(offset + length) || offset + length > snapshot.meta.logicalBytes) {
      throw new RequestError('range_not_satisfiable', `range offset=${offset} length=${length} is outside snapshot ${snapshot.id} (${snapshot.meta.logicalBytes} bytes)`);
    }
    const refs: WireRef[] = [];
    let first = offset;
    for await (const { offset: at, ref } of snapshotChunkRefs(this.repo, snapshot, offset, length, MAX_CHUNK_REFS)) {
      if (refs.length === 0) first = at;
      refs.push(ref);
    }
    const body = encodeRefs(refs);
    res.writeHead(200, { 'content-type': CONTENT_TYPE_BINARY, 'content-length': body.length, 'x-hoard-first-offset': String(first) });
    res.end(body);
  }

  // --- sessions' end ----------------------------------------------------------------------

  private async expireSessions(): Promise<void> {
    const now = Date.now();
    for (const session of this.sessions.values()) {
      if (session.state === 'running' && !session.busy && now - session.lastActivity > this.idleMs) {
        const reason = `no request for ${Math.round(this.idleMs / 1000)} s`;
        await this.endSession(session, 'expired', reason);
        // Its run cannot finish this source any more: it ends now, not when its agent returns.
        if (session.init.run !== undefined) {
          await this.leases.sessionExpired(session.init.run, `session ${session.id} (source ${session.init.source.name}) expired: ${reason} from agent ${session.init.agent}`).catch((err: unknown) => this.log.error({ err }, 'ending the run of an expired session failed'));
        }
      } else if (session.state !== 'running' && now - session.lastActivity > Math.max(this.idleMs, 60_000)) {
        // Ended sessions stay a while so a replayed id gets a precise answer; the catalog keeps the history.
        this.sessions.delete(session.id);
      }
    }
  }

  private async endSession(session: BackupSession, state: 'failed' | 'expired', reason: string): Promise<void> {
    session.state = state;
    session.error = reason;
    session.lastActivity = Date.now();
    this.metrics.sessions.inc({ result: state });
    await session.abandon();
    await this.recordSession(session).catch((err: unknown) => this.log.error({ err }, 'recording session failed'));
    this.log.warn({ session: session.id, job: session.init.job, state, reason }, 'session ended without a snapshot');
  }

  private async recordSession(session: BackupSession): Promise<void> {
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

// --- helpers ------------------------------------------------------------------------------

/** A restore's output: on failure the error handler cuts the connection (not a clean end). */
class ResponseSink extends StreamSink {
  override async abort(): Promise<void> {}
}

/**
 * A framed restore's output (restore-frames.ts): data frames, zero runs as hole frames
 * (adjacent runs merged), then the verdict. finish() sends nothing: the route sends the
 * end frame with the result, or the error frame.
 */
class FrameSink extends StreamSink {
  private zerosPending = 0;

  constructor(private readonly res: ServerResponse) {
    super(res);
  }

  override async write(data: Uint8Array): Promise<void> {
    if (data.length === 0) return;
    await this.flushZeros();
    // Header and bytes in one send; write() of a second buffer costs no copy.
    this.res.cork();
    this.res.write(dataFrameHeader(data.length));
    const more = super.write(data);
    process.nextTick(() => this.res.uncork());
    return more;
  }

  override async zeros(length: number): Promise<void> {
    this.zerosPending += length;
  }

  override async finish(): Promise<void> {}

  override async abort(): Promise<void> {}

  async end(result: RestoreEnd): Promise<void> {
    await this.flushZeros();
    await super.write(endFrame(result));
    await super.finish();
  }

  async fail(failure: RestoreFailure): Promise<void> {
    this.zerosPending = 0;
    await super.write(errorFrame(failure)).catch(() => undefined);
    await super.finish().catch(() => undefined);
  }

  private async flushZeros(): Promise<void> {
    if (this.zerosPending === 0) return;
    const n = this.zerosPending;
    this.zerosPending = 0;
    await super.write(zerosFrame(n));
  }
}

function describeError(err: unknown): { status: number; message: string; details?: Record<string, unknown> } {
  if (err instanceof RequestError) return { status: err.status, message: err.message, details: err.details };
  if (err instanceof WireFormatError) return { status: 400, message: err.message };
  if (err instanceof SnapshotNotFoundError) return { status: 404, message: err.message };
  // The server's disk or bucket refused (full, read-only, no permission, over quota).
  const environment = findEnvironmentError(err);
  if (environment) return { status: 507, message: `the server's storage refused: ${environment.message}` };
  if (err instanceof GcLockedError || err instanceof GcConflictError || err instanceof SnapshotProtectedError) return { status: 409, message: err.message };
  if (err instanceof RetentionRuleError) return { status: 400, message: err.message };
  if (err instanceof IntegrityError || err instanceof ObjectFormatError) return { status: 500, message: `stored data is damaged: ${(err as Error).message}` };
  if (err instanceof AgentExistsError || err instanceof TokenInUseError) return { status: 409, message: err.message };
  if (err instanceof AgentNotFoundError || err instanceof JobNotFoundError) return { status: 404, message: err.message };
  if (
    err instanceof CatalogValidationError ||
    err instanceof AgentRevokedError ||
    err instanceof UnknownStoreError ||
    err instanceof StoreScopeError ||
    err instanceof InvalidStoreNameError ||
    err instanceof InvalidJobNameError
  ) {
    return { status: 400, message: err.message };
  }
  if (err instanceof CatalogError || err instanceof RepositoryError) return { status: 500, message: err.message };
  return { status: 500, message: `internal error: ${(err as Error)?.message ?? String(err)}` };
}

/** A percent-decoded path segment; malformed escapes (`%ZZ`) are the client's mistake. */
function decodePathPart(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    throw new RequestError('invalid_request', `malformed percent-encoding in the request path: ${JSON.stringify(part)}`);
  }
}

function pollWait(url: URL): number {
  const text = url.searchParams.get('wait');
  if (text === null) return 0;
  const seconds = Number(text);
  if (!Number.isFinite(seconds) || seconds < 0) throw new RequestError('invalid_request', `wait must be a number of seconds; got ${JSON.stringify(text)}`);
  return Math.min(MAX_POLL_MS, seconds * 1000);
}

/** Aborts when the client goes away or the server stops. */
function abortOnClose(req: IncomingMessage, res: ServerResponse, server: AbortSignal): AbortSignal {
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  req.socket.once('close', abort);
  server.addEventListener('abort', abort, { once: true });
  // A keep-alive connection carries many long polls: drop this request's listeners when
  // its answer is done, or they pile up on the socket and the server's signal.
  const release = (): void => {
    req.socket.off('close', abort);
    server.removeEventListener('abort', abort);
  };
  res.once('close', release);
  return controller.signal;
}

function snapshotRecord(s: SnapshotInfo): SnapshotRecord {
  return { job: s.meta.job, id: s.id, key: s.key, source: s.meta.source, startedAt: s.meta.startedAt, finishedAt: s.meta.finishedAt, logicalBytes: s.meta.logicalBytes, store: s.meta.store };
}

function summary(s: SnapshotInfo): SnapshotSummary {
  return { id: s.id, key: s.key, job: s.meta.job, source: s.meta.source, startedAt: s.meta.startedAt, finishedAt: s.meta.finishedAt, logicalBytes: s.meta.logicalBytes, store: s.meta.store };
}


