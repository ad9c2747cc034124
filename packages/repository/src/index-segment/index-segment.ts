/**
 * Index segments: written after the packs they describe are durable (invariant 1), they
 * map fingerprints to (pack, blob) for one fingerprint store, so opening a repository
 * reads a few segments instead of every pack trailer. They are content-named and always
 * read whole, so the name itself verifies them. Byte layout: docs/format.md,
 * "Index segments". A segment is redundant with the pack trailers: `repair` (repo/repair.ts)
 * rewrites segments from packs alone (invariant 3), and StoreIndex reads around a damaged one.
 */
import { contentKey, contentKeyFromHash } from '../content-key.js';
import { PACK_ENTRY_BYTES, STORE_ID_BYTES, readEntry, viewOf, writeEntry, type PackEntry } from '../pack/pack-format.js';
import { ObjectFormatError } from '../format-error.js';

export const SEGMENT_MAGIC = Buffer.from('HOARDIX1', 'ascii');
export const SEGMENT_VERSION = 1;
const HEADER_BYTES = 8 + 2 + 2 + 4 + STORE_ID_BYTES; // magic, version, flags, pack count, store id
const PACK_HEADER_BYTES = 32 + 4; // pack name (BLAKE3), entry count

export interface SegmentPack {
  /** The pack's name: the BLAKE3 of its bytes (its key is packs/<h[0:2]>/<h>). */
  packHash: Uint8Array;
  entries: PackEntry[];
}

export interface IndexSegment {
  storeId: Uint8Array;
  packs: SegmentPack[];
}

export class IndexSegmentFormatError extends ObjectFormatError {
  override readonly name = 'IndexSegmentFormatError';
  constructor(object: string, reason: string) {
    super('index segment', object, reason);
  }
}

export function segmentKey(bytes: Uint8Array): string {
  return contentKey('index', bytes);
}

export function packKeyFromHash(hash: Uint8Array): string {
  return contentKeyFromHash('packs', hash);
}

export function encodeIndexSegment(segment: IndexSegment): { key: string; bytes: Uint8Array } {
  const size = HEADER_BYTES + segment.packs.reduce((n, p) => n + PACK_HEADER_BYTES + p.entries.length * PACK_ENTRY_BYTES, 0);
  const out = Buffer.alloc(size);
  SEGMENT_MAGIC.copy(out, 0);
  out.writeUInt16LE(SEGMENT_VERSION, 8);
  out.writeUInt16LE(0, 10);
  out.writeUInt32LE(segment.packs.length, 12);
  out.set(segment.storeId, 16);
  const view = viewOf(out);
  let o = HEADER_BYTES;
  for (const p of segment.packs) {
    out.set(p.packHash, o);
    out.writeUInt32LE(p.entries.length, o + 32);
    o += PACK_HEADER_BYTES;
    for (const e of p.entries) {
      writeEntry(out, o, e, view);
      o += PACK_ENTRY_BYTES;
    }
  }
  return { key: segmentKey(out), bytes: out };
}

/** Decodes a segment read from `key`; checks that its content matches its name. */
export function decodeIndexSegment(key: string, bytes: Uint8Array): IndexSegment {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (segmentKey(b) !== key) throw new IndexSegmentFormatError(key, 'content does not match its name (BLAKE3)');
  if (b.length < HEADER_BYTES || !b.subarray(0, 8).equals(SEGMENT_MAGIC)) throw new IndexSegmentFormatError(key, 'no HOARDIX1 header');
  const version = b.readUInt16LE(8);
  if (version !== SEGMENT_VERSION) throw new IndexSegmentFormatError(key, `format version ${version}, this build reads ${SEGMENT_VERSION}`);
  const packCount = b.readUInt32LE(12);
  const storeId = Uint8Array.from(b.subarray(16, 16 + STORE_ID_BYTES));
  const packs: SegmentPack[] = [];
  let o = HEADER_BYTES;
  for (let i = 0; i < packCount; i++) {
    if (o + PACK_HEADER_BYTES > b.length) throw new IndexSegmentFormatError(key, `ends inside the header of pack ${i}`);
    const packHash = Uint8Array.from(b.subarray(o, o + 32));
    const count = b.readUInt32LE(o + 32);
    o += PACK_HEADER_BYTES;
    if (o + count * PACK_ENTRY_BYTES > b.length) throw new IndexSegmentFormatError(key, `ends inside the entries of pack ${i}`);
    const entries: PackEntry[] = [];
    for (let j = 0; j < count; j++, o += PACK_ENTRY_BYTES) entries.push(readEntry(b, o));
    packs.push({ packHash, entries });
  }
  if (o !== b.length) throw new IndexSegmentFormatError(key, `${b.length - o} bytes after the last pack`);
  return { storeId, packs };
}
