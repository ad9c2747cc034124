/**
 * Every route of the media server's API (docs/protocol.md explains them; the OpenAPI
 * document at GET /v1/openapi.json is generated from these objects). Grouped by concern
 * as the server's route modules are (apps/media-server/src/routes/).
 */
import { Type } from '@sinclair/typebox';
import { AgentName, Bytes, Count, IdParams, IsoTime, JobName, JobParams, PolicyName, READ_TIME, SnapshotId, WaitQuery } from './common.js';
import { defineRoute, READERS } from './contract.js';
import { NotificationEvent, TargetSettings, TargetView } from './notify.js';
import { DrillReply, ValidityQuery, ValidityReport } from './validity.js';
import { consoleSession, events, listTasks, signIn, signOut } from './console.js';
import { browseSnapshot, checkPolicies, downloadSnapshot, pickSnapshot } from './restore-browse.js';
import * as R from './replies.js';
import { BeginSessionRequest, CommitRequest, CreateRunRequest, RunProgress } from './requests.js';

const optional = Type.Optional;
const Text = (max: number) => Type.String({ minLength: 1, maxLength: max });

// --- the server itself ------------------------------------------------------------------

export const health = defineRoute({
  id: 'health',
  method: 'GET',
  path: '/v1/health',
  access: 'public',
  tag: 'server',
  summary: 'Is the server up (no token needed)',
  reply: Type.Object({ ok: Type.Literal(true), repository: Type.String(), sessions: Count }),
});

export const metrics = defineRoute({
  id: 'metrics',
  method: 'GET',
  path: '/metrics',
  access: 'public',
  tag: 'server',
  summary: 'Prometheus metrics (text exposition format)',
  replyPayload: 'text',
});

export const openapi = defineRoute({
  id: 'openapi',
  method: 'GET',
  path: '/v1/openapi.json',
  access: 'public',
  tag: 'server',
  summary: 'This API as an OpenAPI 3 document',
});

export const whoami = defineRoute({
  id: 'whoami',
  method: 'GET',
  path: '/v1/whoami',
  access: ['admin', 'operator', 'viewer', 'agent'],
  tag: 'server',
  summary: "The caller's role (and agent name), for clients that check a token",
  reply: Type.Object({ role: Type.String(), agent: optional(Type.String()), label: optional(Type.String()) }),
});

export const listStores = defineRoute({
  id: 'listStores',
  method: 'GET',
  path: '/v1/stores',
  access: READERS,
  tag: 'server',
  summary: 'Fingerprint stores with their size and dedup',
  reply: Type.Object({ stores: Type.Array(R.StoreReport) }),
});

export const report = defineRoute({
  id: 'report',
  method: 'GET',
  path: '/v1/report',
  access: READERS,
  tag: 'server',
  summary: 'Capacity report: usage per job and store, growth and the forecast fill date',
  query: Type.Object({
    quota: optional(Type.Integer({ minimum: 1, description: 'repository quota in bytes (default: the server setting)' })),
    growthYears: optional(Type.Number({ minimum: 0, maximum: 100 })),
  }),
  reply: R.CapacityReport,
});

// --- API tokens (admin) -------------------------------------------------------------------

const TokenRole = Type.Union([Type.Literal('admin'), Type.Literal('operator'), Type.Literal('viewer')]);
const TokenView = Type.Object({ id: Type.String(), role: TokenRole, label: Type.String(), createdAt: IsoTime });

export const addToken = defineRoute({
  id: 'addToken',
  method: 'POST',
  path: '/v1/tokens',
  access: ['admin'],
  tag: 'tokens',
  summary: 'Create an API token for a person or a script (shown once)',
  body: Type.Object({ role: TokenRole, label: Text(200) }),
  status: 201,
  reply: Type.Object({ id: Type.String(), role: TokenRole, label: Type.String(), token: Type.String() }),
});

export const listTokens = defineRoute({
  id: 'listTokens',
  method: 'GET',
  path: '/v1/tokens',
  access: ['admin'],
  tag: 'tokens',
  summary: 'API tokens (never the tokens themselves: the server keeps only their hashes)',
  reply: Type.Object({ tokens: Type.Array(TokenView) }),
});

