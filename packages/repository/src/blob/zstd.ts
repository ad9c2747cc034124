/**
 * zstd payloads (codec 2, docs/format.md "Blobs"): one zstd frame with the content size in
 * its header, no dictionary, no frame checksum (the blob checksum and the fingerprint cover
 * it). zstd-napi is a native binding that runs on the calling thread: one compression and
 * one decompression context per codec, reused, so no per-blob context setup.
 */
import { createRequire } from 'node:module';
import { BlobCorruptError } from './errors.js';

/** The low-level binding: its CommonJS exports come from a .node file, which ESM cannot name. */
const zstd: typeof import('zstd-napi/binding.js') = createRequire(import.meta.url)('zstd-napi/binding.js');

/** Bytes of each probe slice, and how many slices (start, evenly spaced, end). */
const PROBE_SLICE = 4096;
const PROBE_SLICES = 4;
/** The probe must save at least this share of the sample for the full attempt to be made. */
const PROBE_MIN_SAVING = 1 / 32;

export class ZstdCodec {
  private readonly cctx = new zstd.CCtx();
  private readonly dctx = new zstd.DCtx();
  private scratch = Buffer.alloc(0);
  private readonly sample = Buffer.allocUnsafe(PROBE_SLICE * PROBE_SLICES);
  /**
   * The last full attempt saved at least PROBE_MIN_SAVING: the next chunk skips the probe.
   * Compressible data comes in runs (a dump, the used part of a disk), where the probe is
   * pure cost (a third of zstd's time on 16-64 KiB chunks of a SQL dump); where the data
   * turns random, one full attempt fails and probing resumes.
   */
  private compressing = false;

  /**
   * The compressed frame, or undefined when it would not be smaller than `raw` (the caller
   * then stores `raw`). The returned bytes are valid until the next call.
   */
  compress(raw: Uint8Array, level: number): Uint8Array | undefined {
    if (raw.length === 0 || (!this.compressing && !this.probe(raw))) return undefined;
    const out = this.scratchFor(zstd.compressBound(raw.length));
    const n = this.cctx.compress(out, raw, level);
    this.compressing = n <= raw.length * (1 - PROBE_MIN_SAVING);
    return n < raw.length ? out.subarray(0, n) : undefined;
  }

  /**
   * Entropy probe: zstd level 1 over a few 4 KiB slices of the chunk. Random or already
   * compressed data (media, archives, encrypted files) saves nothing there, and is then
   * stored raw without a full attempt. Level 1 sees both repeats and a skewed byte
   * histogram (its literals are Huffman coded), unlike lz4 or a byte-entropy estimate alone.
   * Chunks up to the sample's size skip the probe: the full attempt costs the same.
   */
  private probe(raw: Uint8Array): boolean {
    if (raw.length <= PROBE_SLICE * PROBE_SLICES) return true;
    const sample = this.sample;
    const stride = (raw.length - PROBE_SLICE) / (PROBE_SLICES - 1);
    for (let i = 0; i < PROBE_SLICES; i++) {
      const at = Math.floor(i * stride);
      sample.set(raw.subarray(at, at + PROBE_SLICE), i * PROBE_SLICE);
    }
    const out = this.scratchFor(zstd.compressBound(sample.length));
    const n = this.cctx.compress(out, sample, 1);
    return n <= sample.length * (1 - PROBE_MIN_SAVING);
  }

  /**
   * Decodes one frame into a new buffer of exactly `rawLength` bytes. The frame header's
   * content size is checked against `rawLength` first (a forged size is refused before any
   * work), and the frame must fill the payload exactly.
   */
  decompress(payload: Uint8Array, rawLength: number): Uint8Array {
    let declared: number | null;
    let frameLength: number;
    try {
      declared = zstd.getFrameContentSize(payload);
      frameLength = zstd.findFrameCompressedSize(payload);
    } catch (err) {
      throw new BlobCorruptError('decompression', `not a zstd frame: ${message(err)}`);
    }
    if (declared !== rawLength) {
      throw new BlobCorruptError('length', `the zstd frame holds ${declared ?? 'an undeclared number of'} bytes, the trailer says ${rawLength}`);
    }
    if (frameLength !== payload.length) {
      throw new BlobCorruptError('decompression', `the zstd frame is ${frameLength} bytes, the payload ${payload.length}`);
    }
    const out = Buffer.allocUnsafe(rawLength);
    let n: number;
    try {
      n = this.dctx.decompress(out, payload);
    } catch (err) {
      throw new BlobCorruptError('decompression', `zstd: ${message(err)}`);
    }
    if (n !== rawLength) throw new BlobCorruptError('length', `decoded ${n} bytes, the trailer says ${rawLength}`);
    return out;
  }

  private scratchFor(bytes: number): Buffer {
    if (this.scratch.length < bytes) this.scratch = Buffer.allocUnsafe(bytes);
    return this.scratch;
  }
}

const message = (err: unknown) => (err instanceof Error ? err.message : String(err));
