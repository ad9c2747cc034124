/**
 * Collects encoded blobs into one pack object. Memory is bounded by the target pack size
 * (16 MiB by default, 4..128 MiB): the caller seals and uploads when `full`.
 *
 * Blobs are copied straight into one pack buffer, so `add` may be given a blob whose
 * bytes the caller reuses afterwards, and sealing needs no second copy. Buffers of sealed
 * packs can be handed back with `recycle` once uploaded: fresh memory costs a page fault
 * per 4 KiB on first touch, which at 16 MiB a pack is measurable.
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

/** Room beyond the target for the blob that crosses it and the trailer (grown if exceeded). */
const SLACK_BYTES = 1024 * 1024;
const RECYCLED_MAX = 2;

export class PackWriter {
  private buffer: Buffer | undefined;
  private readonly recycled: Buffer[] = [];
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

  /** Copies the blob into the pack; the caller may reuse `blob.stored` afterwards. */
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
    this.reserve(this.blobBytes + blob.stored.length);
    this.buffer!.set(blob.stored, this.blobBytes);
    this.entries.push(entry);
    this.blobBytes += blob.stored.length;
    return entry;
  }

  /** The finished pack; the writer is empty again afterwards. */
  seal(): SealedPack {
    const trailer = encodeTrailer(this.storeId, this.entries, this.blobBytes);
    this.reserve(this.blobBytes + trailer.length);
    const buffer = this.buffer!;
    buffer.set(trailer, this.blobBytes);
    const bytes = buffer.subarray(0, this.blobBytes + trailer.length);
    const entries = this.entries.splice(0);
    this.buffer = undefined;
    this.blobBytes = 0;
    return { key: packKey(bytes), bytes, entries };
  }

  /** Gives back the bytes of a sealed pack that is no longer needed (uploaded). */
  recycle(bytes: Uint8Array): void {
    const buffer = Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength);
    if (buffer.length >= this.targetBytes + SLACK_BYTES && this.recycled.length < RECYCLED_MAX) this.recycled.push(buffer);
  }

  private reserve(bytes: number): void {
    if (!this.buffer) this.buffer = this.recycled.pop() ?? Buffer.allocUnsafeSlow(this.targetBytes + SLACK_BYTES);
    if (bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafeSlow(Math.max(bytes, this.buffer.length * 2));
    this.buffer.copy(grown, 0, 0, this.blobBytes);
    this.buffer = grown;
  }
}
