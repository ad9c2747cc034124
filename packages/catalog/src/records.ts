/**
 * The catalog's record types. All times are ISO-8601 UTC strings
 * (`2024-05-01T02:00:00.000Z`; fractional seconds optional, `Z` required).
 */

/** An agent (a daemon on a hypervisor host) and its authentication token. */
export interface AgentRecord {
  /** `[a-z0-9][a-z0-9._-]{0,62}`. */
  name: string;
  /** Lowercase hex SHA-256 of the agent's bearer token (the token itself is never stored). */
  tokenHash: string;
  createdAt: string;
  /** Set when revoked; a revoked agent's token no longer authenticates. */
  revokedAt?: string;
  lastSeenAt?: string;
  hostname?: string;
  version?: string;
}

/** What touchAgent() records about an agent's latest contact. */
export interface AgentContact {
  /** Defaults to now. */
  lastSeenAt?: string;
  hostname?: string;
  version?: string;
}

/** What an API token (not an agent's) may do: docs/operations.md, "Roles". */
export type TokenRole = 'admin' | 'operator' | 'viewer';

/** An API token for people and scripts (agents have their own, on AgentRecord). */
export interface AdminTokenRecord {
  /** Lowercase hex SHA-256 of the token: the token itself is never stored. */
  hash: string;
  createdAt: string;
  /** Free text to tell tokens apart ("alice's laptop"). */
  label?: string;
  /** Absent on tokens made before roles existed: those are admin tokens. */
  role?: TokenRole;
}

/** A backup job definition. */
export interface JobRecord {
  /** `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` (the same rule as snapshot manifests). */
  name: string;
  /** The fingerprint store the job writes to. */
  store?: string;
  /** The agent that runs the job. */
  agent?: string;
  /** Source specs, as the agent understands them. */
  sources: string[];
  /** Target names discovered so far (for "newly discovered" reporting), in discovery order. */
  knownSources: string[];
  createdAt: string;
  /** When the definition last changed (putJob); addKnownSources does not change it. */
  updatedAt: string;
}

/**
 * A backup policy as the admin wrote it, in its canonical document form (kebab-case keys,
 * defaults written out; @hoard/protocol's policyToDocument). The catalog stores it and
 * does not interpret it: @hoard/protocol validates it on the way in and out.
 */
