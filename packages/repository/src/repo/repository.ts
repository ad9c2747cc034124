/**
 * A hoard repository on an object store: its config, its fingerprint stores and its
 * snapshots. Backup, restore, verify and stats work on an open Repository (backup.ts,
 * restore.ts, verify.ts, stats.ts). Layout of every object: docs/format.md.
 */
import { generateSecrets, unwrapSecrets, wrapSecrets, type StoreSecrets } from '../crypto/store-secrets.js';
import { compactTime, decodeManifest, validateJobName, type Manifest, type SnapshotMeta } from '../snapshot/manifest.js';
import { listAll, type ObjectStore } from '../store/object-store.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { ObjectFormatError } from '../format-error.js';
import { type BlobCompression, DEFAULT_COMPRESSION, formatCompression, parseCompression } from '../blob/compression.js';
import { mapConcurrent } from './concurrency.js';
import {
  MetadataDamagedError,
  PassphraseRequiredError,
  RepositoryExistsError,
  RepositoryNotFoundError,
  SnapshotNotFoundError,
  StoreScopeError,
  UnknownStoreError,
} from './errors.js';
import { FingerprintStore, type StorePairing } from './fingerprint-store.js';
import {
  CONFIG_KEY,
  STORES_PREFIX,
  decodeConfig,
  decodeStoreRecord,
  describeScope,
  encodeRecord,
  newId,
  storeKey,
  validatePackBytes,
  validateStoreName,
  type RepositoryConfig,
  type StoreRecord,
  type StoreScope,
} from './records.js';
import { DEFAULT_PACK_BYTES } from '../pack/pack-writer.js';
import { applyObjectLock, applyObjectLockOnOpen, lockedObjects, ObjectLockUnavailableError, validateObjectLock, type ObjectLockConfig } from './object-lock.js';
import { encodeProtection, PROTECTED_PREFIX, protectionKey, SnapshotProtectedError, snapshotKeyOfProtection } from './protection.js';

export const GLOBAL_STORE = 'global';
export const SNAPSHOTS_PREFIX = 'snapshots/';

export interface InitOptions {
  /** Encrypt the repository: every store gets random secrets wrapped with this passphrase. */
  passphrase?: string;
  packBytes?: number;
  /** scrypt cost for key files (tests lower it; the default is SCRYPT_DEFAULTS). */
  scryptCost?: { N: number; r: number; p: number };
  /**
   * Lock the immutable objects (S3 Object Lock): the bucket must have been created with
   * Object Lock enabled. Recorded in the config, so every writer applies it.
   */
  objectLock?: ObjectLockConfig;
  /** How the stores of the repository compress new blobs (default zstd:3); recorded in the config and in each store's record. */
  compression?: BlobCompression;
  /**
   * An encrypted repository's global store shares these with a store of another repository
   * (`hoard init --fingerprints-from`): copies between the two then read only what the
   * target lacks (sync.md, "Paired stores").
   */
  globalPairing?: StorePairing;
}

export interface OpenOptions {
  /** Needed to back up to, restore from or read data of an encrypted repository. */
  passphrase?: string;
  /**
   * Told about damage that reading worked around (a damaged index segment whose packs are
   * read from their trailers). Default: process.emitWarning.
   */
  onWarning?: (message: string) => void;
  scryptCost?: { N: number; r: number; p: number };
}

export interface SnapshotInfo {
  /** Short id: the 16 hex digits that end the manifest's key. */
  id: string;
  key: string;
  meta: SnapshotMeta;
}

export class Repository {
  private readonly opened = new Map<string, Promise<FingerprintStore>>();

  private constructor(
    readonly objects: ObjectStore,
    readonly config: RepositoryConfig,
    private readonly options: OpenOptions,
  ) {}

  get location(): string {
    return this.objects.location;
  }

  get encrypted(): boolean {
    return this.config.encrypted;
  }

