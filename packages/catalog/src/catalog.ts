import { resolve } from 'node:path';
import { Level } from 'level';
import {
  AgentExistsError,
  AgentNotFoundError,
  AgentRevokedError,
  CatalogClosedError,
  CatalogError,
  CatalogLockedError,
  CatalogOpenError,
  CatalogSchemaError,
  CatalogNotEmptyError,
  CatalogValidationError,
  JobNotFoundError,
  TokenInUseError,
} from './errors.js';
import { HIGH, INDEX_PREFIXES, SCHEMA_KEY, keys, prefixes, runIndexKeys, taskIndexKeys, sessionIndexKeys, snapshotIndexKeys, timeKey } from './keys.js';
import type {
  AdminTokenRecord,
  TokenRole,
  AgentContact,
  AgentRecord,
  CatalogChange,
  CatalogChangeKind,
  CatalogRecords,
  ExportOptions,
  JobInput,
  JobRecord,
  NotifyConditionRecord,
  NotifyTargetRecord,
  OutboxRecord,
  PolicyRecord,
  RunQuery,
  RunRecord,
  RunState,
  SchemaRecord,
  SessionInput,
  SessionQuery,
  SessionRecord,
  SessionState,
  SnapshotQuery,
  SnapshotRecord,
  TaskKind,
  TaskQuery,
  TaskRecord,
  TaskState,
} from './records.js';
import * as v from './validate.js';

/** The schema this build writes, and the newest it can read. */
export const SCHEMA_VERSION = 1;