export const revokeToken = defineRoute({
  id: 'revokeToken',
  method: 'DELETE',
  path: '/v1/tokens/:id',
  access: ['admin'],
  tag: 'tokens',
  summary: 'Revoke an API token at once',
  params: Type.Object({ id: Type.String({ pattern: '^[0-9a-f]{8,64}$' }) }),
  reply: Type.Object({ id: Type.String(), revoked: Type.Literal(true) }),
});

// --- agents -----------------------------------------------------------------------------

export const addAgent = defineRoute({
  id: 'addAgent',
  method: 'POST',
  path: '/v1/agents',
  access: ['admin'],
  tag: 'agents',
  summary: 'Register an agent; the answer holds its token (shown once)',
  body: Type.Object({ name: AgentName }),
  status: 201,
  reply: Type.Object({ name: AgentName, token: Type.String() }),
});

export const listAgents = defineRoute({
  id: 'listAgents',
  method: 'GET',
  path: '/v1/agents',
  access: READERS,
  tag: 'agents',
  summary: 'Agents, revoked ones included, with when each was last seen',
  reply: Type.Object({ agents: Type.Array(R.AgentView) }),
});

export const revokeAgent = defineRoute({
  id: 'revokeAgent',
  method: 'DELETE',
  path: '/v1/agents/:name',
  access: ['admin'],
  tag: 'agents',
  summary: "Revoke an agent's token; its jobs and snapshots stay",
  params: Type.Object({ name: AgentName }),
  reply: Type.Object({ name: AgentName, revokedAt: IsoTime }),
});

export const rotateAgent = defineRoute({
  id: 'rotateAgent',
  method: 'POST',
  path: '/v1/agents/:name/rotate',
  access: ['admin'],
  tag: 'agents',
  summary: 'Give an agent a new token; the old one stops working at once',
  params: Type.Object({ name: AgentName }),
  reply: Type.Object({ name: AgentName, token: Type.String() }),
});

export const agentHello = defineRoute({
  id: 'agentHello',
  method: 'POST',
  path: '/v1/agent/hello',
  access: ['agent'],
  tag: 'agent',
  summary: 'An agent says who it is at start (host name, version)',
  body: Type.Object({ hostname: optional(Type.String({ maxLength: 255 })), version: optional(Type.String({ maxLength: 255 })) }),
  reply: Type.Object({ agent: AgentName, server: Type.Literal('hoard'), protocol: Type.Integer() }),
});

export const agentWork = defineRoute({
  id: 'agentWork',
  method: 'GET',
  path: '/v1/agent/work',
  access: ['agent'],
  tag: 'agent',
  summary: 'Long poll for the next run of this agent (204 when none came within `wait`)',
  query: Type.Object({
    wait: WaitQuery.properties.wait,
    holding: optional(Type.String({ maxLength: 65536, description: 'comma-separated ids of the runs this agent process is executing' })),
  }),
  reply: R.RunView,
});

// --- policies ---------------------------------------------------------------------------

export const applyPolicies = defineRoute({
  id: 'applyPolicies',
  method: 'POST',
  path: '/v1/policies',
  access: ['admin'],
  tag: 'policies',
  summary: 'Create or replace policies from a YAML or JSON document (all or nothing)',
  body: Type.Object({
    document: Type.String({ maxLength: 4 * 1024 * 1024, description: 'the policy file as text' }),
    format: optional(Type.Union([Type.Literal('yaml'), Type.Literal('json')])),
    mode: optional(Type.Union([Type.Literal('apply'), Type.Literal('create'), Type.Literal('update')])),
    file: optional(Type.String({ maxLength: 4096, description: 'the file name, for messages' })),
    dryRun: optional(Type.Boolean({ description: 'check and say what would change; store nothing' })),
  }),
  reply: Type.Object({
    dryRun: Type.Boolean(),
    policies: Type.Array(Type.Object({ name: PolicyName, action: Type.Union([Type.Literal('created'), Type.Literal('updated'), Type.Literal('unchanged')]) })),
  }),
});

export const listPolicies = defineRoute({
  id: 'listPolicies',
  method: 'GET',
  path: '/v1/policies',
  access: READERS,
  tag: 'policies',
  summary: 'Policies with their jobs and next runs',
  reply: Type.Object({ policies: Type.Array(R.PolicyView) }),
});

