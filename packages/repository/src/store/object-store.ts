/**
 * The one interface every storage backend implements (a local directory, S3). Packs,
 * index segments and manifests are written once and never modified (architecture
 * invariant 2), so the interface has no overwrite: `putIfAbsent` is the only write.
 *
 * Keys are relative, '/'-separated paths such as `packs/3f/3fa2...` (see docs/format.md).
 * A key never starts with '/', never contains '..', '.' or empty segments, and uses
 * only [A-Za-z0-9._-/]: a backend may map keys to file paths, so a key must never be
 * able to leave the store.
 */
export interface ObjectInfo {
  key: string;
  size: number;
  /** When the object was written; only from list() with `times: true` (GC's age rule). */
  modified?: Date;
}

export interface ListOptions {
  after?: string;
  limit?: number;
  /** Also report each object's write time (`modified`). */
  times?: boolean;
}

export interface ByteRange {
  /** First byte, inclusive. */
  offset: number;
  /** Number of bytes; the range must lie inside the object. */
  length: number;
}

export interface ListPage {
  objects: ObjectInfo[];
  /** Pass to the next list() call; undefined when this was the last page. */
  next?: string;
}

export interface ObjectStore {
  /** Human-readable location for messages, e.g. `fs:/srv/hoard` or `s3://bucket/prefix`. */
  readonly location: string;
  /**
   * Stores `data` under `key` unless an object with that key exists. Returns true if this
   * call wrote it, false if it was already there (content-named objects: the existing
   * one holds the same bytes). Durable when the promise resolves.
   */
  putIfAbsent(key: string, data: Uint8Array): Promise<boolean>;
  /** The whole object, or `range` of it. Throws ObjectNotFoundError if absent. */
  get(key: string, range?: ByteRange): Promise<Uint8Array>;
  /** Size of the object, or undefined if absent. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Objects whose key starts with `prefix`, in lexicographic key order, a page at a time. */
  list(prefix: string, options?: ListOptions): Promise<ListPage>;
  /** Deletes the keys that exist; absent keys are not an error. */
  deleteMany(keys: string[]): Promise<void>;
  /**
   * Optional: a reader for many ranged reads in a row (a restore). A backend implements it
   * when it can do better than one `get` per range, e.g. keep files open. Objects are
   * immutable, so whatever a reader keeps stays valid until it is closed.
   */
  openRangeReader?(): RangeReader;
  /** How many ranged reads a restore keeps in flight against this store (default 4). */
  readonly readConcurrency?: number;
  /**
   * Optional: stores that can make objects immutable (S3 Object Lock). From this call on,
   * every object `retention.locks(key)` accepts is written with a retention date `days`
   * after its write; the repository calls it when its config asks for Object Lock
   * (docs/storage.md, "Object Lock").
   */
  applyRetention?(retention: StoreRetention): void;
  /**
   * Optional: the date until which the object under `key` cannot be deleted, when that is
   * still in the future (undefined: deletable now, not locked, or absent). GC and prune ask
   * before deleting, and keep what is locked.
   */
  lockedUntil?(key: string): Promise<Date | undefined>;
  /**
   * Optional, with applyRetention: moves the retention date of the object's current version
   * to `until`. False when the object is gone or already locked longer (a lock can only be
   * extended).
   */
  extendLock?(key: string, until: Date): Promise<boolean>;
  /**
   * Optional (versioned buckets): keys under `prefix` whose current version is a delete
   * marker while an older version still holds bytes: deleted without their version id,
   * which a lock kept (or anyone can undo).
   */
  hiddenKeys?(prefix: string): Promise<string[]>;
  /** Optional, with hiddenKeys: removes the delete markers above each key's newest version, so it is visible again. */
  undelete?(keys: string[]): Promise<void>;
  /** Optional, with applyRetention: whether the bucket has Object Lock enabled (init checks before it records the setting). */
  objectLockEnabled?(): Promise<boolean>;
  /**
   * Optional: an object written piece by piece whose key is known only at the end (a pack
   * is named by the hash of all its bytes). Memory stays at what the caller holds, not
   * the object's size. A store implements it when it can keep the pieces somewhere cheap
   * until the name is known (fs: a temp file; see docs/storage.md, "Streamed packs").
   */
  stageObject?(): StagedObject;
}

/** See ObjectStore.stageObject. Calls must not overlap: each waits for the previous one. */
export interface StagedObject {
  /** Appends `bytes`; the caller may reuse them once the promise resolves. */
  append(bytes: Uint8Array): Promise<void>;
  /**
   * Makes the bytes appended so far the object `key` unless that key exists: the same
   * answer and durability as putIfAbsent. The staged bytes are gone afterwards, also on failure.
   */
  commit(key: string): Promise<boolean>;
  /** Drops the staged bytes; nothing is written. Safe after a failed append or commit. */
  abort(): Promise<void>;
}

/** S3 Object Lock's two modes: COMPLIANCE binds everyone; GOVERNANCE can be lifted by a user with the bypass permission. */
export type ObjectLockMode = 'COMPLIANCE' | 'GOVERNANCE';

/** What ObjectStore.applyRetention is told: which objects to lock, how, and for how long. */
export interface StoreRetention {
  mode: ObjectLockMode;
  /** Retention from each object's write, in days (fractions for tests). */
  days: number;
  /** True for the keys of immutable objects (packs, segments, pages, manifests, records). */
  locks(key: string): boolean;
}

/** Many ranged reads of immutable objects; see ObjectStore.openRangeReader. */
export interface RangeReader {
  /**
   * `range` of `key`: the same errors as ObjectStore.get. Into the start of `into` when
   * given and large enough and the reader can (a view of it is returned); otherwise a
   * new buffer that owns its ArrayBuffer.
   */
  read(key: string, range: ByteRange, into?: Uint8Array): Promise<Uint8Array>;
  /** Releases what the reader holds (open files); reads after close fail. */
  close(): Promise<void>;
}

/** Ranged reads in flight when the store states no preference. */
export const DEFAULT_READ_CONCURRENCY = 4;

/** The store's own reader, or one `get` per range. */
export function openRangeReader(store: ObjectStore): RangeReader {
  if (store.openRangeReader) return store.openRangeReader();
  return { read: (key, range) => store.get(key, range), close: async () => undefined };
}

/** Every object under `prefix`, following pages. */
export async function* listAll(store: ObjectStore, prefix: string, options: { times?: boolean } = {}): AsyncGenerator<ObjectInfo> {
  let after: string | undefined;
  for (;;) {
    const page = await store.list(prefix, options.times ? { after, times: true } : { after });
    yield* page.objects;
    if (page.next === undefined) return;
    after = page.next;
  }
}
