/**
 * One fingerprint store's index in memory: the chunker's FingerprintIndex (fingerprint ->
 * where the blob lives) plus the table of pack names its values point into. Built from
 * the store's index segments on open; a cache of the bucket (invariant 3), so it can
 * always be rebuilt from the segments (and they from the pack trailers).
 *
 * Damage stays local (invariant 9): a segment that cannot be read or decoded is skipped
 * and reported, and the store's packs that no readable segment lists are read from their
 * own trailers. Normally (no damaged segment) those are what interrupted or running
 * backups left, and they go into a second table, `recovered`, which only `locate`
 * (restore) consults: backups do not deduplicate against a pack no segment lists, so a
 * healthy repository's new snapshots only ever need indexed packs. When a segment is
 * damaged, they are the packs it covered, and they go into the main table: backups go on
 * deduplicating against them (and agents referring to their chunks are served), and
 * `hoard repair` indexes them again (GC refuses to run until then). Details: docs/repair.md.
 *
 * Value words (3 x u32):
 *   [0] pack ordinal (position in this process's pack table, not stored anywhere)
 *   [1] blob offset in the pack (packs are at most 128 MiB)
 *   [2] stored length (bits 0-24; chunks are at most 16 MiB, + 28 bytes of GCM framing)
 *       | payload kind (bits 25-30) | encrypted (bit 31)
 */
import { FingerprintIndex } from '@hoard/chunker';
import { CODEC_ENCRYPTED } from '../blob/codec.js';
import { ObjectFormatError } from '../format-error.js';
import { decodeIndexSegment, packKeyFromHash, type IndexSegment } from '../index-segment/index-segment.js';
import type { PackEntry, PackTrailer } from '../pack/pack-format.js';
import { readPackTrailer } from '../pack/pack-reader.js';
import { readCondemnations } from '../gc/gc-objects.js';
import { ObjectNotFoundError } from '../store/errors.js';
import { listAll, type ObjectStore } from '../store/object-store.js';
import { retrying } from '../retry.js';
import { mapConcurrent } from './concurrency.js';

export interface BlobLocation {
  pack: number;
  offset: number;
  storedLength: number;
  /** The codec byte (payload kind | CODEC_ENCRYPTED). */
  codec: number;
}

/** What loading the index found wrong, and what it did about it. */
export interface IndexDamage {
  /** Index segments (of any store) that could not be decoded: skipped. */
  damagedSegments: { key: string; problem: string }[];
  /** Keys of this store's packs that no readable segment lists, indexed from their trailers. */
  recoveredPacks: string[];
  /** Packs no readable segment lists whose trailer could not be read (store unknown). */
  unreadablePacks: { key: string; problem: string }[];
}

export const noIndexDamage = (): IndexDamage => ({ damagedSegments: [], recoveredPacks: [], unreadablePacks: [] });

interface SegmentConsumer {
  /** A pack listed by a readable segment of this store. */
  indexed(packHash: Uint8Array, entries: readonly PackEntry[]): void;
  /**
   * A pack of this store that no readable segment lists, read from its trailer. `indexed`:
   * a segment was damaged, so the pack is offered to backups too (see StoreIndex).
   */
  recovered(packHash: Uint8Array, entries: readonly PackEntry[], indexed: boolean): void;
}

const LENGTH_BITS = 25;
const LENGTH_MASK = (1 << LENGTH_BITS) - 1;
const KIND_MASK = 0x3f;

export class StoreIndex {
  private table = new FingerprintIndex({ valueWords: 3 });
  /** Blobs of packs no readable segment lists (read from their trailers): for `locate` only. */
  private recoveredTable = new FingerprintIndex({ valueWords: 3 });
  /** What the last load or rebuild found damaged or unindexed. */
  damage: IndexDamage = noIndexDamage();
  private readonly packHashes: (Uint8Array | undefined)[] = [];
  private readonly ordinals = new Map<string, number>();
  private readonly value = new Uint32Array(3);
  /** While rebuild() reads the segments: packs added meanwhile, replayed into the new table. */
  private journal: { packHash: Uint8Array; entries: readonly PackEntry[] }[] | undefined;

  /** fingerprint -> (pack ordinal, offset, length | kind) */
  get fingerprints(): FingerprintIndex {
    return this.table;
  }

  packOrdinal(hash: Uint8Array): number {
    const hex = Buffer.from(hash.buffer, hash.byteOffset, hash.byteLength).toString('hex');
    let ordinal = this.ordinals.get(hex);
    if (ordinal === undefined) {
      ordinal = this.packHashes.push(Uint8Array.from(hash)) - 1;
      this.ordinals.set(hex, ordinal);
    }
    return ordinal;
  }

  packKey(ordinal: number): string {
    const hash = this.packHashes[ordinal];
    if (!hash) throw new Error(`pack ${ordinal} has no name yet (still being written)`);
    return packKeyFromHash(hash);
  }

  has(fingerprint: Uint8Array): boolean {
    return this.table.has(fingerprint);
  }