const SESSION_STATES: readonly SessionState[] = ['running', 'committed', 'failed', 'expired'];
const RUN_STATES: readonly RunState[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const TASK_KINDS: readonly TaskKind[] = ['verify', 'prune', 'gc', 'copy', 'drill'];
const TASK_STATES: readonly TaskState[] = ['running', 'succeeded', 'failed'];

type Op = { type: 'put'; key: string; value: unknown } | { type: 'del'; key: string };

/** What replaceSnapshots() did. */
export interface ReplaceResult {
  /** Snapshot records that were there before. */
  removed: number;
  /** Snapshot records written. */
  written: number;
}

const nowIso = (): string => new Date().toISOString();

/**
 * The media server's catalog: agents, tokens, jobs, snapshots, session and run history, in
 * one LevelDB directory. One process at a time (LevelDB's LOCK); within the process,
 * writes are serialized, and each change that touches several keys is one atomic batch.
 *
 * The catalog is a cache and a record, not the source of truth: snapshot records can be
 * rebuilt from the bucket at any time with replaceSnapshots().
 */
export class Catalog {
  readonly #db: Level<string, unknown>;
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #listeners = new Set<(change: CatalogChange) => void>();

  private constructor(
    db: Level<string, unknown>,
    /** The catalog's directory (absolute). */
    readonly dir: string,
  ) {
    this.#db = db;
  }

  /**
   * Opens (creating if needed) the catalog in `dir`. Throws CatalogLockedError if another
   * process (or another Catalog in this one) has it open, CatalogSchemaError if a newer
   * hoard wrote it, CatalogOpenError if it is not a catalog or cannot be opened.
   */
  static async open(dir: string): Promise<Catalog> {
    if (typeof dir !== 'string' || dir.length === 0) {
      throw new CatalogValidationError('dir', 'the catalog directory must be a non-empty path');
    }
    const location = resolve(dir);
    const db = new Level<string, unknown>(location, { keyEncoding: 'utf8', valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code === 'LEVEL_LOCKED') throw new CatalogLockedError(location, { cause: err });
      throw new CatalogOpenError(location, cause?.message ?? (err as Error).message, { cause: err });
    }
    try {
      await checkSchema(db, location);
    } catch (err) {
      await db.close().catch(() => {});
      if (err instanceof CatalogError) throw err;
      throw new CatalogOpenError(location, `cannot read the schema record: ${(err as Error).message}`, { cause: err });
    }
    return new Catalog(db, location);
  }

  /** Waits for pending writes, then closes. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue;
    await this.#db.close();
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The schema record (version and when the catalog was created). */
  async schema(): Promise<SchemaRecord> {
    this.#check();
    return (await this.#get<SchemaRecord>(SCHEMA_KEY))!;
  }

  /**
   * Calls `listener` after every write that changed something, with the kind of record
   * it changed (from inside the write queue, so keep it short: set a flag, start a
   * timer). A listener that throws is ignored. Returns the function that unsubscribes.
   */
  onChange(listener: (change: CatalogChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  // ---------------------------------------------------------------- server settings

  async getMeta<T = unknown>(key: string): Promise<T | undefined> {
    this.#check();
    return this.#get<T>(keys.meta(v.metaKey(key)));
  }

  /** Stores any JSON value (not undefined) under `key`. */
  async putMeta(key: string, value: unknown): Promise<void> {
    const k = keys.meta(v.metaKey(key));
    if (value === undefined || JSON.stringify(value) === undefined) {
      throw new CatalogValidationError('meta value', `meta value for ${key} must be a JSON value (use deleteMeta to remove it)`);
    }
    await this.#write(async () => {
      await this.#db.put(k, value);
      this.#emit('meta');
    });
  }

  /** True if the key was there. */
  async deleteMeta(key: string): Promise<boolean> {
    const k = keys.meta(v.metaKey(key));
    return this.#write(async () => {
      if ((await this.#get(k)) === undefined) return false;
      await this.#db.del(k);
      this.#emit('meta');
      return true;
    });
  }

  // ---------------------------------------------------------------- agents

  /**
   * Adds an agent with its token's hash. A revoked agent of the same name is replaced
   * (a fresh record); a live one is an AgentExistsError.
   */
  async addAgent(name: string, tokenHash: string): Promise<AgentRecord> {
    v.agentName(name);
    const hash = v.tokenHash(tokenHash);
    return this.#write(async () => {
      const existing = await this.#get<AgentRecord>(keys.agent(name));
      if (existing && existing.revokedAt === undefined) throw new AgentExistsError(name);
      await this.#assertTokenFree(hash);
      const agent: AgentRecord = { name, tokenHash: hash, createdAt: nowIso() };
      await this.#batch([
        { type: 'put', key: keys.agent(name), value: agent },
        { type: 'put', key: keys.agentToken(hash), value: name },
      ]);
      this.#emit('agent');
      return agent;
    });
  }

  async getAgent(name: string): Promise<AgentRecord | undefined> {
    this.#check();
    return this.#get<AgentRecord>(keys.agent(v.agentName(name)));
  }

  /** The live (not revoked) agent whose token hashes to `hash`: one index lookup. */
  async agentByTokenHash(hash: string): Promise<AgentRecord | undefined> {
    this.#check();
    const h = v.tokenHash(hash);
    const name = await this.#get<string>(keys.agentToken(h));
    if (name === undefined) return undefined;
    const agent = await this.#get<AgentRecord>(keys.agent(name));
    if (!agent || agent.tokenHash !== h || agent.revokedAt !== undefined) return undefined;
    return agent;
  }

  /** All agents by name, revoked ones included unless `includeRevoked` is false. */
  async listAgents(options: { includeRevoked?: boolean } = {}): Promise<AgentRecord[]> {
    this.#check();
    const all = await this.#values<AgentRecord>(prefixes.agent);
    return options.includeRevoked === false ? all.filter((a) => a.revokedAt === undefined) : all;
  }

  /** Revokes the agent's token (the record stays, with revokedAt). Idempotent. */
  async revokeAgent(name: string): Promise<AgentRecord> {
    v.agentName(name);
    return this.#write(async () => {
      const agent = await this.#get<AgentRecord>(keys.agent(name));
      if (!agent) throw new AgentNotFoundError(name);
      if (agent.revokedAt !== undefined) return agent;
      const revoked: AgentRecord = { ...agent, revokedAt: nowIso() };
      const ops: Op[] = [{ type: 'put', key: keys.agent(name), value: revoked }];
      if ((await this.#get<string>(keys.agentToken(agent.tokenHash))) === name) {
        ops.push({ type: 'del', key: keys.agentToken(agent.tokenHash) });
      }
      await this.#batch(ops);
      this.#emit('agent');
      return revoked;
    });
  }

  /** Replaces a live agent's token; the old one stops working at once. */
  async rotateAgentToken(name: string, newHash: string): Promise<AgentRecord> {
    v.agentName(name);
    const hash = v.tokenHash(newHash, 'new token hash');
    return this.#write(async () => {
      const agent = await this.#get<AgentRecord>(keys.agent(name));
      if (!agent) throw new AgentNotFoundError(name);
      if (agent.revokedAt !== undefined) throw new AgentRevokedError(name, agent.revokedAt);
      if (agent.tokenHash === hash) return agent;
      await this.#assertTokenFree(hash);
      const rotated: AgentRecord = { ...agent, tokenHash: hash };
      const ops: Op[] = [
        { type: 'put', key: keys.agent(name), value: rotated },
        { type: 'put', key: keys.agentToken(hash), value: name },
      ];
      if ((await this.#get<string>(keys.agentToken(agent.tokenHash))) === name) {
        ops.unshift({ type: 'del', key: keys.agentToken(agent.tokenHash) });
      }
      await this.#batch(ops);
      this.#emit('agent');
      return rotated;
    });
  }

  /** Records an agent's latest contact (lastSeenAt defaults to now). */
  async touchAgent(name: string, contact: AgentContact = {}): Promise<AgentRecord> {
    v.agentName(name);
    v.record(contact, 'agent contact');
    v.optionalIsoTime(contact.lastSeenAt, 'lastSeenAt');
    v.optionalText(contact.hostname, 'hostname');
    v.optionalText(contact.version, 'version');
    return this.#write(async () => {
      const agent = await this.#get<AgentRecord>(keys.agent(name));
      if (!agent) throw new AgentNotFoundError(name);
      const touched: AgentRecord = { ...agent, lastSeenAt: contact.lastSeenAt ?? nowIso() };
      if (contact.hostname !== undefined) touched.hostname = contact.hostname;
      if (contact.version !== undefined) touched.version = contact.version;
      await this.#db.put(keys.agent(name), touched);
      this.#emit('agent-contact');
      return touched;
    });
  }

  // ---------------------------------------------------------------- admin tokens

  /**
   * Adds an API token hash (several may exist) with its role (default admin). Adding one
   * that exists returns it unchanged.
   */
  async setAdminToken(hash: string, options: { label?: string; role?: TokenRole } = {}): Promise<AdminTokenRecord> {
    const h = v.tokenHash(hash);
    v.optionalText(options.label, 'label');
    if (options.role !== undefined) v.oneOf(options.role, ['admin', 'operator', 'viewer'] as const, 'role');
    return this.#write(async () => {
      const existing = await this.#get<AdminTokenRecord>(keys.adminToken(h));
      if (existing) return existing;
      await this.#assertTokenFree(h);
      const token: AdminTokenRecord = { hash: h, createdAt: nowIso() };
      if (options.label !== undefined) token.label = options.label;
      if (options.role !== undefined && options.role !== 'admin') token.role = options.role;
      await this.#db.put(keys.adminToken(h), token);
      this.#emit('api-token');
      return token;
    });
  }

  /** The API token of this hash, if there is one. */
  async getAdminToken(hash: string): Promise<AdminTokenRecord | undefined> {
    this.#check();
    return this.#get<AdminTokenRecord>(keys.adminToken(v.tokenHash(hash)));
  }

  async isAdminTokenHash(hash: string): Promise<boolean> {
    this.#check();
    return (await this.#get(keys.adminToken(v.tokenHash(hash)))) !== undefined;
  }

  async listAdminTokens(): Promise<AdminTokenRecord[]> {
    this.#check();
    return this.#values<AdminTokenRecord>(prefixes.adminToken);
  }

  /** True if it was there. */
  async revokeAdminToken(hash: string): Promise<boolean> {
    const k = keys.adminToken(v.tokenHash(hash));
    return this.#write(async () => {
      if ((await this.#get(k)) === undefined) return false;
      await this.#db.del(k);
      this.#emit('api-token');
      return true;
    });
  }

  // ---------------------------------------------------------------- jobs

  /** Creates or replaces a job definition (see JobInput for what is kept when omitted). */
  async putJob(input: JobInput): Promise<JobRecord> {
    v.record(input, 'job');
    const name = v.jobName(input.name);
    if (input.store !== undefined) v.text(input.store, 'job.store');
    if (input.agent !== undefined) v.agentName(input.agent, 'job.agent');
    const sources = v.stringList(input.sources, 'job.sources');
    if (input.knownSources !== undefined) v.stringList(input.knownSources, 'job.knownSources');
    v.optionalIsoTime(input.createdAt, 'job.createdAt');
    v.optionalIsoTime(input.updatedAt, 'job.updatedAt');
    return this.#write(async () => {
      const existing = await this.#get<JobRecord>(keys.job(name));
      const now = nowIso();
      const job: JobRecord = {
        name,
        ...(input.store !== undefined ? { store: input.store } : {}),
        ...(input.agent !== undefined ? { agent: input.agent } : {}),
        sources: [...sources],
        knownSources: [...(input.knownSources ?? existing?.knownSources ?? [])],
        createdAt: input.createdAt ?? existing?.createdAt ?? now,
        updatedAt: input.updatedAt ?? now,
      };
      await this.#db.put(keys.job(name), job);
      this.#emit('job');
      return job;
    });
  }

  async getJob(name: string): Promise<JobRecord | undefined> {
    this.#check();
    return this.#get<JobRecord>(keys.job(v.jobName(name)));
  }

  /** All jobs by name. */
  async listJobs(): Promise<JobRecord[]> {
    this.#check();
    return this.#values<JobRecord>(prefixes.job);
  }

  /**
   * Deletes the job definition only: its snapshots (a cache of what is in the bucket) and
   * its session and run history stay. True if it was there.
   */
  async deleteJob(name: string): Promise<boolean> {
    const k = keys.job(v.jobName(name));
    return this.#write(async () => {
      if ((await this.#get(k)) === undefined) return false;
      await this.#db.del(k);
      this.#emit('job');
      return true;
    });
  }

  // ---------------------------------------------------------------- policies

  /** Creates or replaces a policy; `createdAt` is kept from the one it replaces. */
  async putPolicy(name: string, document: Record<string, unknown>): Promise<PolicyRecord> {
    v.jobName(name, 'policy name');
    v.record(document, 'policy document');
    return this.#write(async () => {
      const existing = await this.#get<PolicyRecord>(keys.policy(name));
      const now = nowIso();
      const record: PolicyRecord = { name, document, createdAt: existing?.createdAt ?? now, updatedAt: now };
      await this.#db.put(keys.policy(name), record);
      this.#emit('policy');
      return record;
    });
  }

  async getPolicy(name: string): Promise<PolicyRecord | undefined> {
    this.#check();
    return this.#get<PolicyRecord>(keys.policy(v.jobName(name, 'policy name')));
  }

  async listPolicies(): Promise<PolicyRecord[]> {
    this.#check();
    return this.#values<PolicyRecord>(prefixes.policy);
  }

  /** True if it was there. Jobs, snapshots and history of the policy stay. */
  async deletePolicy(name: string): Promise<boolean> {
    const k = keys.policy(v.jobName(name, 'policy name'));
    return this.#write(async () => {
      if ((await this.#get(k)) === undefined) return false;
      await this.#db.del(k);
      this.#emit('policy');
      return true;
    });
  }

  /** Adds target names to the job's knownSources; returns the ones that were new, in order. */
  async addKnownSources(job: string, names: string[]): Promise<string[]> {
    v.jobName(job);
    v.stringList(names, 'source names');
    return this.#write(async () => {
      const record = await this.#get<JobRecord>(keys.job(job));
      if (!record) throw new JobNotFoundError(job);
      const known = new Set(record.knownSources);
      const added: string[] = [];
      for (const name of names) {
        if (!known.has(name)) {
          known.add(name);
          added.push(name);
        }
      }
      if (added.length > 0) {
        await this.#db.put(keys.job(job), { ...record, knownSources: [...record.knownSources, ...added] });
        this.#emit('job');
      }
      return added;
    });
  }

  // ---------------------------------------------------------------- snapshots

  /** Adds or replaces one snapshot record (keyed by job and id). */
  async putSnapshot(snapshot: SnapshotRecord): Promise<SnapshotRecord> {
    const record = cleanSnapshot(snapshot);
    const key = keys.snapshot(record.job, record.id);
    return this.#write(async () => {
      const old = await this.#get<SnapshotRecord>(key);
      await this.#batch(upsertOps(key, record, old, snapshotIndexKeys));
      this.#emit('snapshot');
      return record;
    });
  }

  async getSnapshot(job: string, id: string): Promise<SnapshotRecord | undefined> {
    this.#check();
    return this.#get<SnapshotRecord>(keys.snapshot(v.jobName(job), v.snapshotId(id)));
  }

  /** True if it was there. */
  async deleteSnapshot(job: string, id: string): Promise<boolean> {
    const key = keys.snapshot(v.jobName(job), v.snapshotId(id));
    return this.#write(async () => {
      const old = await this.#get<SnapshotRecord>(key);
      if (!old) return false;
      await this.#batch([{ type: 'del', key }, ...snapshotIndexKeys(old).map((k): Op => ({ type: 'del', key: k }))]);
      this.#emit('snapshot');
      return true;
    });
  }

  /**
   * Snapshots in startedAt order (oldest first unless newestFirst; ties by job, then id),
   * optionally of one job and/or source, with startedAt in [since, until).
   */
  async listSnapshots(query: SnapshotQuery = {}): Promise<SnapshotRecord[]> {
    this.#check();
    v.record(query, 'snapshot query');
    if (query.job !== undefined) v.jobName(query.job);
    if (query.source !== undefined) v.text(query.source, 'source');
    const prefix = query.job !== undefined ? prefixes.snapshotJobAt(query.job) : prefixes.snapshotAt;
    const source = query.source;
    return this.#listIndexed<SnapshotRecord>(prefix, query, source === undefined ? undefined : (s) => s.source.name === source);
  }

  /**
   * Drops every snapshot record of `job` (or of all jobs, when `job` is undefined) and
   * writes `records` instead, in one atomic batch: how a caller that has listed the
   * manifests in the bucket rebuilds this cache. With a job, every record must be of it.
   * Records with the same job and id: the last one wins.
   */
  async replaceSnapshots(job: string | undefined, records: SnapshotRecord[]): Promise<ReplaceResult> {
    if (job !== undefined) v.jobName(job);
    if (!Array.isArray(records)) throw new CatalogValidationError('records', 'records must be an array of snapshot records');
    const byKey = new Map<string, SnapshotRecord>();
    records.forEach((r, i) => {
      const clean = cleanSnapshot(r, `records[${i}]`);
      if (job !== undefined && clean.job !== job) {
        throw new CatalogValidationError(
          `records[${i}].job`,
          `records[${i}] is a snapshot of job ${clean.job}, but replaceSnapshots was asked to replace job ${job}'s snapshots`,
        );
      }
      const key = keys.snapshot(clean.job, clean.id);
      byKey.delete(key);
      byKey.set(key, clean);
    });
    return this.#write(async () => {
      const ops: Op[] = [];
      let removed = 0;
      const del = (key: string) => ops.push({ type: 'del', key });
      if (job === undefined) {
        for (const key of await this.#keys(prefixes.snapshot)) {
          del(key);
          removed++;
        }
        for (const key of await this.#keys(prefixes.snapshotAt)) del(key);
        for (const key of await this.#keys('snapshot-job-at/')) del(key);
      } else {
        for (const key of await this.#keys(prefixes.snapshotJob(job))) {
          del(key);
          removed++;
        }
        for (const key of await this.#keys(prefixes.snapshotJobAt(job))) del(key);
        // snapshot-at/<time>/<job>/<id>: scanned whole, so that stray entries go too.
        for (const key of await this.#keys(prefixes.snapshotAt)) {
          if (key.split('/')[2] === job) del(key);
        }
      }
      for (const [key, record] of byKey) {
        ops.push({ type: 'put', key, value: record });
        for (const index of snapshotIndexKeys(record)) ops.push({ type: 'put', key: index, value: key });
      }
      await this.#batch(ops);
      this.#emit('snapshot');
      return { removed, written: byKey.size };
    });
  }

  // ---------------------------------------------------------------- sessions

  /**
   * Creates or updates a session (keyed by id). dedupRatio is always computed: bytesRead /
   * max(1, bytesNew), 2 decimals, at most 1000 (the protocol's rule); durationMs from the
   * times when omitted.
   */
  async putSession(input: SessionInput): Promise<SessionRecord> {
    const record = cleanSession(input);
    const key = keys.session(record.id);
    return this.#write(async () => {
      const old = await this.#get<SessionRecord>(key);
      await this.#batch(upsertOps(key, record, old, sessionIndexKeys));
      this.#emit('session');
      return record;
    });
  }

  async getSession(id: string): Promise<SessionRecord | undefined> {
    this.#check();
    return this.#get<SessionRecord>(keys.session(v.recordId(id, 'session id')));
  }

  /** Sessions in startedAt order (oldest first unless newestFirst), of a job and/or agent. */
  async listSessions(query: SessionQuery = {}): Promise<SessionRecord[]> {
    this.#check();
    v.record(query, 'session query');
    if (query.job !== undefined) v.jobName(query.job);
    if (query.agent !== undefined) v.agentName(query.agent);
    if (query.state !== undefined) v.oneOf(query.state, SESSION_STATES, 'state');
    const { job, agent, state } = query;
    const inState = state === undefined ? undefined : (s: SessionRecord) => s.state === state;
    if (job !== undefined) {
      return this.#listIndexed<SessionRecord>(
        prefixes.sessionJob(job),
        query,
        agent === undefined ? inState : (s) => s.agent === agent && (inState?.(s) ?? true),
      );
    }
    return this.#listIndexed<SessionRecord>(agent !== undefined ? prefixes.sessionAgent(agent) : prefixes.sessionAt, query, inState);
  }

  // ---------------------------------------------------------------- runs

  /** Creates or updates a run (keyed by id). */
  async putRun(run: RunRecord): Promise<RunRecord> {
    const record = cleanRun(run);
    const key = keys.run(record.id);
    return this.#write(async () => {
      const old = await this.#get<RunRecord>(key);
      await this.#batch(upsertOps(key, record, old, runIndexKeys));
      this.#emit('run', { run: record });
      return record;
    });
  }

  /**
   * Read-modify-write of one run, atomic against every other catalog write: `change` gets
   * the stored run and returns the new record, or undefined to leave it as it is. So a
   * lease that ends a run and the agent's finish report cannot both win. Returns what is
   * stored afterwards (undefined: no such run).
   */
  async updateRun(id: string, change: (run: RunRecord) => RunRecord | undefined): Promise<RunRecord | undefined> {
    const key = keys.run(v.recordId(id, 'run id'));
    return this.#write(async () => {
      const old = await this.#get<RunRecord>(key);
      if (!old) return undefined;
      const next = change(old);
      if (!next) return old;
      const record = cleanRun(next);
      if (record.id !== old.id) throw new CatalogValidationError('run id', `updateRun may not change a run's id (${old.id} -> ${record.id})`);
      await this.#batch(upsertOps(key, record, old, runIndexKeys));
      this.#emit('run', { run: record });
      return record;
    });
  }

  async getRun(id: string): Promise<RunRecord | undefined> {
    this.#check();
    return this.#get<RunRecord>(keys.run(v.recordId(id, 'run id')));
  }

  /** Runs in createdAt order (oldest first unless newestFirst), of an agent and/or in a state. */
  async listRuns(query: RunQuery = {}): Promise<RunRecord[]> {
    this.#check();
    v.record(query, 'run query');
    const { agent, state } = query;
    if (agent !== undefined) v.agentName(agent);
    if (state !== undefined) v.oneOf(state, RUN_STATES, 'state');
    const prefix =
      agent !== undefined && state !== undefined
        ? prefixes.runAgentState(agent, state)
        : agent !== undefined
          ? prefixes.runAgent(agent)
          : state !== undefined
            ? prefixes.runState(state)
            : prefixes.runAt;
    return this.#listIndexed<RunRecord>(prefix, query);
  }

  /** The agent's oldest queued run, if any. */
  async nextQueuedRun(agent: string): Promise<RunRecord | undefined> {
    this.#check();
    v.agentName(agent);
    const [run] = await this.#listIndexed<RunRecord>(prefixes.runAgentState(agent, 'queued'), { limit: 1 });
    return run;
  }

  /**
   * Atomically takes the agent's oldest queued run and marks it running (startedAt = now
   * unless given), so two polls never get the same run. Undefined if none is queued, or
   * if the agent already has `maxRunning` runs running (a policy's concurrency limit).
   * With `leaseMs`, the claimed run holds a lease until startedAt + leaseMs.
   */
  async claimNextRun(agent: string, startedAt?: string, options: { maxRunning?: number; leaseMs?: number } = {}): Promise<RunRecord | undefined> {
    v.agentName(agent);
    v.optionalIsoTime(startedAt, 'startedAt');
    const { maxRunning } = options;
    if (maxRunning !== undefined && !(Number.isSafeInteger(maxRunning) && maxRunning >= 1))
      throw new TypeError(`maxRunning must be a whole number >= 1; got ${maxRunning}`);
    return this.#write(async () => {
      // Counted under the write lock, so concurrent claims never exceed the limit.
      if (
        maxRunning !== undefined &&
        (await this.#listIndexed<RunRecord>(prefixes.runAgentState(agent, 'running'), { limit: maxRunning })).length >= maxRunning
      )
        return undefined;
      const [run] = await this.#listIndexed<RunRecord>(prefixes.runAgentState(agent, 'queued'), { limit: 1 });
      if (!run) return undefined;
      const at = startedAt ?? nowIso();
      const lease = options.leaseMs === undefined ? {} : { leaseRenewedAt: at, leaseExpiresAt: new Date(Date.parse(at) + options.leaseMs).toISOString() };
      const running: RunRecord = { ...run, state: 'running', startedAt: at, ...lease };
      await this.#batch(upsertOps(keys.run(run.id), running, run, runIndexKeys));
      this.#emit('run', { run: running });
      return running;
    });
  }

  // ---------------------------------------------------------------- tasks

  /** Creates or replaces a maintenance task record (verify, prune, gc). */
  async putTask(task: TaskRecord): Promise<TaskRecord> {
    const record = cleanTask(task);
    const key = keys.task(record.id);
    return this.#write(async () => {
      const old = await this.#get<TaskRecord>(key);
      await this.#batch(upsertOps(key, record, old, taskIndexKeys));
      this.#emit('task', { task: record });
      return record;
    });
  }

  async getTask(id: string): Promise<TaskRecord | undefined> {
    this.#check();
    return this.#get<TaskRecord>(keys.task(v.recordId(id, 'task id')));
  }

  /** Tasks in startedAt order (oldest first unless newestFirst), of a job and/or of a kind. */
  async listTasks(query: TaskQuery = {}): Promise<TaskRecord[]> {
    this.#check();
    v.record(query, 'task query');
    if (query.job !== undefined) v.jobName(query.job);
    if (query.kind !== undefined) v.oneOf(query.kind, TASK_KINDS, 'kind');
    const kind = query.kind;
    return this.#listIndexed<TaskRecord>(
      query.job !== undefined ? prefixes.taskJob(query.job) : prefixes.taskAt,
      query,
      kind === undefined ? undefined : (t) => t.kind === kind,
    );
  }

  // ---------------------------------------------------------------- notifications

  /** Creates or replaces a notification target; `createdAt` is kept from the one it replaces. */
  async putNotifyTarget(name: string, settings: Record<string, unknown>): Promise<NotifyTargetRecord> {
    v.jobName(name, 'notification target name');
    v.record(settings, 'notification target settings');
    return this.#write(async () => {
      const existing = await this.#get<NotifyTargetRecord>(keys.notifyTarget(name));
      const now = nowIso();
      const record: NotifyTargetRecord = { name, settings, createdAt: existing?.createdAt ?? now, updatedAt: now };
      await this.#db.put(keys.notifyTarget(name), record);
      this.#emit('notify-target');
      return record;
    });
  }

  async getNotifyTarget(name: string): Promise<NotifyTargetRecord | undefined> {
    this.#check();
    return this.#get<NotifyTargetRecord>(keys.notifyTarget(v.jobName(name, 'notification target name')));
  }

  async listNotifyTargets(): Promise<NotifyTargetRecord[]> {
    this.#check();
    return this.#values<NotifyTargetRecord>(prefixes.notifyTarget);
  }

  /** True if it was there; what waited for delivery to it is dropped with it. */
  async deleteNotifyTarget(name: string): Promise<boolean> {
    const k = keys.notifyTarget(v.jobName(name, 'notification target name'));
    return this.#write(async () => {
      if ((await this.#get(k)) === undefined) return false;
      const ops: Op[] = [{ type: 'del', key: k }];
      for (const key of await this.#keys(prefixes.outboxTarget(name))) ops.push({ type: 'del', key });
      await this.#batch(ops);
      this.#emit('notify-target');
      return true;
    });
  }

  /**
   * Records an event for delivery to `targets`, in one batch with its condition: with a
   * `condition` that is open already, nothing is queued (the repeat is counted) and false
   * is returned; otherwise the condition (if any) opens and the event is queued for every
   * target. One batch, so a crash never leaves a condition open whose event was lost.
   */
  async raiseNotification(condition: string | undefined, event: Record<string, unknown>, targets: readonly string[]): Promise<boolean> {
    if (condition !== undefined) v.conditionKey(condition);
    for (const t of targets) v.jobName(t, 'notification target name');
    v.record(event, 'event');
    return this.#write(async () => {
      const now = nowIso();
      const ops: Op[] = [];
      if (condition !== undefined) {
        const open = await this.#get<NotifyConditionRecord>(keys.notifyCondition(condition));
        if (open) {
          await this.#db.put(keys.notifyCondition(condition), { ...open, lastAt: now, repeats: open.repeats + 1 });
          return false;
        }
        const record: NotifyConditionRecord = { key: condition, openedAt: now, lastAt: now, repeats: 0, event };
        ops.push({ type: 'put', key: keys.notifyCondition(condition), value: record });
      }
      ops.push(...this.#outboxOps(event, targets, now));
      await this.#batch(ops);
      this.#emit('notification');
      return true;
    });
  }

  /**
   * Clears an open condition and queues what `resolved` makes of it (the "resolved"
   * event and its targets), in one batch. Undefined when the condition was not open.
   */
  async resolveNotification(
    condition: string,
    resolved: (open: NotifyConditionRecord) => { event: Record<string, unknown>; targets: readonly string[] },
  ): Promise<NotifyConditionRecord | undefined> {
    const k = keys.notifyCondition(v.conditionKey(condition));
    return this.#write(async () => {
      const open = await this.#get<NotifyConditionRecord>(k);
      if (!open) return undefined;
      const { event, targets } = resolved(open);
      await this.#batch([{ type: 'del', key: k }, ...this.#outboxOps(event, targets, nowIso())]);
      this.#emit('notification');
      return open;
    });
  }

  async listConditions(): Promise<NotifyConditionRecord[]> {
    this.#check();
    return this.#values<NotifyConditionRecord>(prefixes.notifyCondition);
  }

  /** The oldest `limit` notifications waiting for `target`, oldest first. */
  async outbox(target: string, limit = 100): Promise<OutboxRecord[]> {
    this.#check();
    const prefix = prefixes.outboxTarget(v.jobName(target, 'notification target name'));
    const out: OutboxRecord[] = [];
    for await (const value of this.#db.values({ gte: prefix, lt: prefix + HIGH, limit })) out.push(value as OutboxRecord);
    return out;
  }

  /** Every notification waiting for delivery, by target then age. */
  async listOutbox(): Promise<OutboxRecord[]> {
    this.#check();
    return this.#values<OutboxRecord>(prefixes.outbox);
  }

  /** A notification was delivered (or given up on): it leaves the outbox. */
  async outboxDone(target: string, id: string): Promise<void> {
    const k = keys.outbox(v.jobName(target, 'notification target name'), v.recordId(id, 'outbox id'));
    await this.#write(async () => {
      await this.#db.del(k);
      this.#emit('notification');
    });
  }

  /** A delivery attempt failed: counted, with its error and when to try again. */
  async outboxRetry(target: string, id: string, failure: { error: string; nextAttemptAt: string }): Promise<void> {
    const k = keys.outbox(v.jobName(target, 'notification target name'), v.recordId(id, 'outbox id'));
    await this.#write(async () => {
      const entry = await this.#get<OutboxRecord>(k);
      if (!entry) return;
      await this.#db.put(k, { ...entry, attempts: entry.attempts + 1, lastError: failure.error, nextAttemptAt: failure.nextAttemptAt });
    });
  }

  #outboxSeq = 0;
  #outboxOps(event: Record<string, unknown>, targets: readonly string[], now: string): Op[] {
    // Time first, then a counter: enqueue order within a target, also within a millisecond.
    const id = `${timeKey(Date.parse(now))}-${String(this.#outboxSeq++ % 1e9).padStart(9, '0')}`;
    return targets.map((target) => ({
      type: 'put' as const,
      key: keys.outbox(target, id),
      value: { id, target, event, enqueuedAt: now, attempts: 0 } satisfies OutboxRecord,
    }));
  }

  // ---------------------------------------------------------------- export and import

  /**
   * True when the catalog holds no agents, API tokens, jobs, policies, runs, sessions or
   * tasks: what a new data directory looks like. The snapshot cache (rebuilt from the
   * bucket) and server settings (meta) do not count.
   */
  async isEmpty(): Promise<boolean> {
    this.#check();
    return (await this.#heldKinds()).length === 0;
  }

  /**
   * The definitions and history as plain records, read from one LevelDB snapshot (a
   * concurrent write is in all of it or in none). Each list is in key order (by name, hash
   * or id), so the same catalog exports the same records in the same order.
   */
  async exportRecords(options: ExportOptions = {}): Promise<CatalogRecords> {
    this.#check();
    const perJob = v.positiveLimit(options.historyPerJob, 'historyPerJob');
    const snapshot = this.#db.snapshot();
    try {
      const read = async <T>(prefix: string): Promise<T[]> => {
        const out: T[] = [];
        for await (const value of this.#db.values({ gte: prefix, lt: prefix + HIGH, snapshot })) out.push(value as T);
        return out;
      };
      const agents = await read<AgentRecord>(prefixes.agent);
      const apiTokens = await read<AdminTokenRecord>(prefixes.adminToken);
      const jobs = await read<JobRecord>(prefixes.job);
      const policies = await read<PolicyRecord>(prefixes.policy);
      const runs = newestPer(
        await read<RunRecord>(prefixes.run),
        perJob,
        (r) => r.job,
        (r) => r.createdAt,
      );
      const sessions = newestPer(
        await read<SessionRecord>(prefixes.session),
        perJob,
        (s) => `${s.job}/${s.source}`,
        (s) => s.startedAt,
      );
      const tasks = newestPer(
        await read<TaskRecord>(prefixes.task),
        perJob,
        (t) => t.job ?? '',
        (t) => t.startedAt,
      );
      const notifyTargets = await read<NotifyTargetRecord>(prefixes.notifyTarget);
      return { agents, apiTokens, jobs, policies, runs, sessions, tasks, notifyTargets };
    } finally {
      await snapshot.close();
    }
  }

  /**
   * Writes exported records into an empty catalog (isEmpty), in one atomic batch, as they
   * were: times, revoked agents, token hashes and roles are kept, index entries derived.
   * Every record is checked as the put methods check it. CatalogNotEmptyError when the
   * catalog holds records already (an import never merges); TokenInUseError when two live
   * agents or an agent and an API token share a token hash. Returns the counts written.
   */
  async importRecords(records: CatalogRecords): Promise<Record<keyof CatalogRecords, number>> {
    const r = v.record(records, 'records') as unknown as CatalogRecords;
    const list = <T>(field: keyof CatalogRecords, clean: (x: T, what: string) => T): T[] => {
      const value = (r as unknown as Record<string, unknown>)[field];
      if (!Array.isArray(value)) throw new CatalogValidationError(field, `${field} must be an array of records`);
      return value.map((x: T, i) => clean(x, `${field}[${i}]`));
    };
    const agents = list('agents', cleanAgent);
    const apiTokens = list('apiTokens', cleanApiToken);
    const jobs = list('jobs', cleanJob);
    const policies = list('policies', cleanPolicy);
    const runs = list<RunRecord>('runs', (x) => cleanRun(x));
    const sessions = list<SessionRecord>('sessions', (x) => cleanSession(x));
    const tasks = list<TaskRecord>('tasks', (x) => cleanTask(x));
    // Optional: states exported before notifications existed have none.
    const notifyTargets = r.notifyTargets === undefined ? [] : list('notifyTargets', cleanNotifyTarget);
    const ops: Op[] = [];
    const tokens = new Map<string, string>();
    const claim = (hash: string, holder: string): void => {
      const other = tokens.get(hash);
      if (other !== undefined) throw new TokenInUseError(`${other} (and ${holder} in the same import)`);
      tokens.set(hash, holder);
    };
    for (const t of apiTokens) {
      claim(t.hash, 'an admin token');
      ops.push({ type: 'put', key: keys.adminToken(t.hash), value: t });
    }
    for (const a of agents) {
      ops.push({ type: 'put', key: keys.agent(a.name), value: a });
      if (a.revokedAt !== undefined) continue;
      claim(a.tokenHash, `agent ${a.name}`);
      ops.push({ type: 'put', key: keys.agentToken(a.tokenHash), value: a.name });
    }
    for (const j of jobs) ops.push({ type: 'put', key: keys.job(j.name), value: j });
    for (const p of policies) ops.push({ type: 'put', key: keys.policy(p.name), value: p });
    for (const run of runs) ops.push(...upsertOps(keys.run(run.id), run, undefined, runIndexKeys));
    for (const session of sessions) ops.push(...upsertOps(keys.session(session.id), session, undefined, sessionIndexKeys));
    for (const task of tasks) ops.push(...upsertOps(keys.task(task.id), task, undefined, taskIndexKeys));
    for (const t of notifyTargets) ops.push({ type: 'put', key: keys.notifyTarget(t.name), value: t });
    return this.#write(async () => {
      const held = await this.#heldKinds();
      if (held.length > 0) throw new CatalogNotEmptyError(this.dir, held.join(', '));
      await this.#batch(ops);
      this.#emit('import');
      return {
        agents: agents.length,
        apiTokens: apiTokens.length,
        jobs: jobs.length,
        policies: policies.length,
        runs: runs.length,
        sessions: sessions.length,
        tasks: tasks.length,
        notifyTargets: notifyTargets.length,
      };
    });
  }

  /** Which kinds of definitions and history the catalog holds (for isEmpty and its error). */
  async #heldKinds(): Promise<string[]> {
    const kinds: [string, string][] = [
      ['agents', prefixes.agent],
      ['API tokens', prefixes.adminToken],
      ['jobs', prefixes.job],
      ['policies', prefixes.policy],
      ['runs', prefixes.run],
      ['sessions', prefixes.session],
      ['tasks', prefixes.task],
      ['notification targets', prefixes.notifyTarget],
    ];
    const held: string[] = [];
    for (const [what, prefix] of kinds) {
      for await (const _ of this.#db.keys({ gte: prefix, lt: prefix + HIGH, limit: 1 })) held.push(what);
    }
    return held;
  }

  // ---------------------------------------------------------------- maintenance

  /**
   * Checks that every secondary index entry matches its record and vice versa (the
   * agent-token index, and the time indexes of snapshots, sessions and runs). Returns
   * one line per problem; [] when consistent.
   */
  async checkConsistency(): Promise<string[]> {
    this.#check();
    const problems: string[] = [];
    const snapshot = this.#db.snapshot();
    try {
      const read = async (prefix: string) => {
        const out: [string, unknown][] = [];
        for await (const entry of this.#db.iterator({ gte: prefix, lt: prefix + HIGH, snapshot })) out.push(entry);
        return out;
      };
      // Agent tokens.
      const agents = new Map((await read(prefixes.agent)).map(([, a]) => [(a as AgentRecord).name, a as AgentRecord]));
      const tokenIndex = new Map((await read(prefixes.agentToken)).map(([k, n]) => [k.slice(prefixes.agentToken.length), n as string]));
      for (const agent of agents.values()) {
        const live = agent.revokedAt === undefined;
        const indexed = tokenIndex.get(agent.tokenHash) === agent.name;
        if (live && !indexed) problems.push(`agent ${agent.name}: no agent-token entry for its token`);
      }
      for (const [hash, name] of tokenIndex) {
        const agent = agents.get(name);
        if (!agent) problems.push(`agent-token/${hash}: points at missing agent ${name}`);
        else if (agent.tokenHash !== hash) problems.push(`agent-token/${hash}: agent ${name} has another token`);
        else if (agent.revokedAt !== undefined) problems.push(`agent-token/${hash}: agent ${name} is revoked`);
      }
      // Time indexes.
      const expected = new Map<string, string>();
      const primaries: [string, (r: never) => string[]][] = [
        [prefixes.snapshot, snapshotIndexKeys as (r: never) => string[]],
        [prefixes.session, sessionIndexKeys as (r: never) => string[]],
        [prefixes.run, runIndexKeys as (r: never) => string[]],
        [prefixes.task, taskIndexKeys as (r: never) => string[]],
      ];
      for (const [prefix, indexKeys] of primaries) {
        for (const [key, record] of await read(prefix)) {
          for (const index of indexKeys(record as never)) expected.set(index, key);
        }
      }
      const actual = new Map<string, string>();
      for (const prefix of INDEX_PREFIXES) {
        for (const [key, value] of await read(prefix)) actual.set(key, value as string);
      }
      for (const [index, key] of expected) {
        const found = actual.get(index);
        if (found === undefined) problems.push(`${key}: index entry ${index} is missing`);
        else if (found !== key) problems.push(`${index}: points at ${found}, expected ${key}`);
      }
      for (const [index, key] of actual) {
        if (!expected.has(index)) problems.push(`${index}: stray index entry (points at ${key})`);
      }
    } finally {
      await snapshot.close();
    }
    return problems;
  }

  // ---------------------------------------------------------------- internals

  #check(): void {
    if (this.#closed) throw new CatalogClosedError(this.dir);
  }

  /** Tells the listeners; called inside the write queue after the change is written. */
  #emit(kind: CatalogChangeKind, written: Omit<CatalogChange, 'kind'> = {}): void {
    for (const listener of this.#listeners) {
      try {
        listener({ kind, ...written });
      } catch {
        // a listener's problem is not the write's
      }
    }
  }

  /** Runs a read-modify-write after every earlier one: writes never interleave. */
  #write<T>(fn: () => Promise<T>): Promise<T> {
    try {
      this.#check();
    } catch (err) {
      return Promise.reject(err);
    }
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #get<T>(key: string): Promise<T | undefined> {
    return (await this.#db.get(key)) as T | undefined;
  }

  async #batch(ops: Op[]): Promise<void> {
    if (ops.length > 0) await this.#db.batch(ops);
  }

  async #values<T>(prefix: string): Promise<T[]> {
    const out: T[] = [];
    for await (const value of this.#db.values({ gte: prefix, lt: prefix + HIGH })) out.push(value as T);
    return out;
  }

  async #keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const key of this.#db.keys({ gte: prefix, lt: prefix + HIGH })) out.push(key);
    return out;
  }

  /**
   * Walks the index entries under `prefix` (`<prefix><time>/...`, value = the primary
   * key) whose time is in [since, until), and fetches the records, all from one snapshot.
   */
  async #listIndexed<T>(
    prefix: string,
    query: { since?: string; until?: string; limit?: number; newestFirst?: boolean },
    filter?: (record: T) => boolean,
  ): Promise<T[]> {
    const limit = v.positiveLimit(query.limit);
    const gte = prefix + (query.since !== undefined ? timeKey(v.isoTime(query.since, 'since')) : '');
    const lt = query.until !== undefined ? prefix + timeKey(v.isoTime(query.until, 'until')) : prefix + HIGH;
    if (query.newestFirst !== undefined && typeof query.newestFirst !== 'boolean') {
      throw new CatalogValidationError('newestFirst', 'newestFirst must be true or false');
    }
    const out: T[] = [];
    if (limit === 0 || gte >= lt) return out;
    const snapshot = this.#db.snapshot();
    const iterator = this.#db.iterator({ gte, lt, reverse: query.newestFirst === true, snapshot });
    try {
      for (;;) {
        const entries = await iterator.nextv(limit === undefined ? 256 : Math.min(256, Math.max(16, limit - out.length)));
        if (entries.length === 0) break;
        const records = await this.#db.getMany(
          entries.map(([, key]) => key as string),
          { snapshot },
        );
        for (const record of records) {
          if (record === undefined || (filter && !filter(record as T))) continue;
          out.push(record as T);
          if (limit !== undefined && out.length >= limit) return out;
        }
      }
      return out;
    } finally {
      await iterator.close();
      await snapshot.close();
    }
  }

  /** A token must not already be an agent's or an admin's. */
  async #assertTokenFree(hash: string): Promise<void> {
    const holder = await this.#get<string>(keys.agentToken(hash));
    if (holder !== undefined) throw new TokenInUseError(`agent ${holder}`);
    if ((await this.#get(keys.adminToken(hash))) !== undefined) throw new TokenInUseError('an admin token');
  }
}

