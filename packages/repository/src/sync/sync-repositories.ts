/**
 * `hoard sync`: copies snapshots of one repository into another (a second copy off-site,
 * docs/sync.md). Anchors: restic `copy`, kopia `repository sync-to`, PBS sync jobs.
 *
 *   1. plan: the source's snapshots (of the jobs asked for) that the target has no copy
 *      of, oldest first. A copy is recognised by its manifest's `origin` (the repository
 *      id and manifest key where the snapshot was first written), so a second sync copies
 *      nothing, and A -> B, A -> C, B -> C never copies a snapshot twice into C.
 *   2. copy each (copy-snapshot.ts): only the blobs the target lacks are written, through
 *      the target's own store writer, and the manifest last (invariant 1). Each snapshot
 *      commits on its own, so a sync that dies leaves the target consistent, and the next
 *      one starts from the first snapshot without a copy.
 *   3. verify the copies, read back from the target (verify-copies.ts).
 *
 * Retention of the target is its own: `hoard prune` (and `hoard gc`) against it.
 */
import type { ErrorCode } from '@hoard/errors';
import type { DecodePool } from '../restore/decode-pool.js';
import { RepositoryError, SnapshotNotFoundError, StoreScopeError } from '../repo/errors.js';
import type { FingerprintStore } from '../repo/fingerprint-store.js';
import { describeScope } from '../repo/records.js';
import type { Repository, SnapshotInfo } from '../repo/repository.js';
import { validateJobName } from '../snapshot/manifest.js';
import type { ObjectFormatError } from '../format-error.js';
import { copySnapshot, type CopiedSnapshot, type CopyProgress } from './copy-snapshot.js';
import { verifyCopies, type CopyVerification } from './verify-copies.js';

/** A sync that cannot run as asked (the same repository twice, an encrypted source into a plain target). */
export class SyncRefusedError extends RepositoryError {
  override name = 'SyncRefusedError';
  override readonly code: ErrorCode = 'invalid_arguments';
}

export interface SyncOptions {
  /** Only these jobs (default: every job of the source). */
  jobs?: readonly string[];
  /** Only these snapshots: ids, unique id prefixes of at least 4 hex digits, or `<time>-<hex>` names (an empty list: none). */
  snapshots?: readonly string[];
  /** Plan only: list what would be copied; nothing is written. */
  dryRun?: boolean;
  /** After copying, read every copied snapshot's data back from the target and check it. */
  verifyData?: boolean;
  /** Allow copying an encrypted repository's snapshots into an unencrypted one (they would be stored in the clear). */
  allowUnencryptedTarget?: boolean;
  onEvent?: (event: SyncEvent) => void;
  decodePool?: DecodePool;
}

export type SyncEvent =
  | { kind: 'planned'; toCopy: number; present: number }
  | { kind: 'copying'; snapshot: SnapshotInfo; index: number; total: number }
  | { kind: 'progress'; snapshot: SnapshotInfo; progress: CopyProgress }
  | { kind: 'copied'; copy: CopiedSnapshot }
  | { kind: 'verifying'; done: number; total: number };

export interface SyncEntry {
  job: string;
  /** Source manifest key. */
  source: string;
  /** Target manifest key: the copy (made now or before); null in a dry run for one to copy. */
  target: string | null;
  status: 'copied' | 'present' | 'to-copy';
  logicalBytes: number;
}

export interface SyncReport {
  from: string;
  to: string;
  dryRun: boolean;
  snapshots: SyncEntry[];
  copied: number;
  present: number;
  /** Bytes read from the source's packs, blobs written to the target, their raw and stored bytes. */
  bytesFetched: number;
  blobsWritten: number;
  bytesNew: number;
  bytesStored: number;
  /** Source manifests that could not be read (not copied). */
  damaged: { key: string; problem: string }[];
  /** Undefined in a dry run. */
  verification?: CopyVerification;
  /** Every asked-for snapshot is in the target and every copy checked out. */
  ok: boolean;
}

