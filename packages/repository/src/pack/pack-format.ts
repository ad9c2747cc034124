/**
 * Pack objects: blobs back to back, then a trailer that lists them, then a fixed-size
 * footer. A pack alone says which store its blobs belong to and where each blob is, so
 * the index (and with manifests, everything) can be rebuilt from the bucket (invariant 3).
 * Layout byte by byte: docs/format.md, "Packs".
 */
import { loadXxh64, xxh64 } from '../checksum.js';
import { contentKey } from '../content-key.js';
import { ObjectFormatError } from '../format-error.js';

export const PACK_MAGIC = Buffer.from('HOARDPK1', 'ascii');
export const PACK_VERSION = 1;
export const PACK_ENTRY_BYTES = 53;
export const PACK_FOOTER_BYTES = 48;
export const STORE_ID_BYTES = 16;

export interface PackEntry {
  fingerprint: Uint8Array;
  offset: number;
  storedLength: number;
  rawLength: number;
  codec: number;
  checksum: bigint;
}

export interface PackTrailer {
  storeId: Uint8Array;
  entries: PackEntry[];
  /** Where the blob region ends and the trailer starts. */
  entriesOffset: number;
}

export class PackFormatError extends ObjectFormatError {
  override readonly name = 'PackFormatError';
  constructor(object: string, reason: string) {
    super('pack', object, reason);
  }
}

/** Trailers are checksummed synchronously: load the checksum first. */
export const loadPackHashing = loadXxh64;

/** Object key of a pack: named by the BLAKE3 of its bytes (invariant 2). */
export function packKey(packBytes: Uint8Array): string {
  return contentKey('packs', packBytes);
}

/**
 * Writes one 53-byte entry (shared by pack trailers and index segments). `view` is a
 * DataView of all of `out` (the caller makes one per buffer): its setBigUint64 writes the
 * checksum without the BigInt arithmetic, and garbage, of Buffer's writeBigUInt64LE, once
 * per blob twice over (trailer and segment).
 */
export function writeEntry(out: Buffer, o: number, e: PackEntry, view = viewOf(out)): void {
  out.set(e.fingerprint, o);
  view.setUint32(o + 32, e.offset, true);
  view.setUint32(o + 36, e.storedLength, true);
  view.setUint32(o + 40, e.rawLength, true);
  view.setUint8(o + 44, e.codec);
  view.setBigUint64(o + 45, e.checksum, true);
}

export const viewOf = (b: Uint8Array): DataView => new DataView(b.buffer, b.byteOffset, b.byteLength);

export function readEntry(b: Buffer, o: number): PackEntry {
  return {
    fingerprint: Uint8Array.from(b.subarray(o, o + 32)),
    offset: b.readUInt32LE(o + 32),
    storedLength: b.readUInt32LE(o + 36),
    rawLength: b.readUInt32LE(o + 40),
    codec: b.readUInt8(o + 44),
    checksum: b.readBigUInt64LE(o + 45),
  };
}

export function encodeTrailer(storeId: Uint8Array, entries: readonly PackEntry[], entriesOffset: number): Uint8Array {
  const out = Buffer.alloc(entries.length * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES);
  const view = viewOf(out);
  let o = 0;
  for (const e of entries) {
    writeEntry(out, o, e, view);
    o += PACK_ENTRY_BYTES;
  }
  PACK_MAGIC.copy(out, o);
  out.writeUInt16LE(PACK_VERSION, o + 8);
  out.writeUInt16LE(0, o + 10);
  out.writeUInt32LE(entries.length, o + 12);
  out.writeBigUInt64LE(BigInt(entriesOffset), o + 16);
  out.set(storeId, o + 24);
  out.writeBigUInt64LE(xxh64(out.subarray(0, o + 40)), o + 40);
  return out;
}

/** Reads the footer (the last PACK_FOOTER_BYTES of a pack of `packSize` bytes). */
export function decodeFooter(pack: string, footer: Uint8Array, packSize: number): { count: number; entriesOffset: number; storeId: Uint8Array } {
  const f = Buffer.from(footer.buffer, footer.byteOffset, footer.byteLength);
  if (f.length !== PACK_FOOTER_BYTES) throw new PackFormatError(pack, `footer is ${f.length} bytes, expected ${PACK_FOOTER_BYTES}`);
  if (!f.subarray(0, 8).equals(PACK_MAGIC)) throw new PackFormatError(pack, 'no HOARDPK1 footer at the end');
  const version = f.readUInt16LE(8);
  if (version !== PACK_VERSION) throw new PackFormatError(pack, `format version ${version}, this build reads ${PACK_VERSION}`);
  const count = f.readUInt32LE(12);
  const entriesOffset = Number(f.readBigUInt64LE(16));
  if (entriesOffset + count * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES !== packSize) {
    throw new PackFormatError(pack, `footer says ${count} entries from offset ${entriesOffset}, which does not end at the pack size ${packSize}`);
  }
  return { count, entriesOffset, storeId: Uint8Array.from(f.subarray(24, 40)) };
}

/** Parses and checks the trailer: `tail` = entries + footer (the last bytes of the pack). */
export function decodeTrailer(pack: string, tail: Uint8Array, packSize: number): PackTrailer {
  const t = Buffer.from(tail.buffer, tail.byteOffset, tail.byteLength);
  const { count, entriesOffset, storeId } = decodeFooter(pack, t.subarray(t.length - PACK_FOOTER_BYTES), packSize);
  if (t.length !== count * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES) {
    throw new PackFormatError(pack, `trailer is ${t.length} bytes, the footer implies ${count * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES}`);
  }
  const expected = t.readBigUInt64LE(t.length - 8);
  if (xxh64(t.subarray(0, t.length - 8)) !== expected) throw new PackFormatError(pack, 'trailer checksum does not match');
  const entries: PackEntry[] = [];
  let end = 0;
  for (let i = 0, o = 0; i < count; i++, o += PACK_ENTRY_BYTES) {
    const e = readEntry(t, o);
    if (e.offset !== end || e.offset + e.storedLength > entriesOffset) {
      throw new PackFormatError(pack, `entry ${i} at ${e.offset}+${e.storedLength} does not follow the previous blob inside the blob region`);
    }
    end = e.offset + e.storedLength;
    entries.push(e);
  }
  if (end !== entriesOffset) throw new PackFormatError(pack, `blobs end at ${end} but the trailer starts at ${entriesOffset}`);
  return { storeId, entries, entriesOffset };
}