async function checkSchema(db: Level<string, unknown>, dir: string): Promise<void> {
  const schema = await db.get(SCHEMA_KEY);
  if (schema === undefined) {
    for await (const key of db.keys({ limit: 1 })) {
      throw new CatalogOpenError(
        dir,
        `it holds LevelDB data (first key ${JSON.stringify(key)}) but no catalog schema record: ` +
          'it is not a hoard catalog; use an empty directory (the server reads the snapshots back from the bucket at start; docs/repair.md says what is not rebuilt)',
      );
    }
    const fresh: SchemaRecord = { version: SCHEMA_VERSION, createdAt: nowIso() };
    await db.put(SCHEMA_KEY, fresh);
    return;
  }
  const version = (schema as Partial<SchemaRecord> | null)?.version;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw new CatalogOpenError(
      dir,
      `its schema record is damaged (${JSON.stringify(schema)}): move it aside and start the server on an empty data directory (the snapshots are read back from the bucket at start; docs/repair.md says what is not rebuilt)`,
    );
  }
  if (version > SCHEMA_VERSION) throw new CatalogSchemaError(dir, version, SCHEMA_VERSION);
  // Older versions would be migrated here; version 1 is the first.
}

/** Put the record and its index entries; delete the old record's entries that moved. */
function upsertOps<T>(key: string, record: T, old: T | undefined, indexKeys: (r: T) => string[]): Op[] {
  const fresh = indexKeys(record);
  const ops: Op[] = [];
  if (old !== undefined) {
    for (const stale of indexKeys(old)) if (!fresh.includes(stale)) ops.push({ type: 'del', key: stale });
  }
  ops.push({ type: 'put', key, value: record });
  for (const index of fresh) ops.push({ type: 'put', key: index, value: key });
  return ops;
}