export const getPolicy = defineRoute({
  id: 'getPolicy',
  method: 'GET',
  path: '/v1/policies/:name',
  access: READERS,
  tag: 'policies',
  summary: 'One policy, its next runs and its YAML (secrets redacted)',
  params: Type.Object({ name: PolicyName }),
  query: Type.Object({ next: optional(Type.Integer({ minimum: 1, maximum: 100 })) }),
  reply: R.PolicyView,
});

export const deletePolicy = defineRoute({
  id: 'deletePolicy',
  method: 'DELETE',
  path: '/v1/policies/:name',
  access: ['admin'],
  tag: 'policies',
  summary: 'Delete a policy; its jobs, snapshots and history stay',
  params: Type.Object({ name: PolicyName }),
  reply: Type.Object({ name: PolicyName, deleted: Type.Literal(true), note: Type.String() }),
});

// --- maintenance --------------------------------------------------------------------------

export const prune = defineRoute({
  id: 'prune',
  method: 'POST',
  path: '/v1/prune',
  access: ['admin'],
  tag: 'maintenance',
  summary: "Apply policies' retention: forget the snapshots they no longer keep",
  body: Type.Object({ policy: optional(PolicyName), job: optional(JobName), dryRun: optional(Type.Boolean()) }),
  reply: Type.Object({ dryRun: Type.Boolean(), results: Type.Array(R.PruneResult), withoutRetention: Type.Array(Type.String()) }),
});

export const gc = defineRoute({
  id: 'gc',
  method: 'POST',
  path: '/v1/gc',
  access: ['admin'],
  tag: 'maintenance',
  summary: 'Garbage collection: delete what no snapshot refers to (after a grace period)',
  body: Type.Object({
    dryRun: optional(Type.Boolean()),
    graceMs: optional(Type.Integer({ minimum: 0, maximum: 365 * 86_400_000 })),
    repackThreshold: optional(Type.Number({ minimum: 0, maximum: 1 })),
    breakLock: optional(Type.Boolean()),
  }),
  reply: R.GcReport,
});

export const verify = defineRoute({
  id: 'verify',
  method: 'POST',
  path: '/v1/verify',
  access: ['admin', 'operator'],
  tag: 'maintenance',
  summary: "Check the repository (or one job's snapshots); readData re-reads and hashes the packs",
  body: Type.Object({ job: optional(JobName), readData: optional(Type.Boolean()), subset: optional(Type.Number({ exclusiveMinimum: 0, maximum: 100 })) }),
  reply: R.VerifyReport,
});

// --- runs -------------------------------------------------------------------------------

export const createRun = defineRoute({
  id: 'createRun',
  method: 'POST',
  path: '/v1/runs',
  access: ['admin', 'operator'],
  tag: 'runs',
  summary: 'Queue a backup run of sources on an agent, or a restore run onto an agent (operators: restore runs only)',
  body: CreateRunRequest,
  status: 201,
  reply: R.RunView,
});

export const listRuns = defineRoute({
  id: 'listRuns',
  method: 'GET',
  path: '/v1/runs',
  access: READERS,
  tag: 'runs',
  summary: 'The last 100 runs, newest first',
  query: Type.Object({ agent: optional(AgentName) }),
  reply: Type.Object({ runs: Type.Array(R.RunView) }),
});

export const getRun = defineRoute({
  id: 'getRun',
  method: 'GET',
  path: '/v1/runs/:id',
  access: ['admin', 'operator', 'viewer', 'agent'],
  tag: 'runs',
  summary: 'One run; with `wait`, answers when it has finished or the wait is over',
  params: IdParams,
  query: WaitQuery,
  reply: R.RunView,
});

export const runProgress = defineRoute({
  id: 'runProgress',
  method: 'POST',
  path: '/v1/runs/:id/progress',
  access: ['agent'],
  tag: 'agent',
  summary: "An agent reports its run's progress; the answer may ask it to stop",
  params: IdParams,
  body: RunProgress,
  reply: R.RunProgressAnswer,
});