/** What identifies a snapshot across copies: where it was first written. */
export function snapshotIdentity(repositoryId: string, info: SnapshotInfo): string {
  const origin = info.meta.origin;
  return origin ? `${origin.repository}/${origin.snapshot}` : `${repositoryId}/${info.key}`;
}

export async function syncRepositories(source: Repository, target: Repository, options: SyncOptions = {}): Promise<SyncReport> {
  if (source.config.id === target.config.id) {
    throw new SyncRefusedError(`--from ${source.location} and --to ${target.location} are the same repository (id ${source.config.id}): give a different --to`);
  }
  if (source.encrypted && !target.encrypted && !options.allowUnencryptedTarget) {
    throw new SyncRefusedError(
      `${source.location} is encrypted and ${target.location} is not: the copies would be stored unencrypted; use an encrypted target (hoard init --encrypt), or --allow-unencrypted-target`,
    );
  }
  const jobs = options.jobs && options.jobs.length > 0 ? [...new Set(options.jobs)] : undefined;
  for (const job of jobs ?? []) validateJobName(job);
  const damaged: { key: string; problem: string }[] = [];
  const onDamaged = (key: string, error: ObjectFormatError) => damaged.push({ key, problem: error.message });
  const sourceSnapshots = await listSnapshots(source, jobs, onDamaged);
  if (jobs) {
    const empty = jobs.filter((job) => !sourceSnapshots.some((s) => s.meta.job === job));
    if (empty.length > 0 && damaged.length === 0) throw new SnapshotNotFoundError(`${source.location} has no snapshots of job ${empty.join(', ')}`);
  }
  const selected = selectSnapshots(sourceSnapshots, options.snapshots).sort(oldestFirst);
  const targetSnapshots = await listSnapshots(target, [...new Set(selected.map((s) => s.meta.job))], () => undefined);
  /** identity -> target manifest key. */
  const copies = new Map<string, string>();
  for (const t of targetSnapshots) copies.set(snapshotIdentity(target.config.id, t), t.key);
  const byKey = new Map(sourceSnapshots.map((s) => [s.key, s]));
  const identity = (s: SnapshotInfo) => snapshotIdentity(source.config.id, s);

  const report: SyncReport = {
    from: source.location,
    to: target.location,
    dryRun: options.dryRun === true,
    snapshots: [],
    copied: 0,
    present: 0,
    bytesFetched: 0,
    blobsWritten: 0,
    bytesNew: 0,
    bytesStored: 0,
    damaged,
    ok: damaged.length === 0,
  };
  const toCopy = selected.filter((s) => !copies.has(identity(s)));
  options.onEvent?.({ kind: 'planned', toCopy: toCopy.length, present: selected.length - toCopy.length });
  const stores = new Map<string, Promise<FingerprintStore>>();
  const made: SnapshotInfo[] = [];
  let index = 0;
  for (const snapshot of selected) {
    const entry: SyncEntry = {
      job: snapshot.meta.job,
      source: snapshot.key,
      target: copies.get(identity(snapshot)) ?? null,
      status: 'present',
      logicalBytes: snapshot.meta.logicalBytes,
    };
    report.snapshots.push(entry);
    if (entry.target !== null) {
      report.present++;
      continue;
    }
    entry.status = 'to-copy';
    if (options.dryRun) continue;
    options.onEvent?.({ kind: 'copying', snapshot, index: index++, total: toCopy.length });
    const sourceStore = await source.storeById(snapshot.meta.store);
    let targetStore = stores.get(`${snapshot.meta.job}\0${sourceStore.name}`);
    if (!targetStore) {
      targetStore = targetStoreFor(target, snapshot.meta.job, sourceStore);
      stores.set(`${snapshot.meta.job}\0${sourceStore.name}`, targetStore);
    }
    const parentInfo = snapshot.meta.parent ? byKey.get(snapshot.meta.parent) : undefined;
    const copy = await copySnapshot(source, target, snapshot, {
      targetStore: await targetStore,
      parent: parentInfo ? (copies.get(identity(parentInfo)) ?? null) : null,
      decodePool: options.decodePool,
      onProgress: (progress) => options.onEvent?.({ kind: 'progress', snapshot, progress }),
    });
    copies.set(identity(snapshot), copy.target.key);
    made.push(copy.target);
    entry.target = copy.target.key;
    entry.status = 'copied';
    report.copied++;
    report.bytesFetched += copy.bytesFetched;
    report.blobsWritten += copy.blobsWritten;
    report.bytesNew += copy.bytesNew;
    report.bytesStored += copy.bytesStored;
    options.onEvent?.({ kind: 'copied', copy });
  }
  if (!options.dryRun) {
    report.verification = await verifyCopies(target, made, {
      readData: options.verifyData,
      onProgress: (done, total) => options.onEvent?.({ kind: 'verifying', done, total }),
    });
    if (!report.verification.ok) report.ok = false;
  }
  return report;
}