/**
 * The newest `limit` records of each group (by `time`, then id order), in their input
 * order; all of them when `limit` is undefined.
 */
function newestPer<T>(records: T[], limit: number | undefined, group: (r: T) => string, time: (r: T) => string): T[] {
  if (limit === undefined) return records;
  const groups = new Map<string, { at: number; index: number }[]>();
  records.forEach((r, index) => {
    const key = group(r);
    let list = groups.get(key);
    if (!list) groups.set(key, (list = []));
    list.push({ at: Date.parse(time(r)), index });
  });
  const keep = new Set<number>();
  for (const list of groups.values()) {
    list.sort((a, b) => b.at - a.at || b.index - a.index);
    for (const { index } of list.slice(0, limit)) keep.add(index);
  }
  return records.filter((_, i) => keep.has(i));
}

function cleanAgent(input: AgentRecord, what: string): AgentRecord {
  const r = v.record(input, what) as unknown as AgentRecord;
  v.isoTime(r.createdAt, `${what}.createdAt`);
  const out: AgentRecord = { name: v.agentName(r.name, `${what}.name`), tokenHash: v.tokenHash(r.tokenHash, `${what}.tokenHash`), createdAt: r.createdAt };
  for (const key of ['revokedAt', 'lastSeenAt'] as const) {
    if (r[key] === undefined) continue;
    v.isoTime(r[key], `${what}.${key}`);
    out[key] = r[key];
  }
  for (const key of ['hostname', 'version'] as const) {
    v.optionalText(r[key], `${what}.${key}`);
    if (r[key] !== undefined) out[key] = r[key];
  }
  return out;
}

