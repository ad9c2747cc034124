/**
 * Collects encoded blobs into one pack object. Memory is bounded by the target pack size
 * (16 MiB by default, 4..128 MiB): the caller seals and uploads when `full`.
 *
 * Blobs are copied straight into one pack buffer, so `add` may be given a blob whose
 * bytes the caller reuses afterwards, and sealing needs no second copy. Buffers of sealed
 * packs can be handed back with `recycle` once uploaded: fresh memory costs a page fault
 * per 4 KiB on first touch, which at 16 MiB a pack is measurable.
 */
import { encodeTrailer, packKey, type PackEntry } from './pack-format.js';
import { DEFAULT_PACK_BYTES, PackFill } from './pack-fill.js';

export { DEFAULT_PACK_BYTES, MAX_PACK_BYTES, MIN_PACK_BYTES } from './pack-fill.js';

export interface SealedPack {
  key: string;
  bytes: Uint8Array;
  entries: PackEntry[];
}

/** Room beyond the target for the blob that crosses it and the trailer (grown if exceeded). */
const SLACK_BYTES = 1024 * 1024;
const RECYCLED_MAX = 2;

export class PackWriter extends PackFill {
  private buffer: Buffer | undefined;
  private readonly recycled: Buffer[] = [];

  constructor(storeId: Uint8Array, targetBytes = DEFAULT_PACK_BYTES) {
    super(storeId, targetBytes);
  }

  protected putBlobBytes(bytes: Uint8Array): void {
    this.reserve(this.blobBytes + bytes.length);
    this.buffer!.set(bytes, this.blobBytes);
  }

  /** The finished pack; the writer is empty again afterwards. */
  seal(): SealedPack {
    const trailer = encodeTrailer(this.storeId, this.entries, this.blobBytes);
    this.reserve(this.blobBytes + trailer.length);
    const buffer = this.buffer!;
    buffer.set(trailer, this.blobBytes);
    const bytes = buffer.subarray(0, this.blobBytes + trailer.length);
    const entries = this.takeEntries();
    this.buffer = undefined;
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
