/**
 * S3 Object Lock for a repository (docs/storage.md, "Object Lock"): the repository config
 * says whether the immutable objects are written with a retention date, in which mode and
 * for how many days, so that every writer (the CLI, the media server, a second host)
 * applies the same rule. Control objects that GC, protection and the server's state mirror
 * delete or replace are never locked.
 */
import type { ErrorCode } from '@hoard/errors';
import { mapLimit } from '../map-limit.js';
import type { ObjectLockMode, ObjectStore } from '../store/object-store.js';
import { RepositoryError } from './errors.js';

export interface ObjectLockConfig {
  mode: ObjectLockMode;
  /** Each locked object's retention from its write, in days. */
  days: number;
}

export const OBJECT_LOCK_MODES: readonly ObjectLockMode[] = ['COMPLIANCE', 'GOVERNANCE'];
export const DEFAULT_OBJECT_LOCK_MODE: ObjectLockMode = 'COMPLIANCE';
/** Longest retention accepted (S3 itself allows up to 100 years). */
export const MAX_OBJECT_LOCK_DAYS = 36_500;

/**
 * Immutable objects: packs, index segments, chunk-list pages, manifests, and the config
 * and fingerprint store records (an encrypted repository's keys live there: losing them
 * loses every byte). Everything else (`gc/`, `protected/`, `server/`) is deleted or
 * replaced in normal operation and stays unlocked.
 */
const LOCKED_PREFIXES = ['packs/', 'index/', 'chunklists/', 'snapshots/', 'stores/'];

export function isLockedKey(key: string): boolean {
  return key === 'config' || LOCKED_PREFIXES.some((p) => key.startsWith(p));
}

/** `--object-lock` where it cannot work: a store that cannot lock, or a bucket created without Object Lock. */
export class ObjectLockUnavailableError extends RepositoryError {
  override name = 'ObjectLockUnavailableError';
  override readonly code: ErrorCode = 'invalid_storage';
}

/** Throws unless `value` is a valid lock setting (mode and days); the config decoder and init share it. */
export function validateObjectLock(value: unknown): asserts value is ObjectLockConfig {
  const v = value as Partial<ObjectLockConfig> | null;
  if (v === null || typeof v !== 'object') throw new RepositoryError('object lock must be {"mode": "COMPLIANCE" | "GOVERNANCE", "days": N}');
  if (!OBJECT_LOCK_MODES.includes(v.mode as ObjectLockMode)) {
    throw new RepositoryError(`object lock mode must be COMPLIANCE or GOVERNANCE, got ${JSON.stringify(v.mode)}`);
  }
  if (typeof v.days !== 'number' || !(v.days > 0) || v.days > MAX_OBJECT_LOCK_DAYS) {
    throw new RepositoryError(`object lock retention must be a number of days above 0 and at most ${MAX_OBJECT_LOCK_DAYS}, got ${String(v.days)}`);
  }
}

/** Tells `objects` to lock what the repository writes (init: the bucket was checked). */
export function applyObjectLock(objects: ObjectStore, lock: ObjectLockConfig): void {
  objects.applyRetention?.({ mode: lock.mode, days: lock.days, locks: isLockedKey });
}

/**
 * Opening a repository whose config asks for Object Lock: locks from now on if the store
 * can. A copy in a directory or in a bucket without Object Lock (made with another tool,
 * for a restore elsewhere) stays usable: it is read as usual, and `warn` is told that what
 * is written there is not locked.
 */
export async function applyObjectLockOnOpen(objects: ObjectStore, lock: ObjectLockConfig, warn: (message: string) => void): Promise<void> {
  if (objects.applyRetention && objects.objectLockEnabled) {
    // A user without permission to read the bucket's lock configuration still writes
    // locked objects (init checked the bucket): only a clear "not enabled" turns locking off.
    const enabled = await objects.objectLockEnabled().catch(() => true);
    if (enabled) {
      applyObjectLock(objects, lock);
      return;
    }
  }
  warn(
    `the repository at ${objects.location} was created with S3 Object Lock, but ${objects.applyRetention ? 'its bucket does not have Object Lock enabled' : 'a directory cannot lock objects'} (a copy?): it is read as usual, and nothing written to it is locked`,
  );
}

/** HEAD requests in flight while asking which objects are locked. */
const LOCK_QUERIES = 8;

/**
 * The keys among `keys` that are still under retention, with the date each becomes
 * deletable. Empty for stores without Object Lock.
 */
export async function lockedObjects(objects: ObjectStore, keys: readonly string[]): Promise<Map<string, Date>> {
  const out = new Map<string, Date>();
  const lockedUntil = objects.lockedUntil?.bind(objects);
  if (!lockedUntil || keys.length === 0) return out;
  const dates = await mapLimit([...keys], LOCK_QUERIES, (key) => lockedUntil(key));
  keys.forEach((key, i) => {
    const until = dates[i];
    if (until) out.set(key, until);
  });
  return out;
}