  static async init(objects: ObjectStore, options: InitOptions = {}): Promise<Repository> {
    const packBytes = options.packBytes ?? DEFAULT_PACK_BYTES;
    validatePackBytes(packBytes);
    if (await objects.head(CONFIG_KEY)) throw new RepositoryExistsError(objects.location);
    if (options.objectLock !== undefined) await checkObjectLockable(objects, options.objectLock);
    const config: RepositoryConfig = {
      format: 'hoard-repository',
      version: 1,
      id: newId(),
      createdAt: new Date().toISOString(),
      encrypted: options.passphrase !== undefined,
      packBytes,
      compression: formatCompression(options.compression ?? DEFAULT_COMPRESSION),
      ...(options.objectLock ? { objectLock: { mode: options.objectLock.mode, days: options.objectLock.days } } : {}),
    };
    if (config.objectLock) applyObjectLock(objects, config.objectLock);
    const repo = new Repository(objects, config, options);
    // The global store first: a config without it would be a repository nobody can use.
    if (options.globalPairing && !config.encrypted)
      throw new StoreScopeError('fingerprints are shared between encrypted repositories only: give a passphrase to pair the new repository');
    await repo.createStore(GLOBAL_STORE, { kind: 'global' }, { pairing: options.globalPairing });
    if (!(await objects.putIfAbsent(CONFIG_KEY, encodeRecord(config)))) throw new RepositoryExistsError(objects.location);
    return repo;
  }

  static async open(objects: ObjectStore, options: OpenOptions = {}): Promise<Repository> {
    const info = await objects.head(CONFIG_KEY);
    if (!info) throw new RepositoryNotFoundError(objects.location);
    const config = decodeConfig(await objects.get(CONFIG_KEY));
    // Every writer locks alike: the config, not the writer's options, says so.
    if (config.objectLock) await applyObjectLockOnOpen(objects, config.objectLock, options.onWarning ?? ((message) => process.emitWarning(message)));
    return new Repository(objects, config, options);
  }

  /**
   * The keys among `keys` that Object Lock still keeps from being deleted, with the date
   * each becomes deletable (empty when the repository does not lock).
   */
  async lockedObjects(keys: readonly string[]): Promise<Map<string, Date>> {
    return this.config.objectLock ? lockedObjects(this.objects, keys) : new Map();
  }

  /** The same repository with a passphrase, without reading its config again. */
  withPassphrase(passphrase: string | undefined): Repository {
    return new Repository(this.objects, this.config, { ...this.options, passphrase });
  }

  async stores(): Promise<StoreRecord[]> {
    const records: StoreRecord[] = [];
    for await (const info of listAll(this.objects, STORES_PREFIX)) {
      records.push(decodeStoreRecord(info.key, await this.objects.get(info.key)));
    }
    return records;
  }

  async storeRecord(name: string): Promise<StoreRecord | undefined> {
    const key = storeKey(name);
    if (!(await this.objects.head(key))) return undefined;
    return decodeStoreRecord(key, await this.objects.get(key));
  }

  /**
   * Creates a store (fails if the name is taken). Its secrets are new and its own. Its
   * compression: `options.compression`, else the repository's, else zstd:3; recorded in
   * its record for good (a record is never rewritten).
   */
  /** `pairing`: share a store's fingerprint key and chunker seed (encrypted repositories; sync.md, "Paired stores"). */
  async createStore(name: string, scope: StoreScope, options: { compression?: BlobCompression; pairing?: StorePairing } = {}): Promise<StoreRecord> {
    validateStoreName(name);
    if (scope.kind === 'job') validateJobName(scope.job);
    const compression = options.compression ?? parseCompression(this.config.compression ?? '') ?? DEFAULT_COMPRESSION;
    const record: StoreRecord = { version: 1, name, id: newId(), scope, createdAt: new Date().toISOString(), compression: formatCompression(compression) };
    if (this.config.encrypted) {
      const secrets = generateSecrets();
      const paired = options.pairing ? { ...secrets, fingerprintKey: options.pairing.fingerprintKey, chunkerSeed: options.pairing.chunkerSeed } : secrets;
      record.keyFile = await wrapSecrets(paired, this.requirePassphrase(), this.options.scryptCost);
    }
    if (!(await this.objects.putIfAbsent(storeKey(name), encodeRecord(record)))) {
      throw new StoreScopeError(`a fingerprint store named ${name} already exists`);
    }
    return record;
  }