function cleanApiToken(input: AdminTokenRecord, what: string): AdminTokenRecord {
  const r = v.record(input, what) as unknown as AdminTokenRecord;
  v.isoTime(r.createdAt, `${what}.createdAt`);
  const out: AdminTokenRecord = { hash: v.tokenHash(r.hash, `${what}.hash`), createdAt: r.createdAt };
  v.optionalText(r.label, `${what}.label`);
  if (r.label !== undefined) out.label = r.label;
  if (r.role !== undefined && v.oneOf(r.role, ['admin', 'operator', 'viewer'] as const, `${what}.role`) !== 'admin') out.role = r.role;
  return out;
}

function cleanJob(input: JobRecord, what: string): JobRecord {
  const r = v.record(input, what) as unknown as JobRecord;
  v.isoTime(r.createdAt, `${what}.createdAt`);
  v.isoTime(r.updatedAt, `${what}.updatedAt`);
  return {
    name: v.jobName(r.name, `${what}.name`),
    ...(r.store !== undefined ? { store: v.text(r.store, `${what}.store`) } : {}),
    ...(r.agent !== undefined ? { agent: v.agentName(r.agent, `${what}.agent`) } : {}),
    sources: [...v.stringList(r.sources, `${what}.sources`)],
    knownSources: [...v.stringList(r.knownSources, `${what}.knownSources`)],
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
  };
}

