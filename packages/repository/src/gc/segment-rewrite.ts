/**
 * Replaces index segments that list packs GC condemned: the new segments list every other
 * pack of the old ones (and the packs repacking wrote), and are written before the old
 * ones are deleted, so a reader always finds every surviving pack in some segment
 * (StoreIndex.load starts over if a segment vanishes under it).
 */
import { decodeIndexSegment, encodeIndexSegment, type SegmentPack } from '../index-segment/index-segment.js';
import type { ObjectStore } from '../store/object-store.js';
import type { LiveSet } from './live-set.js';

/** Packs per rewritten segment: big enough to shrink the segment count, small enough to read whole. */
const PACKS_PER_SEGMENT = 64;

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

export async function rewriteSegments(
  objects: ObjectStore,
  live: LiveSet,
  drop: Set<string>,
  added: Map<string, SegmentPack[]>,
): Promise<{ written: string[]; deleted: string[] }> {
  const affected = [...live.segments].filter(([, s]) => s.packs.some((p) => drop.has(p))).map(([key]) => key);
  const affectedSet = new Set(affected);
  const pending = new Map<string, SegmentPack[]>();
  const done = new Set<string>();
  const written: string[] = [];
  const flush = async (storeId: string, all: boolean) => {
    const packs = pending.get(storeId) ?? [];
    while (packs.length >= PACKS_PER_SEGMENT || (all && packs.length > 0)) {
      const segment = encodeIndexSegment({ storeId: Uint8Array.from(Buffer.from(storeId, 'hex')), packs: packs.splice(0, PACKS_PER_SEGMENT) });
      await objects.putIfAbsent(segment.key, segment.bytes);
      written.push(segment.key);
    }
  };
  const keep = async (storeId: string, pack: SegmentPack) => {
    let list = pending.get(storeId);
    if (!list) pending.set(storeId, (list = []));
    list.push(pack);
    await flush(storeId, false);
  };
  for (const key of affected) {
    const segment = decodeIndexSegment(key, await objects.get(key));
    const storeId = hex(segment.storeId);
    for (const p of segment.packs) {
      const h = hex(p.packHash);
      if (drop.has(h) || done.has(h)) continue;
      done.add(h);
      // Still listed by a segment that stays: nothing to carry over.
      if (live.byHex.get(h)?.segments.some((s) => !affectedSet.has(s))) continue;
      await keep(storeId, p);
    }
  }
  for (const [storeId, packs] of added) for (const p of packs) await keep(storeId, p);
  for (const storeId of pending.keys()) await flush(storeId, true);
  if (affected.length > 0) await objects.deleteMany(affected);
  return { written, deleted: affected };
}
