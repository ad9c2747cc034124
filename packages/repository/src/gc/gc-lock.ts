/**
 * `gc/lock`: held by whatever may delete objects or rewrite index segments (garbage
 * collection, repair), so that two of them never run at once (docs/gc.md). A put-if-absent
 * object naming its holder; a holder that died leaves it, and `--break-lock` removes it.
 */
import { hostname } from 'node:os';
import type { ObjectStore } from '../store/object-store.js';
import { GcLockedError } from './errors.js';
import { GC_LOCK_KEY, type GcLock } from './gc-objects.js';

/**
 * Runs `work` holding the lock, and releases it after. If another run holds it,
 * GcLockedError with `refusal(holder)` as its message (`holder`: who, since when).
 */
export async function withGcLock<T>(
  objects: ObjectStore,
  options: { breakLock?: boolean; now?: () => Date },
  refusal: (holder: string) => string,
  work: () => Promise<T>,
): Promise<T> {
  if (options.breakLock) await objects.deleteMany([GC_LOCK_KEY]);
  const lock: GcLock = { version: 1, startedAt: (options.now?.() ?? new Date()).toISOString(), host: hostname(), pid: process.pid };
  if (!(await objects.putIfAbsent(GC_LOCK_KEY, Buffer.from(JSON.stringify(lock))))) {
    let holder = 'another run';
    try {
      const held = JSON.parse(Buffer.from(await objects.get(GC_LOCK_KEY)).toString('utf8')) as GcLock;
      holder = `a run started at ${held.startedAt} on ${held.host} (pid ${held.pid})`;
    } catch {
      // unreadable or just released: the message stays generic
    }
    throw new GcLockedError(refusal(holder));
  }
  try {
    return await work();
  } finally {
    await objects.deleteMany([GC_LOCK_KEY]);
  }
}