function cleanPolicy(input: PolicyRecord, what: string): PolicyRecord {
  const r = v.record(input, what) as unknown as PolicyRecord;
  v.isoTime(r.createdAt, `${what}.createdAt`);
  v.isoTime(r.updatedAt, `${what}.updatedAt`);
  return { name: v.jobName(r.name, `${what}.name`), document: v.record(r.document, `${what}.document`), createdAt: r.createdAt, updatedAt: r.updatedAt };
}

function cleanNotifyTarget(input: NotifyTargetRecord, what: string): NotifyTargetRecord {
  const r = v.record(input, what) as unknown as NotifyTargetRecord;
  v.isoTime(r.createdAt, `${what}.createdAt`);
  v.isoTime(r.updatedAt, `${what}.updatedAt`);
  return { name: v.jobName(r.name, `${what}.name`), settings: v.record(r.settings, `${what}.settings`), createdAt: r.createdAt, updatedAt: r.updatedAt };
}

function cleanSnapshot(input: SnapshotRecord, what = 'snapshot'): SnapshotRecord {
  const r = v.record(input, what) as unknown as SnapshotRecord;
  const source = v.record(r.source, `${what}.source`);
  const out: SnapshotRecord = {
    job: v.jobName(r.job, `${what}.job`),
    id: v.snapshotId(r.id, `${what}.id`),
    key: v.text(r.key, `${what}.key`),
    source: { name: v.text(source.name, `${what}.source.name`), kind: v.text(source.kind, `${what}.source.kind`) },
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    logicalBytes: v.count(r.logicalBytes, `${what}.logicalBytes`),
    store: v.hex(r.store, `${what}.store`),
  };
  v.isoTime(r.startedAt, `${what}.startedAt`);
  v.isoTime(r.finishedAt, `${what}.finishedAt`);
  if (r.sessionId !== undefined) out.sessionId = v.recordId(r.sessionId, `${what}.sessionId`);
  return out;
}