async function listSnapshots(
  repo: Repository,
  jobs: readonly string[] | undefined,
  onDamaged: (key: string, error: ObjectFormatError) => void,
): Promise<SnapshotInfo[]> {
  if (!jobs) return repo.snapshots(undefined, { onDamaged });
  const out: SnapshotInfo[] = [];
  for (const job of jobs) out.push(...(await repo.snapshots(job, { onDamaged })));
  return out;
}

/** The snapshots `ids` name (all without a list): each id must match exactly one. */
function selectSnapshots(all: SnapshotInfo[], ids: readonly string[] | undefined): SnapshotInfo[] {
  if (ids === undefined) return [...all];
  const chosen = new Set<SnapshotInfo>();
  for (const text of ids) {
    const id = text.toLowerCase();
    const matches = all.filter(
      (s) => s.id === id || s.key.toLowerCase().endsWith(`/${id}`) || (id.length >= 4 && /^[0-9a-f]+$/.test(id) && s.id.startsWith(id)),
    );
    if (matches.length === 0)
      throw new SnapshotNotFoundError(`--snapshot ${text}: no snapshot of the source has that id (\`hoard snapshots --repo <from>\` lists them)`);
    if (matches.length > 1)
      throw new SnapshotNotFoundError(`--snapshot ${text} is ambiguous: ${matches.map((s) => `${s.meta.job}/${s.id}`).join(', ')}; give more digits`);
    chosen.add(matches[0]);
  }
  return [...chosen];
}

/**
 * The target store a job's copies go into: the store of the same name, created with the
 * source store's scope when the target has none. It must be one the job may use there too
 * (global, or bound to this job: invariant 5). A store created here in an encrypted target
 * is paired with the source's (same fingerprint key and chunker seed, its own data key), so
 * later copies read only the blobs it lacks.
 */
async function targetStoreFor(target: Repository, job: string, sourceStore: FingerprintStore): Promise<FingerprintStore> {
  const sourceRecord = sourceStore.record;
  let record = await target.storeRecord(sourceRecord.name);
  if (!record) {
    try {
      await target.createStore(sourceRecord.name, sourceRecord.scope, { pairing: target.encrypted ? sourceStore.pairing() : undefined });
    } catch (err) {
      if (!(err instanceof StoreScopeError)) throw err; // created meanwhile by another writer
    }
    record = await target.storeRecord(sourceRecord.name);
  }
  if (!record) throw new StoreScopeError(`fingerprint store ${sourceRecord.name} could not be created in ${target.location}`);
  if (record.scope.kind === 'job' && record.scope.job !== job) {
    throw new StoreScopeError(
      `fingerprint store ${record.name} of ${target.location} belongs to ${describeScope(record.scope)}; job ${job}'s copies cannot go into it (rename or remove that store in the target)`,
    );
  }
  return target.storeByName(record.name);
}

const oldestFirst = (a: SnapshotInfo, b: SnapshotInfo): number => a.meta.finishedAt.localeCompare(b.meta.finishedAt) || a.key.localeCompare(b.key);
