/**
 * How a chunk's bytes become a stored blob and back (format: docs/format.md, "Blobs").
 *
 *   raw bytes --zstd or lz4 (the store's setting) if smaller--> payload
 *             --AES-256-GCM if the store has a key--> stored
 *   stored --xxh64--> checksum (kept in the pack trailer, checked before anything else)
 *
 * The checksum covers the stored bytes so `verify --read-data` can scrub a pack without
 * decompressing or decrypting. The fingerprint is the GCM associated data: a stored blob
 * cannot be moved under another fingerprint without failing authentication.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { loadXxh64, xxh64 } from '../checksum.js';
import { type BlobCompression, LEGACY_COMPRESSION } from './compression.js';
import { EncodePool, type EncodedInPlace, type InPlaceChunk } from './encode-pool.js';
import { BlobCodecConfigError, BlobCorruptError } from './errors.js';
import { GCM_NONCE_BYTES, GCM_TAG_BYTES } from './gcm.js';
import { ZstdCodec } from './zstd.js';

/** Payload encodings (low 7 bits of the codec byte). */
export const PAYLOAD_RAW = 0;
export const PAYLOAD_LZ4 = 1;
export const PAYLOAD_ZSTD = 2;
/** High bit of the codec byte: the payload is AES-256-GCM encrypted. */
export const CODEC_ENCRYPTED = 0x80;

export { GCM_NONCE_BYTES, GCM_TAG_BYTES } from './gcm.js';
export const DATA_KEY_BYTES = 32;

export interface EncodedBlob {
  /** The bytes that go into the pack. */
  stored: Uint8Array;
  /** PAYLOAD_* | CODEC_ENCRYPTED. */
  codec: number;
  rawLength: number;
  /** xxh64 of `stored`. */
  checksum: bigint;
  /**
   * Set by encodeOffThread: hands `stored`'s memory back for the next chunk once the caller
   * is done with it (copied it into a pack). Calling it is optional (without, the memory is
   * garbage as usual); `stored` must not be used afterwards.
   */
  release?: () => void;
}

/** What decoding needs to know of a stored blob (from the index or the pack trailer). */
export interface StoredBlobInfo {
  codec: number;
  rawLength: number;
  /** xxh64 of the stored bytes; checked first when given. */
  checksum?: bigint;
}

/** Verifies a decoded chunk against its fingerprint (the chunker's Fingerprinter.digest). */
export type FingerprintCheck = (raw: Uint8Array) => Uint8Array;

export class BlobCodec {
  private readonly zstd = new ZstdCodec();

  private constructor(
    private readonly dataKey: Buffer | undefined,
    /** How new blobs are compressed; decoding follows each blob's codec byte. */
    readonly compression: BlobCompression,
  ) {}

  /**
   * `dataKey`: the store's 32-byte data key when the store is encrypted. `compression`:
   * the store's setting (lz4, what stores had before the setting existed, when not given).
   */
  static async create(options: { dataKey?: Uint8Array; compression?: BlobCompression } = {}): Promise<BlobCodec> {
    const { dataKey, compression = LEGACY_COMPRESSION } = options;
    if (dataKey !== undefined && (!(dataKey instanceof Uint8Array) || dataKey.length !== DATA_KEY_BYTES)) {
      throw new BlobCodecConfigError(`data key must be ${DATA_KEY_BYTES} bytes, got ${dataKey?.length ?? typeof dataKey}`);
    }
    await loadXxh64();
    return new BlobCodec(dataKey ? Buffer.from(dataKey) : undefined, compression);
  }

  get encrypted(): boolean {
    return this.dataKey !== undefined;
  }

  checksum(stored: Uint8Array): bigint {
    return xxh64(stored);
  }