function cleanSession(input: SessionInput): SessionRecord {
  const r = v.record(input, 'session') as unknown as SessionInput;
  const started = v.isoTime(r.startedAt, 'session.startedAt');
  const out: SessionRecord = {
    id: v.recordId(r.id, 'session id'),
    agent: v.agentName(r.agent, 'session.agent'),
    job: v.jobName(r.job, 'session.job'),
    source: v.text(r.source, 'session.source'),
    store: v.hex(r.store, 'session.store'),
    startedAt: r.startedAt,
    state: v.oneOf(r.state, SESSION_STATES, 'session.state'),
    bytesRead: v.count(r.bytesRead, 'session.bytesRead'),
    bytesSent: v.count(r.bytesSent, 'session.bytesSent'),
    bytesNew: v.count(r.bytesNew, 'session.bytesNew'),
    bytesStored: v.count(r.bytesStored, 'session.bytesStored'),
    chunks: v.count(r.chunks, 'session.chunks'),
    chunksNew: v.count(r.chunksNew, 'session.chunksNew'),
    dedupRatio: 0,
  };
  // The protocol's dedupRatio rule (packages/protocol messages.ts), which this package cannot import.
  out.dedupRatio = out.bytesRead === 0 ? 1 : Math.min(1000, Math.round((out.bytesRead / Math.max(1, out.bytesNew)) * 100) / 100);
  if (r.finishedAt !== undefined) {
    const finished = v.isoTime(r.finishedAt, 'session.finishedAt');
    out.finishedAt = r.finishedAt;
    out.durationMs = Math.max(0, finished - started);
  }
  if (r.durationMs !== undefined) out.durationMs = v.count(r.durationMs, 'session.durationMs');
  if (r.error !== undefined) out.error = v.text(r.error, 'session.error');
  if (r.snapshot !== undefined) out.snapshot = v.snapshotId(r.snapshot, 'session.snapshot');
  return out;
}