export interface PolicyRecord {
  name: string;
  document: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/** putJob's argument: timestamps and knownSources are filled in when omitted. */
export interface JobInput {
  name: string;
  store?: string;
  agent?: string;
  sources: string[];
  /** Omitted: keep the stored list (or [] for a new job). */
  knownSources?: string[];
  /** Omitted: keep the stored value (or now for a new job). */
  createdAt?: string;
  /** Omitted: now. */
  updatedAt?: string;
}

/** A committed snapshot, as its manifest in the bucket describes it. */
export interface SnapshotRecord {
  job: string;
  /** 16 lowercase hex digits (the manifest name's hash part). */
  id: string;
  /** The manifest's object key in the bucket. */
  key: string;
  source: { name: string; kind: string };
  startedAt: string;
  finishedAt: string;
  logicalBytes: number;
  /** The fingerprint store's id, lowercase hex. */
  store: string;
  /** The backup session that wrote it, when known (not recorded in the bucket). */
  sessionId?: string;
}

export interface SnapshotQuery {
  job?: string;
  /** Only snapshots of this source (matched against `source.name`). */
  source?: string;
  /** Inclusive lower bound on startedAt. */
  since?: string;
  /** Exclusive upper bound on startedAt. */
  until?: string;
  limit?: number;
  /** Newest first instead of oldest first. */
  newestFirst?: boolean;
}

export type SessionState = 'running' | 'committed' | 'failed' | 'expired';

/** One backup session (one source streamed by one agent), for history and reports. */
export interface SessionRecord {
  /** `[A-Za-z0-9][A-Za-z0-9._-]{0,127}` (e.g. a UUID or hex). */
  id: string;
  agent: string;
  job: string;
  /** Source name. */
  source: string;
  /** Fingerprint store id. */
  store: string;
  startedAt: string;
  finishedAt?: string;
  state: SessionState;
  /** Bytes read from the source (logical stream length so far). */
  bytesRead: number;
  /** Bytes sent over the wire (compressed new chunks plus protocol overhead). */
  bytesSent: number;
  /** Uncompressed size of the chunks the store did not have. */
  bytesNew: number;
  /** Bytes added to the bucket for this session (new chunks, compressed). */
  bytesStored: number;
  chunks: number;
  chunksNew: number;
  /** bytesRead / max(1, bytesStored), computed by putSession. */
  dedupRatio: number;
  /** finishedAt - startedAt in ms; putSession fills it in when finishedAt is set. */
  durationMs?: number;
  error?: string;
  /** The committed snapshot's id. */
  snapshot?: string;
}

/** putSession's argument: dedupRatio is always computed, durationMs when omitted. */
export type SessionInput = Omit<SessionRecord, 'dedupRatio'> & { dedupRatio?: number };

export interface SessionQuery {
  job?: string;
  agent?: string;
  /** Only sessions in this state (filtered after the scan: there is no state index). */
  state?: SessionState;
  limit?: number;
  newestFirst?: boolean;
}

export type RunState = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

/** Work the server does itself, on a schedule or on request (not dispatched to an agent). */
/** `drill`: a restore drill, the newest snapshot of a job read back and checked (validity report). */
export type TaskKind = 'verify' | 'prune' | 'gc' | 'copy' | 'drill';
export type TaskState = 'running' | 'succeeded' | 'failed';

/**
 * One maintenance task: a verify of a job's snapshots, a prune of a job by its policy's
 * retention, or a GC of the repository (no job). Job history lists them with the runs.
 */
export interface TaskRecord {
  /** `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`. */
  id: string;
  kind: TaskKind;
  /** The job it concerned; absent for a repository-wide task (gc). */
  job?: string;
  /** The policy that scheduled it; absent when an admin asked for it. */
  policy?: string;
  state: TaskState;
  startedAt: string;
  finishedAt?: string;
  /** One line for people: what it found or did. */
  summary?: string;
  error?: string;
  /** The full report (JSON). */
  result?: unknown;
}

export interface TaskQuery {
  job?: string;
  kind?: TaskKind;
  limit?: number;
  newestFirst?: boolean;
}

/** A one-off or scheduled run dispatched to an agent. */
export interface RunRecord {
  /** `[A-Za-z0-9][A-Za-z0-9._-]{0,127}`. */
  id: string;
  agent: string;
  job: string;
  sources: string[];
  state: RunState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** Session ids, in the order they started. */
  sessions: string[];
  /**
   * A running run's lease (invariant 8): its agent renews it; when it passes, the server
   * ends the run. Set at claim and at each renewal.
   */
  leaseExpiresAt?: string;
  /** When the agent last renewed the lease (or claimed the run). */
  leaseRenewedAt?: string;
  error?: string;
  /** Anything JSON. */
  result?: unknown;
}

export interface RunQuery {
  agent?: string;
  state?: RunState;
  limit?: number;
  newestFirst?: boolean;
}

/** The `schema` record. */
export interface SchemaRecord {
  version: number;
  createdAt: string;
}

/**
 * What a write changed, as Catalog.onChange reports it: one kind per method family.
 * `agent-contact` is touchAgent (lastSeenAt, hostname, version), `import` importRecords.
 */
export type CatalogChangeKind =
  | 'meta'
  | 'agent'
  | 'agent-contact'
  | 'api-token'
  | 'job'
  | 'policy'
  | 'snapshot'
  | 'session'
  | 'run'
  | 'task'
  | 'notify-target'
  | 'notification'
  | 'import';

export interface CatalogChange {
  kind: CatalogChangeKind;
  /** The run as written (putRun, updateRun, claimNextRun). */
  run?: RunRecord;
  /** The task as written (putTask). */
  task?: TaskRecord;
}

/**
 * A catalog's definitions and history as plain records (exportRecords, importRecords):
 * everything but the snapshot cache (rebuilt from the bucket) and server settings (meta).
 */
export interface CatalogRecords {
  agents: AgentRecord[];
  apiTokens: AdminTokenRecord[];
  jobs: JobRecord[];
  policies: PolicyRecord[];
  runs: RunRecord[];
  sessions: SessionRecord[];
  tasks: TaskRecord[];
  /** Notification targets (added after the first release: an older export has none). */
  notifyTargets?: NotifyTargetRecord[];
}

export interface ExportOptions {
  /**
   * History kept per job: its newest runs (by createdAt) and tasks (by startedAt), and the
   * newest sessions of each of its sources, this many of each; tasks of no job (gc) count
   * as one job. Omitted: all history.
   */
  historyPerJob?: number;
}

// ---------------------------------------------------------------- notifications

/**
 * A notification target made through the API (`hoard notify target add`). `settings` is
 * the target's definition as the server's schema checked it (the catalog keeps it as
 * given, as it keeps policy documents).
 */
export interface NotifyTargetRecord {
  name: string;
  settings: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

/**
 * An open condition (docs/notifications.md, "Coalescing"): a problem that was notified
 * once and has not cleared. Further events of it are counted, not sent, until it clears.
 */
export interface NotifyConditionRecord {
  /** e.g. `run-failed:db1`. */
  key: string;
  openedAt: string;
  lastAt: string;
  /** Events of the condition after the first one (not sent). */
  repeats: number;
  /** The event that opened it. */
  event: Record<string, unknown>;
}

/** A notification waiting for delivery to one target, in order. */
export interface OutboxRecord {
  /** Sorts in enqueue order within its target. */
  id: string;
  target: string;
  event: Record<string, unknown>;
  enqueuedAt: string;
  attempts: number;
  /** Not before this time (after a failed attempt). */
  nextAttemptAt?: string;
  lastError?: string;
}