  /**
   * `borrow`: the caller keeps `raw` unchanged until it is done with the result (e.g. the
   * PackWriter copied it), so an uncompressed, unencrypted blob may share its bytes.
   * `transient`: the caller copies `stored` before the next encode on this codec, so a zstd
   * frame may stay in the codec's scratch buffer (the encode workers).
   */
  async encode(raw: Uint8Array, fingerprint: Uint8Array, options: { borrow?: boolean; transient?: boolean } = {}): Promise<EncodedBlob> {
    if (this.compression.kind === 'lz4' && raw.length > 0) {
      const packed = await lz4().compress(asBuffer(raw));
      return packed.length < raw.length
        ? this.finish(raw, packed, PAYLOAD_LZ4, fingerprint, false, options)
        : this.finish(raw, raw, PAYLOAD_RAW, fingerprint, false, options);
    }
    return this.encodeSync(raw, fingerprint, options);
  }

  /** `encode` on the calling thread, lz4 included (the encode workers). */
  encodeSync(raw: Uint8Array, fingerprint: Uint8Array, options: { borrow?: boolean; transient?: boolean } = {}): EncodedBlob {
    if (this.compression.kind === 'zstd') {
      const frame = this.zstd.compress(raw, this.compression.level);
      if (frame) return this.finish(raw, frame, PAYLOAD_ZSTD, fingerprint, true, options);
    } else if (this.compression.kind === 'lz4' && raw.length > 0) {
      const packed = lz4().compressSync(asBuffer(raw));
      if (packed.length < raw.length) return this.finish(raw, packed, PAYLOAD_LZ4, fingerprint, false, options);
    }
    return this.finish(raw, raw, PAYLOAD_RAW, fingerprint, false, options);
  }

  /**
   * Seals `payload` when the store is encrypted, else makes sure the result does not share
   * memory the caller may reuse: `payloadIsScratch` means `payload` lives in memory the next
   * encode reuses (the zstd scratch buffer).
   */
  private finish(
    raw: Uint8Array,
    payload: Uint8Array,
    codec: number,
    fingerprint: Uint8Array,
    payloadIsScratch: boolean,
    options: { borrow?: boolean; transient?: boolean },
  ): EncodedBlob {
    let stored = payload;
    if (this.dataKey) {
      stored = this.seal(payload, fingerprint);
      codec |= CODEC_ENCRYPTED;
    } else if ((payloadIsScratch && !options.transient) || (payload === raw && !options.borrow)) {
      // The caller may reuse `raw`'s buffer (the chunker's reuseBuffers): keep our own copy.
      stored = Uint8Array.prototype.slice.call(payload);
    }
    return { stored, codec, rawLength: raw.length, checksum: this.checksum(stored) };
  }

  /**
   * `encode`, for a stream of chunks (a backup): compression and sealing run in the shared
   * encode workers, several chunks per message, so this thread keeps to chunking, lookups
   * and packing. Only an unencrypted store without compression encodes here (there is
   * nothing to do but the checksum). The caller may reuse `raw` as soon as this returns.
   */
  encodeOffThread(raw: Uint8Array, fingerprint: Uint8Array): Promise<EncodedBlob> {
    if ((this.compression.kind === 'none' && !this.dataKey) || raw.length === 0) return this.encode(raw, fingerprint);
    return EncodePool.shared().encode(raw, fingerprint, { dataKey: this.dataKey, compression: this.compression });
  }

  /**
   * Starts the encode workers encodeOffThread will use, if it will use them: a worker takes
   * tens of milliseconds to start, better spent while the caller still sets up than when
   * its first chunks wait. The promise settles when they have started.
   */
  startOffThread(): Promise<void> {
    return this.compression.kind !== 'none' || this.dataKey ? EncodePool.shared().online() : Promise.resolve();
  }

  /**
   * `encodeOffThread` for chunks the caller already holds in one buffer, each followed by
   * SEAL_OVERHEAD spare bytes: encoded where they lie, the buffer transferred to an encode
   * worker and back (EncodePool.encodeInPlace). `stored` of each blob is a view of the
   * returned buffer. Without compression or encryption nothing leaves this thread.
   */
  encodeInPlace(buffer: ArrayBuffer, chunks: readonly InPlaceChunk[]): Promise<EncodedInPlace> {
    if (this.compression.kind === 'none' && !this.dataKey) {
      const bytes = new Uint8Array(buffer);
      const blobs = chunks.map((c) => this.encodeSync(bytes.subarray(c.start, c.start + c.length), c.fingerprint, { borrow: true }));
      return Promise.resolve({ buffer, blobs });
    }
    return EncodePool.shared().encodeInPlace(buffer, chunks, { dataKey: this.dataKey, compression: this.compression });
  }