  /** Records a blob unless the fingerprint is already known (the first copy wins). */
  add(fingerprint: Uint8Array, location: BlobLocation): boolean {
    return StoreIndex.put(this.table, this.value, fingerprint, location);
  }

  private static put(table: FingerprintIndex, v: Uint32Array, fingerprint: Uint8Array, location: BlobLocation): boolean {
    if (location.storedLength > LENGTH_MASK || (location.codec & ~CODEC_ENCRYPTED) > KIND_MASK) {
      throw new RangeError(`blob of ${location.storedLength} bytes with codec ${location.codec} does not fit the index`);
    }
    v[0] = location.pack;
    v[1] = location.offset;
    v[2] = (location.storedLength | ((location.codec & KIND_MASK) << LENGTH_BITS) | (location.codec & CODEC_ENCRYPTED ? 0x80000000 : 0)) >>> 0;
    return table.add(fingerprint, v);
  }

  /** About to add these packs' entries: see FingerprintIndex.reserve. */
  reserveFor(packs: readonly { entries: readonly PackEntry[] }[]): void {
    this.table.reserve(packs.flatMap((p) => p.entries.map((e) => e.fingerprint)));
  }

  addPackEntries(packHash: Uint8Array, entries: readonly PackEntry[]): void {
    const pack = this.packOrdinal(packHash);
    for (const e of entries) this.add(e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
    this.journal?.push({ packHash, entries });
  }

  /**
   * Replaces the fingerprint table with one read from the store's index segments now, as
   * StoreIndex.load would build it: after a garbage collection, condemned packs are gone
   * from it and repacked or revived ones are in it. Pack ordinals stay what they were (a
   * backup or restore in flight may hold one); packs added while the segments are read are
   * kept. Call it only while no GC is rewriting the segments (docs/gc.md).
   */
  async rebuild(store: ObjectStore, storeId: string, concurrency = 8): Promise<void> {
    const journal: { packHash: Uint8Array; entries: readonly PackEntry[] }[] = [];
    this.journal = journal;
    try {
      let table = new FingerprintIndex({ valueWords: 3 });
      let recovered = new FingerprintIndex({ valueWords: 3 });
      const v = new Uint32Array(3);
      const into =
        (t: () => FingerprintIndex) =>
        (packHash: Uint8Array, entries: readonly PackEntry[]): void => {
          const pack = this.packOrdinal(packHash);
          for (const e of entries) StoreIndex.put(t(), v, e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
        };
      const damage = await StoreIndex.readSegments(store, storeId, concurrency, () => {
        table = new FingerprintIndex({ valueWords: 3 });
        recovered = new FingerprintIndex({ valueWords: 3 });
        return { indexed: into(() => table), recovered: (h, entries, indexed) => into(() => (indexed ? table : recovered))(h, entries) };
      });
      for (const j of journal) into(() => table)(j.packHash, j.entries);
      this.table = table;
      this.recoveredTable = recovered;
      this.damage = damage;
    } finally {
      this.journal = undefined;
    }
  }

  /** Ordinal of the pack holding the blob (no allocation: the backup asks this per dedup hit). */
  packOf(fingerprint: Uint8Array): number | undefined {
    return this.table.getWord(fingerprint, 0);
  }

  /** The BLAKE3 name of pack `ordinal`. */
  packHash(ordinal: number): Uint8Array {
    const hash = this.packHashes[ordinal];
    if (!hash) throw new Error(`pack ${ordinal} has no name yet (still being written)`);
    return hash;
  }

  /**
   * Where a blob is: in an indexed pack, else in a pack no readable segment lists (read
   * from its trailer, see `damage`). Restore and verify read through this.
   */
  locate(fingerprint: Uint8Array): BlobLocation | undefined {
    const v = this.table.get(fingerprint) ?? this.recoveredTable.get(fingerprint);
    if (!v) return undefined;
    const w = v[2];
    return {
      pack: v[0],
      offset: v[1],
      storedLength: w & LENGTH_MASK,
      codec: ((w >>> LENGTH_BITS) & KIND_MASK) | (w & 0x80000000 ? CODEC_ENCRYPTED : 0),
    };
  }

  /**
   * Reads every index segment of the store with id `storeId` (hex). A damaged segment does
   * not fail the load: see `damage` and the class comment.
   */
  static async load(store: ObjectStore, storeId: string, concurrency = 8): Promise<StoreIndex> {
    let index = new StoreIndex();
    const damage = await StoreIndex.readSegments(store, storeId, concurrency, () => {
      index = new StoreIndex();
      return {
        indexed: (packHash, entries) => index.addPackEntries(packHash, entries),
        recovered: (packHash, entries, indexed) => {
          const pack = index.packOrdinal(packHash);
          const table = indexed ? index.table : index.recoveredTable;
          for (const e of entries) StoreIndex.put(table, index.value, e.fingerprint, { pack, offset: e.offset, storedLength: e.storedLength, codec: e.codec });
        },
      };
    });
    index.damage = damage;
    return index;
  }

  /**
   * Hands every pack of the store's segments to the consumer `begin()` returns, in listing
   * order (the same store always loads the same way), applying as it reads. GC replaces
   * segments by writing the new ones before deleting the old (docs/gc.md): a segment that
   * vanishes between listing and reading means a newer listing has its replacement, so the
   * read starts over with a fresh consumer. A segment that does not decode is skipped; then
   * `packs/` is listed and every pack of the store that no readable segment lists (and no
   * GC condemnation names) is read from its trailer and handed to `recovered`.
   */
  private static async readSegments(store: ObjectStore, storeId: string, concurrency: number, begin: () => SegmentConsumer): Promise<IndexDamage> {
    const { use, damage, listed } = await retrying(
      async () => {
        const use = begin();
        const keys: string[] = [];
        for await (const info of listAll(store, 'index/')) keys.push(info.key);
        const damage = noIndexDamage();
        const listed = new Set<string>();
        // Decoding is synchronous and cheap next to the reads, so reads run ahead.
        await mapConcurrent(
          keys,
          concurrency,
          (key) => readSegment(store, key),
          (segment, key) => {
            if (segment instanceof ObjectFormatError) {
              damage.damagedSegments.push({ key, problem: segment.reason });
              return;
            }
            const mine = hexOf(segment.storeId) === storeId;
            for (const p of segment.packs) {
              listed.add(hexOf(p.packHash));
              if (mine) use.indexed(p.packHash, p.entries);
            }
          },
        );
        return { use, damage, listed };
      },
      // A segment that vanished: listed and read again at once, up to this many times in all.
      { attempts: SEGMENT_LISTINGS, retryable: (err) => err instanceof ObjectNotFoundError },
    );
    await recoverUnlistedPacks(
      store,
      listed,
      concurrency,
      (key, trailer) => {
        if (hexOf(trailer.storeId) !== storeId) return;
        damage.recoveredPacks.push(key);
        use.recovered(Buffer.from(key.slice(key.lastIndexOf('/') + 1), 'hex'), trailer.entries, damage.damagedSegments.length > 0);
      },
      damage.unreadablePacks,
    );
    return damage;
  }
}

/**
 * How many times loading lists and reads `index/` when segments vanish under it: each
 * vanished segment means a GC replaced segments meanwhile, so several in a row mean GCs
 * that keep racing this load, which then fails rather than spin.
 */
const SEGMENT_LISTINGS = 5;

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
const PACK_NAME = /^packs\/[0-9a-f]{2}\/([0-9a-f]{64})$/;

/** A segment, or the format error that makes it unreadable (I/O errors and a vanished object are thrown). */
export async function readSegment(store: ObjectStore, key: string): Promise<IndexSegment | ObjectFormatError> {
  const bytes = await store.get(key);
  try {
    return decodeIndexSegment(key, bytes);
  } catch (err) {
    if (err instanceof ObjectFormatError) return err;
    throw err;
  }
}

/**
 * Packs under `packs/` that no readable segment lists (`listed`: their hex names), less
 * those a GC condemnation names (their removal is GC's business; if the lists cannot be
 * read, none is left out): what interrupted backups leave, what backups still running
 * wrote, and what a damaged or missing segment covered. Each one's trailer is read and
 * handed to `found`; trailers that cannot be read go to `unreadable`. A pack that vanishes
 * meanwhile (GC) is skipped.
 */
export async function recoverUnlistedPacks(
  store: ObjectStore,
  listed: ReadonlySet<string>,
  concurrency: number,
  found: (key: string, trailer: PackTrailer) => void,
  unreadable: { key: string; problem: string }[],
): Promise<void> {
  const candidates: string[] = [];
  for await (const info of listAll(store, 'packs/')) {
    const name = PACK_NAME.exec(info.key)?.[1];
    if (name && !listed.has(name)) candidates.push(info.key);
  }
  if (candidates.length === 0) return;
  const condemned = await condemnedPacks(store);
  await mapConcurrent(
    candidates.filter((key) => !condemned.has(key.slice(key.lastIndexOf('/') + 1))),
    concurrency,
    async (key) => {
      try {
        return await readPackTrailer(store, key);
      } catch (err) {
        if (err instanceof ObjectNotFoundError) return undefined;
        if (err instanceof ObjectFormatError) return err;
        throw err;
      }
    },
    (trailer, key) => {
      if (trailer instanceof ObjectFormatError) {
        // readPackTrailer says "no such object" for a pack deleted since the listing.
        if (trailer.reason !== 'no such object') unreadable.push({ key, problem: trailer.reason });
      } else if (trailer) found(key, trailer);
    },
  );
}

/** Hex names of the packs GC has condemned (empty when there are no lists or they cannot be read). */
async function condemnedPacks(store: ObjectStore): Promise<Set<string>> {
  const out = new Set<string>();
  try {
    for (const c of (await readCondemnations(store)).items.values()) if (c.kind === 'pack') out.add(c.hash);
  } catch {
    // A damaged condemnation list: read every unlisted pack (more reads, nothing lost).
  }
  return out;
}
