/**
 * The server's own state survives the server (invariant 3, docs/design.md; docs/repair.md,
 * "Losing the server's data directory"): agents and their token hashes, API tokens and
 * their roles, jobs, policies and bounded history are kept in the bucket as one object
 * (server-state.ts), and a server on an empty data directory adopts them.
 *
 * How changes reach the bucket: the catalog tells this class after every write that
 * changed something (Catalog.onChange, one place instead of every route handler). A change
 * of agents, API tokens, jobs or policies writes the state within `definitionsDelayMs`;
 * one of runs, sessions or tasks within `historyDelayMs`. Changes in between are one
 * write. A write exports the catalog, and skips the bucket when the JSON's fingerprint is
 * the one the bucket holds already; otherwise it puts a new `server/state-<T>-<r16>`
 * (write-once), and only once that put is durable deletes the older ones: the bucket
 * always holds a complete state. A write that fails is retried after `retryMs`.
 */
import type { Catalog, CatalogChangeKind } from '@hoard/catalog';
import { HoardError } from '@hoard/errors';
import type { Repository } from '@hoard/repository';
import type { Logger } from 'pino';
import {
  decodeStateObject,
  describeState,
  encodeStateObject,
  headerFingerprint,
  listStateKeys,
  nextStateKey,
  serverState,
  stateBytes,
  stateStore,
  stateTime,
  STATE_PREFIX,
  SUPERSEDED_PREFIX,
  ServerStateFormatError,
  type ServerState,
} from './server-state.js';

/** History kept in the bucket per job (runs, tasks; sessions per source): docs/repair.md. */
export const HISTORY_PER_JOB = 50;

export interface StateMirrorOptions {
  /** After a change of agents, API tokens, jobs or policies (default 500 ms). */
  definitionsDelayMs?: number;
  /** After a change of runs, sessions or tasks (default 30 s). */
  historyDelayMs?: number;
  /** After a write that failed (default 30 s). */
  retryMs?: number;
  /** Runs and tasks per job, sessions per source of a job (default HISTORY_PER_JOB). */
  historyPerJob?: number;
}

/** What a start found in the bucket and did with it. */
export interface AdoptResult {
  /** The state object that was adopted. */
  adopted?: { key: string; writtenAt: string; summary: string };
}

const DEFINITIONS = new Set<CatalogChangeKind>(['agent', 'api-token', 'job', 'policy', 'import']);
const HISTORY = new Set<CatalogChangeKind>(['run', 'session', 'task']);
/** meta key: the state object this catalog wrote last. */
const LAST_WRITTEN = 'state-mirror';

/**
 * A new data directory, but the bucket holds a server's state: the start is refused
 * (conflict: exit 2) unless `--adopt-state` says to take it over.
 */
export class ServerStateFoundError extends HoardError {
  override readonly name = 'ServerStateFoundError';
  constructor(message: string, details: Record<string, unknown>) {
    super('conflict', message, details);
  }
}

export class StateMirror {
  private readonly delays: { definitions: number; history: number; retry: number };
  private readonly historyPerJob: number;
  private readonly unsubscribe: () => void;
  private started = false;
  private dirty = false;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = Number.POSITIVE_INFINITY;
  private running: Promise<void> = Promise.resolve();
  /** The newest state key known (ours or found), and the fingerprint of what it holds. */
  private newestKey: string | undefined;
  private newestFingerprint: string | undefined;
  /** Writes done, skipped (unchanged) and failed since start: for tests and logs. */
  readonly counts = { written: 0, unchanged: 0, failed: 0 };

  constructor(
    private readonly repo: Repository,
    private readonly catalog: Catalog,
    private readonly log: Logger,
    options: StateMirrorOptions = {},
  ) {
    this.delays = { definitions: options.definitionsDelayMs ?? 500, history: options.historyDelayMs ?? 30_000, retry: options.retryMs ?? 30_000 };
    this.historyPerJob = options.historyPerJob ?? HISTORY_PER_JOB;
    // Subscribed from the start, so that what the server's start changes is mirrored too.
    this.unsubscribe = catalog.onChange(({ kind }) => this.changed(kind));
  }

