/**
 * The commit check that makes a backup safe against a concurrent GC (docs/gc.md,
 * "Backups that span a GC"). A backup may have deduplicated against a pack that GC
 * condemned after the backup loaded its index, and its own packs and pages may be
 * condemned while it runs. Around the manifest write:
 *
 *   before: read the condemnations; every referenced pack or page that is condemned is
 *           revived if its revival window is open (single-pack index segment, then a
 *           revival marker). One whose window has closed (a retry of the same data after
 *           a GC condemned the failed attempt's pack: packs are content-named) is used
 *           only if no GC runs (no gc/lock): a pack gets its single-pack segment, no marker;
 *           while a GC runs the backup fails with nothing committed;
 *   write the manifest;
 *   after:  read the condemnations again; if any referenced condemnation is past its
 *           window, check that gc/lock does not exist; then check that every referenced
 *           pack and page still exists; anything condemned since is revived if its
 *           window is open. Otherwise (or if something is gone, or the store fails any of
 *           these reads) the manifest is deleted again and the backup fails.
 *
 * Why "after" is enough without any timing assumption: a GC that deletes an object
 * condemned it first and lists manifests only after its grace period began, and
 * condemnations stay listed until the object is deleted. If the check after the manifest
 * sees no condemnation and then finds the object, any later condemnation comes after the
 * manifest existed, so the GC that would delete the object lists the manifest and keeps it.
 * The same argument covers a condemnation whose window has closed: only a GC holding
 * gc/lock deletes, and it lists manifests after taking the lock. If after the manifest
 * write no lock exists and then the object exists, a GC that held the lock before has
 * not deleted it, and any later one lists the manifest and keeps it. No clock involved.
 */
import { encodeIndexSegment, packKeyFromHash } from '../index-segment/index-segment.js';
import { readPackTrailer } from '../pack/pack-reader.js';
import { contentKeyFromHash } from '../content-key.js';
import { ObjectStoreError } from '../store/errors.js';
import type { ObjectStore } from '../store/object-store.js';
import { mapConcurrent } from '../repo/concurrency.js';
import { GcConflictError } from './errors.js';
import { GC_LOCK_KEY, instanceId, readCondemnations, revivedKey, reviveUntilMs, type CondemnationState, type CondemnedItem } from './gc-objects.js';

export interface CommitReferences {
  /** BLAKE3 names of every pack holding a blob the snapshot references. */
  packs: Iterable<Uint8Array>;
  /** BLAKE3 names of the snapshot's chunk-list pages. */
  pages: Iterable<Uint8Array>;
}

const HEADS_IN_FLIGHT = 16;
const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

/** Runs `writeManifest` (returns the manifest key) between the two checks. */
export async function commitGuarded(
  objects: ObjectStore,
  refs: CommitReferences,
  writeManifest: () => Promise<string>,
  now: () => number = Date.now,
): Promise<string> {
  const packs = new Set([...refs.packs].map(hex));
  const pages = new Set([...refs.pages].map(hex));
  const before = await readCondemnations(objects);
  // Condemnations too old to revive by the clock: usable again only while no GC runs.
  if (lateInstances(before, packs, pages, now).length > 0) await requireNoGc(objects, before, packs, pages, now, 'nothing was committed');
  await settle(objects, before, packs, pages, now, 'nothing was committed');
  const key = await writeManifest();
  // From here a failure of any kind (a conflict, or the store failing the check) withdraws
  // the manifest: a snapshot not shown safe against a GC must not stand, and a backup that
  // fails must have committed nothing.
  try {
    const after = await readCondemnations(objects);
    // The order matters: manifest, then no gc/lock, then the objects exist. A GC that takes
    // the lock after this lists the manifest and keeps what it references; one that held
    // it earlier and deleted something is caught by the existence check.
    if (lateInstances(before, packs, pages, now).length > 0 || lateInstances(after, packs, pages, now).length > 0) {
      await requireNoGc(objects, after, packs, pages, now, 'the snapshot was withdrawn again');
    }
    await requireExisting(objects, packs, pages);
    await settle(objects, after, packs, pages, now, 'the snapshot was withdrawn again');
  } catch (err) {
    await withdrawManifest(objects, key, err);
    throw err;
  }
  return key;
}

/**
 * Deletes a manifest whose commit failed after it was written (or may have been). If the
 * delete fails too, the snapshot may stand unchecked: the error says so and names it.
 */
export async function withdrawManifest(objects: ObjectStore, key: string, why: unknown): Promise<void> {
  try {
    await objects.deleteMany([key]);
  } catch (err) {
    const reason = err instanceof ObjectStoreError ? err.reason : String(err);
    throw new ObjectStoreError(
      objects.location,
      'delete',
      key,
      `${reason}; the snapshot was written, but its commit failed (${(why as Error)?.message ?? String(why)}) and it could not be withdrawn, so it may stand unchecked against garbage collection: run hoard verify, and forget it if in doubt`,
      { cause: err },
    );
  }
}