  /**
   * The store a backup of `job` dedups against. With `name`: that store, which must be
   * global or bound to this job; a name that does not exist yet creates a store bound to
   * the job. Without: the store bound to the job if there is one, else `global`.
   */
  async storeForJob(job: string, name?: string): Promise<FingerprintStore> {
    validateJobName(job);
    if (name !== undefined) {
      const record = (await this.storeRecord(name)) ?? (await this.createStore(name, { kind: 'job', job }));
      if (record.scope.kind === 'job' && record.scope.job !== job) {
        throw new StoreScopeError(
          `fingerprint store ${name} belongs to ${describeScope(record.scope)}; job ${job} cannot use it (use the global store or a store of its own)`,
        );
      }
      return this.openStore(record);
    }
    const records = await this.stores();
    const bound = records.find((r) => r.scope.kind === 'job' && r.scope.job === job);
    const record = bound ?? records.find((r) => r.name === GLOBAL_STORE);
    if (!record) throw new UnknownStoreError(`the repository at ${this.location} has no global store and job ${job} has none of its own: give --store NAME`);
    return this.openStore(record);
  }

  /**
   * The store a snapshot names (by id). Another store's damaged record does not stand in
   * the way; a record that is missing or damaged is MetadataDamagedError (the snapshot
   * names a store the bucket must have).
   */
  async storeById(id: string): Promise<FingerprintStore> {
    const damaged: ObjectFormatError[] = [];
    const records: StoreRecord[] = [];
    for await (const info of listAll(this.objects, STORES_PREFIX)) {
      try {
        records.push(decodeStoreRecord(info.key, await this.objects.get(info.key)));
      } catch (err) {
        if (err instanceof ObjectFormatError) damaged.push(err);
        else if (!(err instanceof ObjectNotFoundError)) throw err;
      }
    }
    const record = records.find((r) => r.id === id);
    if (!record) {
      const why =
        damaged.length > 0
          ? `; damaged: ${damaged.map((e) => e.message).join('; ')}`
          : ' (no stores/<name> record has that id: one is missing, or damaged so that its id changed)';
      throw new MetadataDamagedError(
        'fingerprint store record',
        damaged[0]?.object ?? STORES_PREFIX,
        'missing or damaged',
        `fingerprint store ${id}, which the snapshot names, has no readable record in ${this.location}${why}`,
      );
    }
    return this.openStore(record);
  }

  async storeByName(name: string): Promise<FingerprintStore> {
    const record = await this.storeRecord(name);
    if (!record) throw new UnknownStoreError(`no fingerprint store named ${name} in ${this.location}`);
    return this.openStore(record);
  }

  private openStore(record: StoreRecord): Promise<FingerprintStore> {
    let store = this.opened.get(record.id);
    if (!store) {
      store = (async () => {
        let secrets: StoreSecrets | undefined;
        if (record.keyFile) secrets = await unwrapSecrets(record.keyFile, this.requirePassphrase());
        return FingerprintStore.open(this.objects, record, secrets, { onWarning: this.options.onWarning });
      })();
      store.catch(() => this.opened.delete(record.id));
      this.opened.set(record.id, store);
    }
    return store;
  }

  private requirePassphrase(): string {
    if (this.options.passphrase === undefined) throw new PassphraseRequiredError(this.location);
    return this.options.passphrase;
  }

  /** Manifest keys of one job or of all, oldest first (keys sort by finish time). */
  private async snapshotKeys(job?: string): Promise<string[]> {
    if (job !== undefined) validateJobName(job);
    const keys: string[] = [];
    for await (const info of listAll(this.objects, job === undefined ? SNAPSHOTS_PREFIX : `${SNAPSHOTS_PREFIX}${job}/`)) keys.push(info.key);
    return keys;
  }