  /**
   * Checks and decodes a stored blob. Order: checksum if given (cheap, catches storage damage),
   * authentication, decompression, length, and, when `verify` is given, the fingerprint.
   * lz4 decompression runs on the libuv pool, zstd on the calling thread; `decodeSync` is
   * the same for worker threads.
   */
  async decode(stored: Uint8Array, blob: StoredBlobInfo, fingerprint: Uint8Array, verify?: FingerprintCheck): Promise<Uint8Array> {
    const payload = this.openPayload(stored, blob, fingerprint);
    let raw = payload;
    if (isLz4(blob.codec)) {
      try {
        raw = await lz4().uncompress(asBuffer(payload));
      } catch (err) {
        throw new BlobCorruptError('decompression', err instanceof Error ? err.message : String(err));
      }
    } else if (isZstd(blob.codec)) {
      raw = this.zstd.decompress(payload, blob.rawLength);
    }
    return this.checkRaw(raw, blob, fingerprint, verify);
  }

  /**
   * `decode` on the calling thread (the restore pipeline's decode workers). `uncompress`
   * replaces lz4-napi's for lz4 blocks (the workers decode into a reused arena); it returns
   * undefined for a malformed block. zstd frames decode into a new buffer.
   */
  decodeSync(
    stored: Uint8Array,
    blob: StoredBlobInfo,
    fingerprint: Uint8Array,
    verify?: FingerprintCheck,
    uncompress?: (payload: Uint8Array, rawLength: number) => Uint8Array | undefined,
  ): Uint8Array {
    const payload = this.openPayload(stored, blob, fingerprint);
    let raw: Uint8Array | undefined = payload;
    if (isLz4(blob.codec)) {
      try {
        // The payload's first 4 bytes are the size lz4-napi prepends (checked in openPayload).
        raw = uncompress ? uncompress(payload.subarray(4), blob.rawLength) : lz4().uncompressSync(asBuffer(payload));
      } catch (err) {
        throw new BlobCorruptError('decompression', err instanceof Error ? err.message : String(err));
      }
      if (raw === undefined) throw new BlobCorruptError('decompression', `not a valid lz4 block of ${blob.rawLength} bytes`);
    } else if (isZstd(blob.codec)) {
      raw = this.zstd.decompress(payload, blob.rawLength);
    }
    return this.checkRaw(raw, blob, fingerprint, verify);
  }