const describeObject = (c: { kind: 'pack' | 'page'; hash: string }): string =>
  c.kind === 'pack' ? `pack packs/${c.hash.slice(0, 2)}/${c.hash}` : `chunk-list page chunklists/${c.hash.slice(0, 2)}/${c.hash}`;

/** Referenced instances, not revived, whose revival window (condemnedAt + grace/2) has closed. */
function lateInstances(state: CondemnationState, packs: Set<string>, pages: Set<string>, now: () => number): CondemnedItem[] {
  const late: CondemnedItem[] = [];
  for (const c of state.items.values()) {
    if (!(c.kind === 'pack' ? packs : pages).has(c.hash)) continue;
    for (const instance of c.instances) if (!state.revived.has(instanceId(instance)) && now() >= reviveUntilMs(instance)) late.push(instance);
  }
  return late;
}

/**
 * Only a GC that holds `gc/lock` deletes. A late condemnation is safe to ignore when no GC
 * runs: the next one lists this backup's manifest (docs/gc.md, "Backups that span a GC").
 */
async function requireNoGc(
  objects: ObjectStore,
  state: CondemnationState,
  packs: Set<string>,
  pages: Set<string>,
  now: () => number,
  outcome: string,
): Promise<void> {
  const lock = await objects.head(GC_LOCK_KEY);
  if (!lock) return;
  const [first] = lateInstances(state, packs, pages, now);
  const what = first ? `${describeObject(first)} (condemned at ${first.condemnedAt})` : 'an object';
  throw new GcConflictError(
    `garbage collection condemned ${what}, which this snapshot needs, too long ago to revive it while a garbage collection is running (${GC_LOCK_KEY} exists); ${outcome}: run the backup again when it has finished`,
  );
}

async function settle(
  objects: ObjectStore,
  state: CondemnationState,
  packs: Set<string>,
  pages: Set<string>,
  now: () => number,
  outcome: string,
): Promise<void> {
  for (const c of state.items.values()) {
    if (!(c.kind === 'pack' ? packs : pages).has(c.hash)) continue;
    // Every instance must be revived: an older one may still be the one a GC acts on.
    for (const instance of c.instances) {
      if (state.revived.has(instanceId(instance))) continue;
      // Window closed: no marker (it could not be relied on), but a pack is listed in an
      // index again so restores find its blobs; requireNoGc and the existence check after
      // the manifest decide whether the snapshot may stand.
      const late = now() >= reviveUntilMs(instance);
      if (c.kind === 'pack') {
        if (!(await objects.head(packKeyFromHash(Buffer.from(c.hash, 'hex'))))) {
          throw new GcConflictError(
            `pack packs/${c.hash.slice(0, 2)}/${c.hash}, which this snapshot needs, was deleted by garbage collection while the backup ran; ${outcome}: run the backup again`,
          );
        }
        const segment = await revivePack(objects, c.hash);
        if (!late) await objects.putIfAbsent(revivedKey(instance), Buffer.from(JSON.stringify({ version: 1, revivedAt: new Date(now()).toISOString() })));
        // The segment is content-named: it may be one that existed already and that the GC
        // which condemned the pack is deleting right now. A GC deletes such segments before
        // it looks for revival markers; if ours came too late for it, the segment is gone
        // by now and is written again.
        if (!(await objects.head(segment))) await revivePack(objects, c.hash);
        continue;
      }
      if (!late) await objects.putIfAbsent(revivedKey(instance), Buffer.from(JSON.stringify({ version: 1, revivedAt: new Date(now()).toISOString() })));
    }
  }
}

/**
 * Lists a condemned pack in an index segment of its own again, so restores find its blobs
 * before the next GC resolves the condemnation. The segment's bytes depend only on the
 * pack, so reviving twice writes the same object.
 */
export async function revivePack(objects: ObjectStore, hash: string): Promise<string> {
  const packHash = Uint8Array.from(Buffer.from(hash, 'hex'));
  const trailer = await readPackTrailer(objects, packKeyFromHash(packHash));
  const segment = encodeIndexSegment({ storeId: trailer.storeId, packs: [{ packHash, entries: trailer.entries }] });
  await objects.putIfAbsent(segment.key, segment.bytes);
  return segment.key;
}

async function requireExisting(objects: ObjectStore, packs: Set<string>, pages: Set<string>): Promise<void> {
  const keys = [
    ...[...packs].map((h) => contentKeyFromHash('packs', Buffer.from(h, 'hex'))),
    ...[...pages].map((h) => contentKeyFromHash('chunklists', Buffer.from(h, 'hex'))),
  ];
  const missing: string[] = [];
  await mapConcurrent(
    keys,
    HEADS_IN_FLIGHT,
    (key) => objects.head(key),
    (info, key) => {
      if (!info) missing.push(key);
    },
  );
  if (missing.length > 0) {
    throw new GcConflictError(
      `${missing[0]}${missing.length > 1 ? ` and ${missing.length - 1} more object(s)` : ''}, which this snapshot needs, was deleted by garbage collection while the backup ran; the snapshot was withdrawn again: run the backup again`,
    );
  }
}
