/**
 * The agent <-> media server wire format: JSON bodies for control calls, two binary
 * formats for the data path. Byte layouts are specified in docs/protocol.md; this module
 * is their single implementation, used by both sides.
 *
 * Integers are little-endian. Fingerprints are 32 bytes (BLAKE3-256).
 */

import type { ErrorCode } from '@hoard/errors';

export const PROTOCOL_VERSION = 1;
export const FINGERPRINT_BYTES = 32;

/** Limits both sides agree on (the server announces its own in BeginSessionResponse). */
export const MAX_QUERY_FINGERPRINTS = 65_536;
export const MAX_BATCH_CHUNKS = 65_536;
/** References per answer of GET /v1/jobs/J/snapshots/ID/chunks. */
export const MAX_CHUNK_REFS = 65_536;
/** Bytes the codec may add to a chunk (AES-GCM nonce and tag; lz4 is kept only when smaller), rounded up. */
export const BLOB_FRAMING_BYTES = 64;
/** Largest stored blob a batch may carry: 16 MiB chunk + codec framing. */
export const MAX_STORED_BLOB_BYTES = 16 * 1024 * 1024 + BLOB_FRAMING_BYTES;
/** Largest JSON body the server reads. */
export const MAX_JSON_BYTES = 1024 * 1024;

export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_BINARY = 'application/octet-stream';

/** A bad request body or frame; the server answers 400 with this message. */
export class WireFormatError extends Error {
  override readonly name: string = 'WireFormatError';
  readonly code: ErrorCode = 'invalid_request';
}

// ---------------------------------------------------------------------------------------
// "Which of these fingerprints are missing?"
//   request:  N x 32-byte fingerprints (N = body length / 32, 1 <= N <= MAX_QUERY_FINGERPRINTS)
//   response: ceil(N / 8) bytes; bit (i & 7) of byte (i >> 3) set = the server lacks
//             fingerprint i and wants its blob.
// ---------------------------------------------------------------------------------------

export function encodeMissingBitmap(missing: readonly boolean[]): Uint8Array {
  const out = new Uint8Array((missing.length + 7) >> 3);
  for (let i = 0; i < missing.length; i++) if (missing[i]) out[i >> 3]! |= 1 << (i & 7);
  return out;
}

export function isMissing(bitmap: Uint8Array, i: number): boolean {
  return (bitmap[i >> 3]! & (1 << (i & 7))) !== 0;
}

export function checkQueryBody(bytes: number): number {
  if (bytes === 0 || bytes % FINGERPRINT_BYTES !== 0) {
    throw new WireFormatError(`a fingerprint query is a whole number of 32-byte fingerprints; got ${bytes} bytes`);
  }
  const n = bytes / FINGERPRINT_BYTES;
  if (n > MAX_QUERY_FINGERPRINTS) throw new WireFormatError(`a fingerprint query holds at most ${MAX_QUERY_FINGERPRINTS} fingerprints; got ${n}`);
  return n;
}

// ---------------------------------------------------------------------------------------
// Batch: the next run of a session's chunk references plus the blobs the server asked for.
//   header  16 bytes: magic "HBAT" | u32 version (1) | u32 refCount | u32 blobCount
//   refs    refCount x 37 bytes: u32 length | u8 flags (bit 0: all-zero chunk) | fingerprint
//   blobs   blobCount x (41-byte header + stored bytes):
//           fingerprint (32) | u8 codec | u32 rawLength | u32 storedLength | stored bytes
// ---------------------------------------------------------------------------------------

export const BATCH_MAGIC = 0x54414248; // "HBAT" read as little-endian u32
export const BATCH_HEADER_BYTES = 16;
export const REF_BYTES = 37;
export const BLOB_HEADER_BYTES = 41;
const FLAG_ZERO = 1;

export interface BatchHeader {
  refCount: number;
  blobCount: number;
}

export interface WireRef {
  length: number;
  zero: boolean;
  fingerprint: Uint8Array;
}

export interface BlobHeader {
  fingerprint: Uint8Array;
  codec: number;
  rawLength: number;
  storedLength: number;
}