function cleanRun(input: RunRecord): RunRecord {
  const r = v.record(input, 'run') as unknown as RunRecord;
  v.isoTime(r.createdAt, 'run.createdAt');
  if (!Array.isArray(r.sessions)) throw new CatalogValidationError('run.sessions', 'run.sessions must be an array of session ids');
  const out: RunRecord = {
    id: v.recordId(r.id, 'run id'),
    agent: v.agentName(r.agent, 'run.agent'),
    job: v.jobName(r.job, 'run.job'),
    sources: [...v.stringList(r.sources, 'run.sources')],
    state: v.oneOf(r.state, RUN_STATES, 'run.state'),
    createdAt: r.createdAt,
    sessions: r.sessions.map((s, i) => v.recordId(s, `run.sessions[${i}]`)),
  };
  for (const key of ['startedAt', 'finishedAt', 'leaseExpiresAt', 'leaseRenewedAt'] as const) {
    const time = r[key];
    if (time === undefined) continue;
    v.isoTime(time, `run.${key}`);
    out[key] = time;
  }
  if (r.error !== undefined) out.error = v.text(r.error, 'run.error');
  if (r.result !== undefined) {
    let json: string | undefined;
    try {
      json = JSON.stringify(r.result);
    } catch (err) {
      throw new CatalogValidationError('run.result', `run.result must be JSON-serializable: ${(err as Error).message}`);
    }
    if (json === undefined) throw new CatalogValidationError('run.result', 'run.result must be a JSON value');
    out.result = JSON.parse(json) as unknown;
  }
  return out;
}

function cleanTask(input: TaskRecord): TaskRecord {
  const r = v.record(input, 'task') as unknown as TaskRecord;
  v.isoTime(r.startedAt, 'task.startedAt');
  const out: TaskRecord = {
    id: v.recordId(r.id, 'task id'),
    kind: v.oneOf(r.kind, TASK_KINDS, 'task.kind'),
    state: v.oneOf(r.state, TASK_STATES, 'task.state'),
    startedAt: r.startedAt,
  };
  if (r.job !== undefined) out.job = v.jobName(r.job, 'task.job');
  if (r.policy !== undefined) out.policy = v.jobName(r.policy, 'task.policy');
  if (r.finishedAt !== undefined) {
    v.isoTime(r.finishedAt, 'task.finishedAt');
    out.finishedAt = r.finishedAt;
  }
  if (r.summary !== undefined) out.summary = v.text(r.summary, 'task.summary');
  if (r.error !== undefined) out.error = v.text(r.error, 'task.error');
  if (r.result !== undefined) {
    const json = JSON.stringify(r.result);
    if (json === undefined) throw new CatalogValidationError('task.result', 'task.result must be a JSON value');
    out.result = JSON.parse(json) as unknown;
  }
  return out;
}