export const renewLease = defineRoute({
  id: 'renewLease',
  method: 'POST',
  path: '/v1/runs/:id/lease',
  access: ['agent'],
  tag: 'agent',
  summary: "An agent renews its running run's lease (docs/protocol.md, Leases)",
  params: IdParams,
  body: Type.Object({}),
  reply: R.RunLeaseAnswer,
});

export const finishRun = defineRoute({
  id: 'finishRun',
  method: 'POST',
  path: '/v1/runs/:id/finish',
  access: ['agent'],
  tag: 'agent',
  summary: "An agent reports the end of its run (snapshots and byte counts are checked against the server's own records)",
  params: IdParams,
  body: R.FinishRunBody,
  reply: R.RunView,
});

export const cancelRun = defineRoute({
  id: 'cancelRun',
  method: 'POST',
  path: '/v1/runs/:id/cancel',
  access: ['admin', 'operator'],
  tag: 'runs',
  summary: 'Cancel a run: a queued run or one whose agent is gone ends at once; a running one is asked to stop',
  params: IdParams,
  reply: R.RunView,
});

// --- jobs -------------------------------------------------------------------------------

export const listJobs = defineRoute({
  id: 'listJobs',
  method: 'GET',
  path: '/v1/jobs',
  access: READERS,
  tag: 'jobs',
  summary: 'Every job with its last run, last good snapshot and next run',
  reply: Type.Object({ jobs: Type.Array(R.JobSummary) }),
});

export const runJob = defineRoute({
  id: 'runJob',
  method: 'POST',
  path: '/v1/jobs/:job/run',
  access: ['admin', 'operator'],
  tag: 'jobs',
  summary: 'Run a job now (as its policy or its last run defines it)',
  params: JobParams,
  body: Type.Object({ full: optional(Type.Boolean()) }),
  status: 201,
  reply: R.RunView,
});

export const jobHistory = defineRoute({
  id: 'jobHistory',
  method: 'GET',
  path: '/v1/jobs/:job/history',
  access: READERS,
  tag: 'jobs',
  summary: "A job's runs and sessions, newest first",
  params: JobParams,
  query: Type.Object({ limit: optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }),
  reply: Type.Object({ job: JobName, entries: Type.Array(R.HistoryEntry) }),
});

export const deleteJob = defineRoute({
  id: 'deleteJob',
  method: 'DELETE',
  path: '/v1/jobs/:job',
  access: ['admin'],
  tag: 'jobs',
  summary: "Delete a job's definition (not a policy's job); its snapshots and history stay until prune forgets them",
  params: JobParams,
  reply: Type.Object({ job: JobName, deleted: Type.Literal(true), snapshotsKept: Count, note: Type.String() }),
});

export const renameJob = defineRoute({
  id: 'renameJob',
  method: 'POST',
  path: '/v1/jobs/:job/rename',
  access: ['admin'],
  tag: 'jobs',
  summary: "Give a job (not a policy's job) a new name for its next runs; snapshots keep the name they were made under",
  params: JobParams,
  body: Type.Object({ name: JobName }),
  reply: Type.Object({ job: JobName, renamedFrom: JobName, snapshotsUnderOldName: Count, note: Type.String() }),
});

// --- backup sessions (agents) -------------------------------------------------------------

export const beginSession = defineRoute({
  id: 'beginSession',
  method: 'POST',
  path: '/v1/sessions',
  access: ['agent', 'admin'],
  tag: 'sessions',
  summary: 'Start a backup session for one source of a job',
  body: BeginSessionRequest,
  status: 201,
  reply: R.BeginSessionResponse,
});

export const listSessions = defineRoute({
  id: 'listSessions',
  method: 'GET',
  path: '/v1/sessions',
  access: READERS,
  tag: 'sessions',
  summary: 'Backup sessions, newest first',
  query: Type.Object({ job: optional(JobName), limit: optional(Type.Integer({ minimum: 1, maximum: 10_000 })) }),
  reply: Type.Object({ sessions: Type.Array(R.SessionRecord) }),
});

const SessionParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 128, description: 'a session id' }) });

export const queryMissing = defineRoute({
  id: 'queryMissing',
  method: 'POST',
  path: '/v1/sessions/:id/missing',
  access: ['agent', 'admin'],
  tag: 'sessions',
  summary: 'Which of these fingerprints the store lacks (binary: 32-byte fingerprints in, a bitmap out)',
  params: SessionParams,
  bodyPayload: 'binary',
  replyPayload: 'binary',
});