export function encodeBatchHeader(header: BatchHeader): Buffer {
  const out = Buffer.allocUnsafe(BATCH_HEADER_BYTES);
  out.writeUInt32LE(BATCH_MAGIC, 0);
  out.writeUInt32LE(PROTOCOL_VERSION, 4);
  out.writeUInt32LE(header.refCount, 8);
  out.writeUInt32LE(header.blobCount, 12);
  return out;
}

export function decodeBatchHeader(b: Uint8Array): BatchHeader {
  const v = view(b);
  if (b.length < BATCH_HEADER_BYTES || v.getUint32(0, true) !== BATCH_MAGIC) throw new WireFormatError('a batch starts with the 16-byte HBAT header');
  const version = v.getUint32(4, true);
  if (version !== PROTOCOL_VERSION)
    throw new WireFormatError(
      `batch version ${version} is not supported (this server speaks ${PROTOCOL_VERSION}); upgrade the agent or the server so they match`,
    );
  const refCount = v.getUint32(8, true);
  const blobCount = v.getUint32(12, true);
  if (refCount > MAX_BATCH_CHUNKS) throw new WireFormatError(`a batch holds at most ${MAX_BATCH_CHUNKS} references; the header says ${refCount}`);
  if (blobCount > refCount)
    throw new WireFormatError(`a batch carries at most one blob per reference; the header says ${blobCount} blobs for ${refCount} references`);
  return { refCount, blobCount };
}

export function encodeRefs(refs: readonly WireRef[]): Buffer {
  const out = Buffer.alloc(refs.length * REF_BYTES);
  for (let i = 0; i < refs.length; i++) {
    const r = refs[i]!;
    const at = i * REF_BYTES;
    out.writeUInt32LE(r.length, at);
    out[at + 4] = r.zero ? FLAG_ZERO : 0;
    if (!r.zero) out.set(r.fingerprint, at + 5);
  }
  return out;
}

/** Decodes references; `maxChunk` bounds each length (the session's chunker maximum). */
export function decodeRefs(b: Uint8Array, count: number, maxChunk: number): WireRef[] {
  const v = view(b);
  const refs: WireRef[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * REF_BYTES;
    const length = v.getUint32(at, true);
    const flags = b[at + 4]!;
    if (length === 0 || length > maxChunk) throw new WireFormatError(`reference ${i}: chunk length ${length} is outside 1..${maxChunk}`);
    if (flags & ~FLAG_ZERO) throw new WireFormatError(`reference ${i}: unknown flags 0x${flags.toString(16)}`);
    refs[i] = { length, zero: (flags & FLAG_ZERO) !== 0, fingerprint: b.subarray(at + 5, at + 5 + FINGERPRINT_BYTES) };
  }
  return refs;
}

export function encodeBlobHeader(h: BlobHeader): Buffer {
  const out = Buffer.allocUnsafe(BLOB_HEADER_BYTES);
  out.set(h.fingerprint, 0);
  out[32] = h.codec;
  out.writeUInt32LE(h.rawLength, 33);
  out.writeUInt32LE(h.storedLength, 37);
  return out;
}

export function decodeBlobHeader(b: Uint8Array, index: number, maxChunk: number): BlobHeader {
  const v = view(b);
  const rawLength = v.getUint32(33, true);
  const storedLength = v.getUint32(37, true);
  if (rawLength === 0 || rawLength > maxChunk) throw new WireFormatError(`blob ${index}: raw length ${rawLength} is outside 1..${maxChunk}`);
  // A stored blob is its chunk plus at most the codec's framing: a larger one cannot be
  // valid, and accepting it would make the server buffer up to 16 MiB for a small chunk.
  const maxStored = Math.min(MAX_STORED_BLOB_BYTES, maxChunk + BLOB_FRAMING_BYTES);
  if (storedLength === 0 || storedLength > maxStored) throw new WireFormatError(`blob ${index}: stored length ${storedLength} is outside 1..${maxStored}`);
  return { fingerprint: Uint8Array.prototype.slice.call(b, 0, 32), codec: b[32]!, rawLength, storedLength };
}

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}