  /**
   * At start, before anything else reads or writes the catalog. An empty catalog and a
   * state in the bucket: with `adopt`, the state is imported; without, the start is
   * refused (ServerStateFoundError, naming what was found). A catalog with records never
   * imports; when the bucket's state is not the one it wrote last, that state is copied
   * to `server/superseded-…` before this catalog's state replaces it.
   */
  async adoptAtStart(adopt: boolean): Promise<AdoptResult> {
    const objects = this.repo.objects;
    const keys = await listStateKeys(objects);
    const newest = keys.at(-1);
    if (!(await this.catalog.isEmpty())) {
      if (adopt)
        this.log.warn({ catalog: this.catalog.dir }, '--adopt-state ignored: the catalog holds records, and a catalog that is not empty never imports');
      if (newest === undefined) return {};
      const bytes = await objects.get(newest);
      this.newestKey = newest;
      this.newestFingerprint = headerFingerprint(bytes);
      const last = await this.catalog.getMeta<{ key?: string }>(LAST_WRITTEN);
      if (last?.key !== newest) {
        const copy = SUPERSEDED_PREFIX + newest.slice(STATE_PREFIX.length);
        await objects.putIfAbsent(copy, bytes);
        this.log.warn(
          { state: newest, writtenAt: stateTime(newest), copy, catalog: this.catalog.dir },
          'the bucket holds server state this catalog did not write (a copy of the data directory put back? another server on this bucket?): this catalog replaces it; the bucket keeps it as a copy (docs/repair.md)',
        );
      }
      return {};
    }
    if (newest === undefined) {
      if (adopt) this.log.info('--adopt-state: the bucket holds no server state; starting with an empty catalog');
      return {};
    }
    const { key, state, bytes, damaged } = await this.readNewest(keys);
    const writtenAt = stateTime(key) ?? 'an unknown time';
    const summary = describeState(state);
    const skipped = damaged.length > 0 ? ` (newer state objects that cannot be read were skipped: ${damaged.join('; ')})` : '';
    if (state.repository !== this.repo.config.id) {
      throw new ServerStateFoundError(
        `the server state ${key} in ${this.repo.location} belongs to repository ${state.repository}, but this repository is ${this.repo.config.id}: it was copied from another bucket and is not adopted; remove the server/ objects to start without it (docs/repair.md, "Losing the server's data directory")`,
        { state: key },
      );
    }
    if (!adopt) {
      throw new ServerStateFoundError(
        `${this.repo.location} holds the state of a media server (${key}, written ${writtenAt}: ${summary})${skipped}, but this server's catalog ${this.catalog.dir} is empty (a new data directory): ` +
          'start with --adopt-state to take that state over (agents and API tokens keep their tokens, jobs, policies and history come back); docs/repair.md, "Losing the server\'s data directory", says how to start without it',
        { state: key, writtenAt },
      );
    }
    const counts = await this.catalog.importRecords(state);
    // The next write comes after the newest key, also after newer ones that are damaged.
    this.newestKey = newest;
    this.newestFingerprint = key === newest ? headerFingerprint(bytes) : undefined;
    await this.catalog.putMeta(LAST_WRITTEN, { key });
    this.log.info({ state: key, writtenAt, ...counts }, `server state adopted from the bucket: ${summary}${skipped}`);
    return { adopted: { key, writtenAt, summary } };
  }

  /** The newest state that can be read; the unreadable newer ones are named. */
  private async readNewest(keys: string[]): Promise<{ key: string; state: ServerState; bytes: Uint8Array; damaged: string[] }> {
    const damaged: string[] = [];
    for (const key of [...keys].reverse()) {
      try {
        const bytes = await this.repo.objects.get(key);
        return { key, state: await decodeStateObject(key, bytes, this.repo), bytes, damaged };
      } catch (err) {
        if (!(err instanceof ServerStateFormatError)) throw err;
        damaged.push(err.message);
      }
    }
    throw new ServerStateFormatError(
      keys.at(-1)!,
      `no server state object in ${this.repo.location} can be read, so nothing is adopted (${damaged.join('; ')}); to start without it, remove the server/ objects (docs/repair.md, "Losing the server's data directory")`,
    );
  }

  /** Starts mirroring: writes the state now if the bucket does not hold it yet. */
  start(): void {
    this.started = true;
    this.dirty = true;
    this.schedule(0);
  }

  /** Waits for a pending write (and makes one pending change be written now). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.dueAt = Number.POSITIVE_INFINITY;
    const run = this.running.then(() => this.writeWhileDirty());
    this.running = run.catch(() => undefined);
    await run;
  }

  /** Writes what is pending, then stops listening. */
  async close(): Promise<void> {
    const wasStarted = this.started;
    this.started = false;
    if (wasStarted && this.dirty) await this.flush().catch(() => undefined);
    else await this.running;
    if (this.timer) clearTimeout(this.timer);
    this.unsubscribe();
  }

  private changed(kind: CatalogChangeKind): void {
    const delay = DEFINITIONS.has(kind) ? this.delays.definitions : HISTORY.has(kind) ? this.delays.history : undefined;
    if (delay === undefined) return;
    this.dirty = true;
    if (this.started) this.schedule(delay);
  }

  /** A write within `delay` ms (an earlier one already due stays). */
  private schedule(delay: number): void {
    const at = Date.now() + delay;
    if (at >= this.dueAt) return;
    if (this.timer) clearTimeout(this.timer);
    this.dueAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dueAt = Number.POSITIVE_INFINITY;
      void this.flush().catch(() => undefined);
    }, delay);
    this.timer.unref();
  }

  private async writeWhileDirty(): Promise<void> {
    while (this.dirty && !this.catalog.closed) {
      this.dirty = false;
      try {
        await this.write();
      } catch (err) {
        this.dirty = true;
        this.counts.failed++;
        this.log.warn({ error: (err as Error).message, retryInMs: this.delays.retry }, 'server state not written to the bucket; retrying');
        if (this.started) this.schedule(this.delays.retry);
        throw err;
      }
    }
  }

  private async write(): Promise<void> {
    const records = await this.catalog.exportRecords({ historyPerJob: this.historyPerJob });
    const store = await stateStore(this.repo);
    const { raw, fingerprint } = stateBytes(serverState(records, this.repo.config.id), store);
    if (fingerprint === this.newestFingerprint) {
      this.counts.unchanged++;
      return;
    }
    const objects = this.repo.objects;
    const key = nextStateKey(this.newestKey);
    await objects.putIfAbsent(key, await encodeStateObject(raw, fingerprint, store));
    this.newestKey = key;
    this.newestFingerprint = fingerprint;
    this.counts.written++;
    await this.catalog.putMeta(LAST_WRITTEN, { key });
    // Durable now: the older states go. One that sorts after ours is another writer's.
    const all = await listStateKeys(objects);
    const later = all.filter((k) => k > key);
    if (later.length > 0) this.log.warn({ state: key, later }, 'another process writes server state to this bucket: is a second media server using it?');
    const older = all.filter((k) => k < key);
    if (older.length > 0) await objects.deleteMany(older);
    this.log.debug(
      { state: key, bytes: raw.length, agents: records.agents.length, jobs: records.jobs.length, runs: records.runs.length },
      'server state written to the bucket',
    );
  }
}
