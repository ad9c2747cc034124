/**
 * S3 Object Lock for data that outlives its lock (docs/storage.md, "Objects referenced
 * longer than their lock"): a pack or chunk-list page is locked for the repository's days
 * from its write, but a snapshot kept for years keeps referencing it. GC, which knows what
 * is referenced, extends the lock of every referenced pack and page (PutObjectRetention) to
 * `now + days`, at most every quarter of the lock period (when `gc/lock-extension`, an
 * unlocked control object, says the last pass is older than that). So right after a pass
 * every referenced pack and page is locked for at least three quarters of the period.
 *
 * Manifests and index segments are never extended: a manifest's lock is the window in which
 * prune cannot forget it (extending it would keep every snapshot for ever), and a segment
 * that stayed locked would keep GC from dropping the dead packs it lists; a lost segment is
 * rebuilt from the pack trailers (`hoard repair`).
 */
import { mapLimit } from '../map-limit.js';
import type { ObjectLockConfig } from '../repo/object-lock.js';
import type { ObjectStore } from '../store/object-store.js';
import { ObjectNotFoundError } from '../store/errors.js';

export const LOCK_EXTENSION_KEY = 'gc/lock-extension';
const DAY_MS = 24 * 3600_000;
/** Retention requests in flight. */
const EXTEND_CONCURRENCY = 8;

interface LockExtensionRecord {
  version: 1;
  extendedAt: string;
  until: string;
}

/** When the last extension pass ran, or undefined (never, or a record this build cannot read). */
async function lastPass(objects: ObjectStore): Promise<number | undefined> {
  try {
    const record = JSON.parse(Buffer.from(await objects.get(LOCK_EXTENSION_KEY)).toString('utf8')) as Partial<LockExtensionRecord>;
    const at = typeof record.extendedAt === 'string' ? Date.parse(record.extendedAt) : Number.NaN;
    return Number.isFinite(at) ? at : undefined;
  } catch (err) {
    if (err instanceof ObjectNotFoundError || err instanceof SyntaxError) return undefined;
    throw err;
  }
}

/**
 * Extends the locks of `referenced` (keys with their write times) when a pass is due;
 * returns how many locks were extended (0 when no pass was due or the store cannot).
 */
export async function extendLocks(objects: ObjectStore, lock: ObjectLockConfig, referenced: { key: string; modified?: Date }[]): Promise<number> {
  const extend = objects.extendLock?.bind(objects);
  if (!extend) return 0;
  // Locks are the object store's wall clock, not a test's GC clock.
  const now = Date.now();
  const period = lock.days * DAY_MS;
  const last = await lastPass(objects);
  if (last !== undefined && now - last < period / 4 && last <= now) return 0;
  const until = new Date(now + period);
  // Written in the last quarter period: their own lock still has three quarters to run.
  const due = referenced.filter((o) => o.modified === undefined || o.modified.getTime() < now - period / 4);
  const extended = await mapLimit(due, EXTEND_CONCURRENCY, (o) => extend(o.key, until));
  const record: LockExtensionRecord = { version: 1, extendedAt: new Date(now).toISOString(), until: until.toISOString() };
  await objects.deleteMany([LOCK_EXTENSION_KEY]);
  await objects.putIfAbsent(LOCK_EXTENSION_KEY, Buffer.from(JSON.stringify(record)));
  return extended.filter(Boolean).length;
}
