/**
 * Repacking: the live blobs of mostly-dead packs are copied, as stored (still compressed
 * and encrypted: no keys needed), into new packs of the same store. Every copied blob's
 * checksum is checked first, so a damaged blob is never spread into a new pack: a pack
 * with one is left as it is and reported.
 *
 * Memory: one old pack (at most 128 MiB) and one new pack being filled.
 */
import { loadXxh64, xxh64 } from '../checksum.js';
import { hashOfContentKey } from '../content-key.js';
import { packKeyFromHash, type SegmentPack } from '../index-segment/index-segment.js';
import { decodeFooter, decodeTrailer, PACK_ENTRY_BYTES, PACK_FOOTER_BYTES, type PackEntry } from '../pack/pack-format.js';
import { PackWriter } from '../pack/pack-writer.js';
import type { ObjectStore } from '../store/object-store.js';
import type { GcPack, LiveSet } from './live-set.js';

export interface RepackResult {
  /** The new packs, ready to be listed in index segments. */
  written: SegmentPack[];
  writtenBytes: number;
  /** Old packs whose live blobs are all in `written` now. */
  repacked: GcPack[];
  /** Old packs left alone, with the reason (a damaged blob, a trailer that does not match). */
  skipped: { pack: string; problem: string }[];
}

export async function repack(
  objects: ObjectStore,
  live: LiveSet,
  storeId: string,
  packs: GcPack[],
  packBytes: number,
  onPack?: () => void,
): Promise<RepackResult> {
  await loadXxh64();
  const result: RepackResult = { written: [], writtenBytes: 0, repacked: [], skipped: [] };
  const writer = new PackWriter(Uint8Array.from(Buffer.from(storeId, 'hex')), packBytes);
  const seal = async () => {
    const sealed = writer.seal();
    await objects.putIfAbsent(sealed.key, sealed.bytes);
    result.written.push({ packHash: hashOfContentKey(sealed.key), entries: sealed.entries });
    result.writtenBytes += sealed.bytes.length;
  };
  for (const pack of packs) {
    const key = packKeyFromHash(pack.hash);
    const bytes = Buffer.from(await objects.get(key));
    let entries: PackEntry[];
    try {
      const { count } = decodeFooter(key, bytes.subarray(bytes.length - PACK_FOOTER_BYTES), bytes.length);
      entries = decodeTrailer(key, bytes.subarray(bytes.length - count * PACK_ENTRY_BYTES - PACK_FOOTER_BYTES), bytes.length).entries;
    } catch (err) {
      result.skipped.push({ pack: key, problem: (err as Error).message });
      onPack?.();
      continue;
    }
    if (entries.length !== pack.count) {
      result.skipped.push({ pack: key, problem: `the trailer lists ${entries.length} blobs, the index segments ${pack.count}` });
      onPack?.();
      continue;
    }
    const keep = entries.filter((_, i) => live.isLive(pack, i));
    const damaged = keep.find((e) => xxh64(bytes.subarray(e.offset, e.offset + e.storedLength)) !== e.checksum);
    if (damaged) {
      result.skipped.push({ pack: key, problem: `blob at offset ${damaged.offset} fails its checksum (run \`hoard verify --read-data\`)` });
      onPack?.();
      continue;
    }
    for (const e of keep) {
      writer.add(e.fingerprint, { stored: bytes.subarray(e.offset, e.offset + e.storedLength), codec: e.codec, rawLength: e.rawLength, checksum: e.checksum });
      if (writer.full) await seal();
    }
    result.repacked.push(pack);
    onPack?.();
  }
  if (writer.count > 0) await seal();
  return result;
}