  /**
   * The snapshot under `key`, the format error that makes it unreadable, or undefined if
   * it was forgotten since the listing (a prune running meanwhile).
   */
  private async snapshotAt(key: string): Promise<SnapshotInfo | ObjectFormatError | undefined> {
    try {
      return { id: snapshotId(key), key, meta: (await this.manifest(key)).meta };
    } catch (err) {
      if (err instanceof ObjectFormatError) return err;
      if (err instanceof ObjectNotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Snapshots, newest first; of one job or of all. A damaged manifest does not hide the
   * others (nor block the next backup): it is left out and handed to `onDamaged`.
   */
  async snapshots(job?: string, options: { onDamaged?: (key: string, error: ObjectFormatError) => void } = {}): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    await mapConcurrent(
      await this.snapshotKeys(job),
      16,
      (key) => this.snapshotAt(key),
      (info, key) => {
        if (info instanceof ObjectFormatError) options.onDamaged?.(key, info);
        else if (info) out.push(info);
      },
    );
    return out.sort(newestFirst);
  }

  /**
   * The newest snapshot of `job` that `match` accepts, reading manifests from the newest
   * back and stopping at the first match: a backup looks up its parent this way without
   * reading the job's whole history.
   */
  async latestSnapshot(job: string, match: (info: SnapshotInfo) => boolean): Promise<SnapshotInfo | undefined> {
    let best: SnapshotInfo | undefined;
    for (const key of (await this.snapshotKeys(job)).reverse()) {
      // Keys order by finish time to the second; within that second compare the manifests.
      if (best && finishSecond(key) !== finishSecond(best.key)) break;
      const info = await this.snapshotAt(key);
      if (info && !(info instanceof ObjectFormatError) && match(info) && (!best || newestFirst(info, best) < 0)) best = info;
    }
    return best;
  }

  async manifest(key: string): Promise<Manifest> {
    return decodeManifest(key, await this.objects.get(key));
  }

  /**
   * One snapshot of `job`: by id (the 16 hex digits, any unique prefix of at least 4, or
   * the whole `<time>-<hex>` name), by time (the newest that started at or before `at`),
   * or the newest.
   */
  async findSnapshot(job: string, by: { id?: string; at?: Date; source?: string } = {}): Promise<SnapshotInfo> {
    if (by.id !== undefined) return this.findSnapshotById(job, by.id);
    const damaged: ObjectFormatError[] = [];
    let all = await this.snapshots(job, { onDamaged: (_key, error) => damaged.push(error) });
    // A damaged manifest may be the snapshot asked for: that is damage (exit 3), never "not
    // found", and never silently an older snapshot instead.
    const damage = (what: string, candidates: ObjectFormatError[]): MetadataDamagedError =>
      new MetadataDamagedError(
        'snapshot manifest',
        candidates[0].object,
        candidates[0].reason,
        `${what} of job ${job}: ${candidates.map((e) => e.message).join('; ')}. Restore another snapshot by id (\`hoard snapshots --repo ${this.location} --job ${job}\` lists the readable ones); \`hoard repair\` lists what is lost`,
      );
    if (all.length === 0) {
      if (damaged.length > 0) throw damage(`no readable snapshot, ${damaged.length} damaged manifest(s)`, damaged);
      throw new SnapshotNotFoundError(`job ${job} has no snapshots in ${this.location}`);
    }
    if (by.source !== undefined) {
      const sources = [...new Set(all.map((s) => s.meta.source.name))];
      all = all.filter((s) => s.meta.source.name === by.source);
      if (all.length === 0) {
        if (damaged.length > 0) throw damage(`no readable snapshot of source ${by.source}, and damaged manifest(s) that may be`, damaged);
        throw new SnapshotNotFoundError(`job ${job} has no snapshots of source ${by.source}; its sources: ${sources.join(', ')}`);
      }
    }
    const newerDamaged = (match: SnapshotInfo, until?: string): ObjectFormatError[] =>
      damaged.filter((e) => finishSecond(e.object) >= finishSecond(match.key) && (until === undefined || finishSecond(e.object).slice(-16) <= until));
    if (by.at !== undefined) {
      const at = by.at.getTime();
      const match = all.find((s) => Date.parse(s.meta.startedAt) <= at);
      if (!match) {
        if (damaged.length > 0) throw damage(`no readable snapshot at or before ${by.at.toISOString()}, and damaged manifest(s) that may be`, damaged);
        const first = all[all.length - 1];
        throw new SnapshotNotFoundError(`job ${job} has no snapshot at or before ${by.at.toISOString()}: the first one started at ${first.meta.startedAt}`);
      }
      // A damaged manifest that finished after the match but by `at` started by `at` too.
      const closer = newerDamaged(match, compactTime(by.at.toISOString()));
      if (closer.length > 0) throw damage(`the snapshot at ${by.at.toISOString()} may be a damaged one`, closer);
      return match;
    }
    const newer = newerDamaged(all[0]);
    if (newer.length > 0) throw damage('the newest snapshot is damaged', newer);
    return all[0];
  }

  /** Marks a snapshot as exempt from retention (idempotent). */
  async protectSnapshot(key: string): Promise<void> {
    await this.objects.putIfAbsent(protectionKey(key), encodeProtection());
  }

  async unprotectSnapshot(key: string): Promise<void> {
    await this.objects.deleteMany([protectionKey(key)]);
  }

  /** Manifest keys of the protected snapshots, of one job or of all. */
  async protectedSnapshots(job?: string): Promise<Set<string>> {
    if (job !== undefined) validateJobName(job);
    const out = new Set<string>();
    for await (const info of listAll(this.objects, job === undefined ? PROTECTED_PREFIX : `${PROTECTED_PREFIX}${job}/`))
      out.add(snapshotKeyOfProtection(info.key));
    return out;
  }

  /**
   * Forgets snapshots: deletes their manifests. What only they referenced (chunk-list
   * pages, blobs) becomes garbage for `collectGarbage`. Protected snapshots are refused
   * (SnapshotProtectedError) and nothing is deleted then.
   */
  async forgetSnapshots(keys: readonly string[]): Promise<void> {
    for (const key of keys) protectionKey(key); // checks the shape
    const protectedKeys = await this.protectedSnapshots();
    const refused = keys.filter((k) => protectedKeys.has(k));
    if (refused.length > 0) throw new SnapshotProtectedError(refused);
    if (keys.length > 0) await this.objects.deleteMany([...keys]);
  }

  /** Matches on the keys alone, then reads the one manifest (a damaged one is reported as such). */
  private async findSnapshotById(job: string, text: string): Promise<SnapshotInfo> {
    const keys = await this.snapshotKeys(job);
    if (keys.length === 0) throw new SnapshotNotFoundError(`job ${job} has no snapshots in ${this.location}`);
    // Ids are hex, case-insensitive; the whole name compares case-insensitively too (its
    // time is `...T...Z`).
    const id = text.toLowerCase();
    const matches = keys.filter((key) => snapshotId(key) === id || key.toLowerCase().endsWith(`/${id}`) || (id.length >= 4 && snapshotId(key).startsWith(id)));
    if (matches.length > 1) throw new SnapshotNotFoundError(`snapshot id ${text} is ambiguous in job ${job}: ${matches.map(snapshotId).join(', ')}`);
    if (matches.length === 0) throw new SnapshotNotFoundError(`job ${job} has no snapshot ${text} (\`hoard snapshots --job ${job}\` lists them)`);
    const info = await this.snapshotAt(matches[0]);
    if (info instanceof ObjectFormatError) throw info;
    if (!info) throw new SnapshotNotFoundError(`snapshot ${text} of job ${job} was just forgotten`);
    return info;
  }
}

/** Refuses Object Lock where it cannot work, before anything is written. */
async function checkObjectLockable(objects: ObjectStore, lock: ObjectLockConfig): Promise<void> {
  validateObjectLock(lock);
  if (!objects.applyRetention || !objects.objectLockEnabled) {
    throw new ObjectLockUnavailableError(
      `${objects.location} cannot lock objects: Object Lock needs an S3 bucket (s3://bucket/prefix) created with Object Lock enabled`,
    );
  }
  if (!(await objects.objectLockEnabled())) {
    throw new ObjectLockUnavailableError(
      `bucket of ${objects.location} does not have Object Lock enabled, and S3 enables it only when a bucket is created: give hoard init --object-lock a new bucket name (it creates the bucket with Object Lock), or enable Object Lock on this bucket where the provider allows it`,
    );
  }
}

const newestFirst = (a: SnapshotInfo, b: SnapshotInfo): number => b.meta.finishedAt.localeCompare(a.meta.finishedAt) || b.key.localeCompare(a.key);
const finishSecond = (key: string): string => key.slice(0, key.lastIndexOf('-'));

export function snapshotId(key: string): string {
  return key.slice(key.lastIndexOf('-') + 1);
}
