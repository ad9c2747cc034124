/**
 * What every pack writer shares (pack-writer.ts collects a pack in memory, pack-stream.ts
 * streams it into the object store): the size checks, the entry table as blobs arrive,
 * and when the pack is full. Where the bytes wait is the subclass's business.
 */
import type { EncodedBlob } from '../blob/codec.js';
import { PACK_ENTRY_BYTES, PACK_FOOTER_BYTES, STORE_ID_BYTES, type PackEntry } from './pack-format.js';

export const DEFAULT_PACK_BYTES = 16 * 1024 * 1024;
export const MIN_PACK_BYTES = 4 * 1024 * 1024;
export const MAX_PACK_BYTES = 128 * 1024 * 1024;

export abstract class PackFill {
  protected readonly entries: PackEntry[] = [];
  /** Bytes of blobs in the open pack: where the next one starts. */
  protected blobBytes = 0;

  constructor(
    protected readonly storeId: Uint8Array,
    readonly targetBytes: number,
  ) {
    if (storeId.length !== STORE_ID_BYTES) throw new RangeError(`store id must be ${STORE_ID_BYTES} bytes, got ${storeId.length}`);
    if (!Number.isSafeInteger(targetBytes) || targetBytes < MIN_PACK_BYTES || targetBytes > MAX_PACK_BYTES) {
      throw new RangeError(`pack size must be from 4 MiB to 128 MiB, got ${targetBytes} bytes`);
    }
  }

  get count(): number {
    return this.entries.length;
  }

  /** Entries of the blobs in the open pack so far (the writer's own array: read, do not keep). */
  get openEntries(): readonly PackEntry[] {
    return this.entries;
  }

  /** Bytes the pack would have if sealed now. */
  get size(): number {
    return this.blobBytes + this.entries.length * PACK_ENTRY_BYTES + PACK_FOOTER_BYTES;
  }

  get full(): boolean {
    return this.size >= this.targetBytes;
  }

  /**
   * Copies the blob into the pack; the caller may reuse `blob.stored` afterwards. The
   * fingerprint is copied too unless `owned` says the caller hands it over (never changes it).
   */
  add(fingerprint: Uint8Array, blob: EncodedBlob, owned = false): PackEntry {
    if (fingerprint.length !== 32) throw new RangeError(`fingerprint must be 32 bytes, got ${fingerprint.length}`);
    const entry: PackEntry = {
      fingerprint: owned ? fingerprint : Uint8Array.from(fingerprint),
      offset: this.blobBytes,
      storedLength: blob.stored.length,
      rawLength: blob.rawLength,
      codec: blob.codec,
      checksum: blob.checksum,
    };
    this.putBlobBytes(blob.stored);
    this.entries.push(entry);
    this.blobBytes += blob.stored.length;
    return entry;
  }

  /** Puts a blob's bytes at offset `blobBytes` of the open pack. */
  protected abstract putBlobBytes(bytes: Uint8Array): void;

  /** Empties the entry table for the next pack; returns the sealed pack's. */
  protected takeEntries(): PackEntry[] {
    this.blobBytes = 0;
    return this.entries.splice(0);
  }
}
