/**
 * Collects encoded blobs into one pack object. Memory is bounded by the target pack size
 * (16 MiB by default, 4..128 MiB): the caller seals and uploads when `full`.
 */
import type { EncodedBlob } from '../blob/codec.js';
import { encodeTrailer, packKey, PACK_ENTRY_BYTES, PACK_FOOTER_BYTES, STORE_ID_BYTES, type PackEntry } from './pack-format.js';

export const DEFAULT_PACK_BYTES = 16 * 1024 * 1024;
export const MIN_PACK_BYTES = 4 * 1024 * 1024;
export const MAX_PACK_BYTES = 128 * 1024 * 1024;

export interface SealedPack {
  key: string;
  bytes: Uint8Array;
  entries: PackEntry[];
}

export class PackWriter {
  private readonly blobs: Uint8Array[] = [];
  private readonly entries: PackEntry[] = [];
  private blobBytes = 0;

  constructor(
    private readonly storeId: Uint8Array,
    readonly targetBytes = DEFAULT_PACK_BYTES,
  ) {
    if (storeId.length !== STORE_ID_BYTES) throw new RangeError(`store id must be ${STORE_ID_BYTES} bytes, got ${storeId.length}`);
    if (!Number.isSafeInteger(targetBytes) || targetBytes < MIN_PACK_BYTES || targetBytes > MAX_PACK_BYTES) {
      throw new RangeError(`pack size must be from 4 MiB to 128 MiB, got ${targetBytes} bytes`);
    }
  }

  get count(): number {
    return this.entries.length;
  }

  /** Bytes the pack would have if sealed now. */
  get size(): number {
    return this.blobBytes + this.entries.length * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES;
  }

  get full(): boolean {
    return this.size >= this.targetBytes;
  }

  add(fingerprint: Uint8Array, blob: EncodedBlob): PackEntry {
    if (fingerprint.length !== 32) throw new RangeError(`fingerprint must be 32 bytes, got ${fingerprint.length}`);
    const entry: PackEntry = {
      fingerprint: Uint8Array.from(fingerprint),
      offset: this.blobBytes,
      storedLength: blob.stored.length,
      rawLength: blob.rawLength,
      codec: blob.codec,
      checksum: blob.checksum,
    };
    this.blobs.push(blob.stored);
    this.entries.push(entry);
    this.blobBytes += blob.stored.length;
    return entry;
  }

  /** The finished pack; the writer is empty again afterwards. */
  seal(): SealedPack {
    const trailer = encodeTrailer(this.storeId, this.entries, this.blobBytes);
    const bytes = new Uint8Array(this.blobBytes + trailer.length);
    let o = 0;
    for (const b of this.blobs) {
      bytes.set(b, o);
      o += b.length;
    }
    bytes.set(trailer, o);
    const entries = this.entries.splice(0);
    this.blobs.length = 0;
    this.blobBytes = 0;
    return { key: packKey(bytes), bytes, entries };
  }
}