export const uploadBatch = defineRoute({
  id: 'uploadBatch',
  method: 'PUT',
  path: '/v1/sessions/:id/batches/:seq',
  access: ['agent', 'admin'],
  tag: 'sessions',
  summary: 'Upload batch SEQ: chunk references and the blobs the store lacks (binary, streamed)',
  params: Type.Object({
    id: SessionParams.properties.id,
    seq: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'a non-negative integer (the batch number)' }),
  }),
  bodyPayload: 'binary',
  reply: R.BatchResponse,
});

export const commitSession = defineRoute({
  id: 'commitSession',
  method: 'POST',
  path: '/v1/sessions/:id/commit',
  access: ['agent', 'admin'],
  tag: 'sessions',
  summary: 'Commit the session: write the snapshot',
  params: SessionParams,
  body: CommitRequest,
  reply: R.CommitResponse,
});

export const abortSession = defineRoute({
  id: 'abortSession',
  method: 'DELETE',
  path: '/v1/sessions/:id',
  access: ['agent', 'admin'],
  tag: 'sessions',
  summary: 'Abandon a session (what it uploaded stays for a retry)',
  params: SessionParams,
  reply: Type.Object({ session: Type.String(), state: Type.String() }),
});

// --- snapshots and restore ----------------------------------------------------------------

export const listSnapshots = defineRoute({
  id: 'listSnapshots',
  method: 'GET',
  path: '/v1/snapshots',
  access: ['admin', 'operator', 'viewer', 'agent'],
  tag: 'snapshots',
  summary: 'Snapshots, newest first (agents: only those of their own jobs, named with job=)',
  query: Type.Object({ job: optional(JobName), source: optional(Text(4096)), since: optional(READ_TIME), until: optional(READ_TIME) }),
  reply: Type.Object({ snapshots: Type.Array(R.SnapshotRecord) }),
});

export const restore = defineRoute({
  id: 'restore',
  method: 'GET',
  path: '/v1/jobs/:job/restore',
  access: ['admin', 'operator', 'agent'],
  tag: 'snapshots',
  summary: "A snapshot's bytes (all or a range), checked on the way out; `frames` for the framed stream with holes and a verdict",
  params: JobParams,
  query: Type.Object({
    id: optional(Type.String({ minLength: 1, maxLength: 64 })),
    at: optional(READ_TIME),
    source: optional(Text(4096)),
    offset: optional(Bytes),
    length: optional(Bytes),
    frames: optional(Type.String({ maxLength: 8 })),
  }),
  replyPayload: 'binary',
});

export const setProtection = defineRoute({
  id: 'setProtection',
  method: 'PUT',
  path: '/v1/jobs/:job/snapshots/:id/protection',
  access: ['admin', 'operator'],
  tag: 'snapshots',
  summary: 'Protect a snapshot from retention (prune keeps it), or lift that (admins only: it lets prune forget it)',
  params: Type.Object({ job: JobName, id: Type.String({ minLength: 4, maxLength: 64, description: 'a snapshot id or a unique prefix of 4+ hex digits' }) }),
  body: Type.Object({ protected: Type.Boolean() }),
  reply: Type.Object({ job: JobName, id: SnapshotId, key: Type.String(), protected: Type.Boolean() }),
});

export const snapshotChunks = defineRoute({
  id: 'snapshotChunks',
  method: 'GET',
  path: '/v1/jobs/:job/snapshots/:id/chunks',
  access: ['agent', 'admin'],
  tag: 'snapshots',
  summary: "A snapshot's chunk references over a byte range (binary), for an agent that reuses unchanged chunks",
  params: Type.Object({ job: JobName, id: Type.String({ minLength: 1, maxLength: 64 }) }),
  query: Type.Object({ offset: Bytes, length: Bytes }),
  replyPayload: 'binary',
});

// --- notifications (docs/notifications.md) ------------------------------------------------

const TargetParams = Type.Object({ name: JobName });