  /** Checksum, authentication and the payload's declared length: everything before decompression. */
  private openPayload(stored: Uint8Array, blob: StoredBlobInfo, fingerprint: Uint8Array): Uint8Array {
    // Restore passes no checksum: it re-hashes every chunk against its fingerprint, a
    // strictly stronger check, and the checksum lives in the pack trailer it never reads.
    if (blob.checksum !== undefined) {
      const actual = this.checksum(stored);
      if (actual !== blob.checksum) {
        throw new BlobCorruptError('checksum', `xxh64 of the stored bytes is ${hex64(actual)}, the trailer says ${hex64(blob.checksum)}`);
      }
    }
    let payload = stored;
    if (blob.codec & CODEC_ENCRYPTED) {
      if (!this.dataKey) throw new BlobCodecConfigError('blob is encrypted but no data key was given (is the repository opened with its passphrase?)');
      payload = this.open(stored, fingerprint);
    } else if (this.dataKey) {
      // An unencrypted blob in an encrypted store could only have been planted.
      throw new BlobCorruptError('authentication', 'blob is not encrypted but the store is');
    }
    const kind = blob.codec & ~CODEC_ENCRYPTED;
    if (kind === PAYLOAD_LZ4) {
      // lz4-napi's block starts with the uncompressed size (u32 LE). Checked first: a
      // forged size would make the decompressor allocate and work for seconds before failing.
      const declared = payload.length >= 4 ? new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0, true) : -1;
      if (declared !== blob.rawLength) {
        throw new BlobCorruptError('length', `the lz4 block holds ${declared} bytes, the trailer says ${blob.rawLength}`);
      }
    } else if (kind !== PAYLOAD_RAW && kind !== PAYLOAD_ZSTD) {
      // (zstd's declared size is checked by ZstdCodec.decompress, before it decodes anything.)
      throw new BlobCorruptError('decompression', `unknown payload codec ${kind}`);
    }
    return payload;
  }

  private checkRaw(raw: Uint8Array, blob: StoredBlobInfo, fingerprint: Uint8Array, verify: FingerprintCheck | undefined): Uint8Array {
    if (raw.length !== blob.rawLength) {
      throw new BlobCorruptError('length', `decoded ${raw.length} bytes, the trailer says ${blob.rawLength}`);
    }
    if (verify) {
      const digest = verify(raw);
      if (!equalBytes(digest, fingerprint)) {
        throw new BlobCorruptError('fingerprint', `content hashes to ${hexBytes(digest)}, expected ${hexBytes(fingerprint)}`);
      }
    }
    return raw;
  }

  /** nonce (12) || ciphertext || tag (16), fingerprint as associated data. */
  private seal(payload: Uint8Array, fingerprint: Uint8Array): Uint8Array {
    const nonce = randomBytes(GCM_NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.dataKey!, nonce);
    cipher.setAAD(fingerprint);
    const body = cipher.update(payload);
    const final = cipher.final();
    const out = new Uint8Array(GCM_NONCE_BYTES + body.length + final.length + GCM_TAG_BYTES);
    out.set(nonce, 0);
    out.set(body, GCM_NONCE_BYTES);
    out.set(final, GCM_NONCE_BYTES + body.length);
    out.set(cipher.getAuthTag(), out.length - GCM_TAG_BYTES);
    return out;
  }

  private open(stored: Uint8Array, fingerprint: Uint8Array): Uint8Array {
    if (stored.length < GCM_NONCE_BYTES + GCM_TAG_BYTES) {
      throw new BlobCorruptError('authentication', `encrypted blob of ${stored.length} bytes is shorter than nonce + tag`);
    }
    const nonce = stored.subarray(0, GCM_NONCE_BYTES);
    const tag = stored.subarray(stored.length - GCM_TAG_BYTES);
    const decipher = createDecipheriv('aes-256-gcm', this.dataKey!, nonce);
    decipher.setAAD(fingerprint);
    decipher.setAuthTag(tag);
    try {
      const body = decipher.update(stored.subarray(GCM_NONCE_BYTES, stored.length - GCM_TAG_BYTES));
      const final = decipher.final();
      return final.length === 0 ? body : Buffer.concat([body, final]);
    } catch {
      throw new BlobCorruptError('authentication', 'AES-GCM tag does not match (wrong key, or the blob or its fingerprint was altered)');
    }
  }
}

/**
 * lz4-napi, loaded on first use: the encode workers of a zstd store and the restore
 * decode workers (which decode lz4 with their own WebAssembly decoder) never need it, and
 * each worker isolate would otherwise carry the native module (a few MiB of RSS apiece).
 */
let lz4Napi: typeof import('lz4-napi') | undefined;
const lz4 = (): typeof import('lz4-napi') => (lz4Napi ??= createRequire(import.meta.url)('lz4-napi') as typeof import('lz4-napi'));

const isLz4 = (codec: number) => (codec & ~CODEC_ENCRYPTED) === PAYLOAD_LZ4;
const isZstd = (codec: number) => (codec & ~CODEC_ENCRYPTED) === PAYLOAD_ZSTD;
const asBuffer = (b: Uint8Array) => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

const hex64 = (v: bigint) => v.toString(16).padStart(16, '0');
const hexBytes = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
