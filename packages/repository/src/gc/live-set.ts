/**
 * GC's view of one repository's blobs: every pack the index segments list, and for each a
 * bitmap of which of its blobs a snapshot still references. The fingerprint -> (pack, blob)
 * table is as big as a backup's index; the mark phase adds one bit per blob and reads one
 * chunk-list page at a time, so no snapshot's chunk list is ever held whole (invariant 6).
 */
import { FingerprintIndex } from '@hoard/chunker';
import type { IndexSegment } from '../index-segment/index-segment.js';
import type { PackEntry } from '../pack/pack-format.js';

export interface GcPack {
  hash: Uint8Array;
  hex: string;
  storeId: string;
  count: number;
  /** Stored length of each blob, in trailer order. */
  lengths: Uint32Array;
  storedBytes: number;
  /** One bit per blob: referenced by a snapshot. */
  live: Uint8Array;
  liveCount: number;
  liveBytes: number;
  /** Index segments that list the pack. */
  segments: string[];
}

export interface CondemnedPack {
  hex: string;
  storeId: string;
  /** A snapshot references a blob that no indexed pack has: the pack must be revived. */
  needed: boolean;
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export class LiveSet {
  readonly packs: GcPack[] = [];
  readonly byHex = new Map<string, GcPack>();
  /** Segment key -> store id and the packs it lists. */
  readonly segments = new Map<string, { storeId: string; packs: string[] }>();
  readonly condemned: CondemnedPack[] = [];
  readonly livePages = new Set<string>();
  /** Chunk references no pack (indexed or condemned) holds: the snapshot is damaged already. */
  missingChunks = 0;
  private readonly indexes = new Map<string, FingerprintIndex>();
  private readonly condemnedIndexes = new Map<string, FingerprintIndex>();
  private readonly value = new Uint32Array(2);

  addSegment(key: string, segment: IndexSegment): void {
    const storeId = hex(segment.storeId);
    const listed: string[] = [];
    for (const p of segment.packs) {
      const h = hex(p.packHash);
      listed.push(h);
      const seen = this.byHex.get(h);
      if (seen) {
        // Listed twice (a backup revived it, or a segment rewrite was interrupted): the
        // entries are the same pack's, so they are counted once.
        seen.segments.push(key);
        continue;
      }
      const pack: GcPack = {
        hash: Uint8Array.from(p.packHash),
        hex: h,
        storeId,
        count: p.entries.length,
        lengths: Uint32Array.from(p.entries, (e) => e.storedLength),
        storedBytes: p.entries.reduce((n, e) => n + e.storedLength, 0),
        live: new Uint8Array((p.entries.length + 7) >> 3),
        liveCount: 0,
        liveBytes: 0,
        segments: [key],
      };
      const ordinal = this.packs.push(pack) - 1;
      this.byHex.set(h, pack);
      const index = this.indexFor(this.indexes, storeId);
      // First copy wins, as in StoreIndex.load: a duplicate blob in a later pack is dead.
      p.entries.forEach((e, i) => {
        this.value[0] = ordinal;
        this.value[1] = i;
        index.add(e.fingerprint, this.value);
      });
    }
    this.segments.set(key, { storeId, packs: listed });
  }

  /** A condemned pack that no segment lists: consulted only for chunks no indexed pack has. */
  addCondemned(packHex: string, storeId: string, entries: readonly PackEntry[]): void {
    const ordinal = this.condemned.push({ hex: packHex, storeId, needed: false }) - 1;
    const index = this.indexFor(this.condemnedIndexes, storeId);
    this.value[0] = ordinal;
    this.value[1] = 0;
    for (const e of entries) index.add(e.fingerprint, this.value);
  }

  mark(storeId: string, fingerprint: Uint8Array): void {
    const v = this.indexes.get(storeId)?.get(fingerprint);
    if (v) {
      const pack = this.packs[v[0]];
      const i = v[1];
      const bit = 1 << (i & 7);
      if ((pack.live[i >> 3] & bit) === 0) {
        pack.live[i >> 3] |= bit;
        pack.liveCount++;
        pack.liveBytes += pack.lengths[i];
      }
      return;
    }
    const c = this.condemnedIndexes.get(storeId)?.get(fingerprint);
    if (c) this.condemned[c[0]].needed = true;
    else this.missingChunks++;
  }

  /** The indexed pack that holds a blob (the first copy), without marking it. */
  packOf(storeId: string, fingerprint: Uint8Array): string | undefined {
    const v = this.indexes.get(storeId)?.get(fingerprint);
    return v ? this.packs[v[0]].hex : undefined;
  }

  isLive(pack: GcPack, i: number): boolean {
    return (pack.live[i >> 3] & (1 << (i & 7))) !== 0;
  }

  private indexFor(map: Map<string, FingerprintIndex>, storeId: string): FingerprintIndex {
    let index = map.get(storeId);
    if (!index) {
      index = new FingerprintIndex({ valueWords: 2 });
      map.set(storeId, index);
    }
    return index;
  }
}
