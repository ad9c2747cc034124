/**
 * Chunk fingerprints behind one small interface, so the rest of hoard never names a hash
 * function. BLAKE3-256 is the default: cryptographic (a fingerprint is a chunk's identity,
 * so collisions must be out of reach) and 3-6x faster here than node:crypto SHA-256.
 * Keyed BLAKE3 is used for stores that have a key: fingerprints then reveal nothing about
 * content to anyone without the key.
 */
import { createHash } from 'node:crypto';
import { Blake3Hasher, blake3 } from '@napi-rs/blake-hash';
import { ChunkerParameterError } from './errors.js';

export const FINGERPRINT_BYTES = 32;

export type FingerprintSpec = { algorithm: 'blake3' /** 32-byte key for keyed BLAKE3 */; key?: Uint8Array } | { algorithm: 'sha256' };

export interface Fingerprinter {
  readonly spec: FingerprintSpec;
  /** Always 32 bytes. */
  digest(data: Uint8Array): Uint8Array;
}

export function validateFingerprintSpec(spec: FingerprintSpec): FingerprintSpec {
  if (spec === null || typeof spec !== 'object') {
    throw new ChunkerParameterError('fingerprint', spec, "{ algorithm: 'blake3' } or { algorithm: 'sha256' }");
  }
  if (spec.algorithm === 'blake3') {
    if (spec.key !== undefined && (!(spec.key instanceof Uint8Array) || spec.key.length !== 32)) {
      throw new ChunkerParameterError('key', spec.key, 'exactly 32 bytes (a BLAKE3 key)');
    }
    return spec;
  }
  if (spec.algorithm === 'sha256') return spec;
  throw new ChunkerParameterError('algorithm', (spec as { algorithm: unknown }).algorithm, "'blake3' or 'sha256'");
}

export function createFingerprinter(spec: FingerprintSpec = { algorithm: 'blake3' }): Fingerprinter {
  validateFingerprintSpec(spec);
  if (spec.algorithm === 'sha256') {
    return { spec, digest: (data) => createHash('sha256').update(data).digest() };
  }
  if (spec.key) {
    const key = Buffer.from(spec.key);
    return { spec, digest: (data) => Blake3Hasher.newKeyed(key).update(data).digestBuffer() };
  }
  return { spec, digest: (data) => blake3(data) };
}

let zeros = new Uint8Array(0);

/** True when every byte is zero: such chunks are sparse regions and are never stored. */
export function isAllZero(data: Uint8Array): boolean {
  if (zeros.length < data.length) zeros = new Uint8Array(Math.max(data.length, 1 << 20));
  // Buffer.compare is a memcmp: an order of magnitude faster than a JS loop.
  return Buffer.compare(asBuffer(data), asBuffer(zeros).subarray(0, data.length)) === 0;
}

function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Hashes chunks, remembering the fingerprint of all-zero chunks per length: sparse images
 * are mostly zero chunks of a few lengths, and hashing them again would cost as much as
 * hashing data.
 */
export class ChunkHasher {
  private readonly zeroFingerprints = new Map<number, Uint8Array>();
  constructor(readonly fingerprinter: Fingerprinter) {}

  /** Writes the 32-byte fingerprint to out[outOffset..] and returns whether the chunk is all zero. */
  hashInto(data: Uint8Array, out: Uint8Array, outOffset: number): boolean {
    if (isAllZero(data)) {
      let fp = this.zeroFingerprints.get(data.length);
      if (!fp) {
        fp = this.fingerprinter.digest(data);
        this.zeroFingerprints.set(data.length, fp);
      }
      out.set(fp, outOffset);
      return true;
    }
    out.set(this.fingerprinter.digest(data), outOffset);
    return false;
  }
}