export const listNotifyTargets = defineRoute({
  id: 'listNotifyTargets',
  method: 'GET',
  path: '/v1/notify/targets',
  access: ['admin'],
  tag: 'notifications',
  summary: 'Notification targets (secrets shown as "(set)"), with what waits for delivery to each',
  reply: Type.Object({ targets: Type.Array(TargetView) }),
});

export const putNotifyTarget = defineRoute({
  id: 'putNotifyTarget',
  method: 'PUT',
  path: '/v1/notify/targets/:name',
  access: ['admin'],
  tag: 'notifications',
  summary: 'Create or replace a notification target (SMTP, webhook or command) and what it matches',
  params: TargetParams,
  body: TargetSettings,
  reply: TargetView,
});

export const deleteNotifyTarget = defineRoute({
  id: 'deleteNotifyTarget',
  method: 'DELETE',
  path: '/v1/notify/targets/:name',
  access: ['admin'],
  tag: 'notifications',
  summary: 'Remove a notification target; what waited for delivery to it is dropped',
  params: TargetParams,
  reply: Type.Object({ name: Type.String(), removed: Type.Literal(true), dropped: Count }),
});

export const testNotifyTarget = defineRoute({
  id: 'testNotifyTarget',
  method: 'POST',
  path: '/v1/notify/targets/:name/test',
  access: ['admin'],
  tag: 'notifications',
  summary: 'Send a test event to a target now and say whether it was delivered',
  params: TargetParams,
  reply: Type.Object({ name: Type.String(), delivered: Type.Boolean(), error: optional(Type.String()), ms: Count, event: NotificationEvent }),
});

export const listNotifyConditions = defineRoute({
  id: 'listNotifyConditions',
  method: 'GET',
  path: '/v1/notify/conditions',
  access: READERS,
  tag: 'notifications',
  summary: 'Open conditions: problems notified once that have not cleared yet',
  reply: Type.Object({
    conditions: Type.Array(
      Type.Object({ condition: Type.String(), openedAt: IsoTime, lastAt: IsoTime, repeats: Count, event: NotificationEvent }, { additionalProperties: false }),
    ),
  }),
});

// --- the backup-validity report --------------------------------------------------------

export const validityReport = defineRoute({
  id: 'validityReport',
  method: 'GET',
  path: '/v1/reports/validity',
  access: READERS,
  tag: 'reports',
  summary: 'The backup-validity report: per job planned vs run vs succeeded, last good snapshot, retention, verify, restore drills',
  query: ValidityQuery,
  reply: ValidityReport,
});

export const runDrills = defineRoute({
  id: 'runDrills',
  method: 'POST',
  path: '/v1/reports/drills',
  access: ['admin', 'operator'],
  tag: 'reports',
  summary: "Restore drills now: each job's newest snapshot restored on the server and checked, nothing written",
  body: Type.Object({ jobs: optional(Type.Array(JobName, { minItems: 1, maxItems: 1000, description: 'the jobs (default every job with a snapshot)' })) }),
  reply: DrillReply,
});

/** Every route by id (each key is its route's id): what the server registers and the client calls. */
export const API_ROUTES = {
  health,
  metrics,
  openapi,
  whoami,
  listStores,
  report,
  addToken,
  listTokens,
  revokeToken,
  addAgent,
  listAgents,
  revokeAgent,
  rotateAgent,
  agentHello,
  agentWork,
  applyPolicies,
  listPolicies,
  getPolicy,
  deletePolicy,
  prune,
  gc,
  verify,
  createRun,
  listRuns,
  getRun,
  runProgress,
  renewLease,
  finishRun,
  cancelRun,
  listJobs,
  runJob,
  jobHistory,
  deleteJob,
  renameJob,
  beginSession,
  listSessions,
  queryMissing,
  uploadBatch,
  commitSession,
  abortSession,
  listSnapshots,
  restore,
  setProtection,
  snapshotChunks,
  pickSnapshot,
  browseSnapshot,
  downloadSnapshot,
  checkPolicies,
  listNotifyTargets,
  putNotifyTarget,
  deleteNotifyTarget,
  testNotifyTarget,
  listNotifyConditions,
  validityReport,
  runDrills,
  signIn,
  consoleSession,
  signOut,
  events,
  listTasks,
} as const;

export type ApiRoutes = typeof API_ROUTES;
export type RouteId = keyof ApiRoutes;
