/**
 * Incompressible bytes from AES-256-CTR keystream (encrypting zeros).
 *
 * Why AES-CTR: OpenSSL runs it at several GB/s per core with AES-NI, the output is
 * indistinguishable from random (no compressor or dedup engine finds structure in it), and
 * CTR is seekable: byte offset o of a stream lives in counter block o/16, so any 4 KiB page
 * can be produced without generating what precedes it.
 *
 * Each content stream is named by two uint32 words (hi, lo), placed in the top half of the
 * 128-bit counter block; the bottom 64 bits count 16-byte blocks. OpenSSL increments the
 * whole block big-endian, so a stream would only run into its neighbour after 2^64 blocks.
 */
import { createCipheriv, createHash, type Cipher } from 'node:crypto';

/** Largest single cipher.update; bounds the temporary output buffer OpenSSL returns. */
const MAX_UPDATE = 1 << 20;
const ZEROS = new Uint8Array(MAX_UPDATE);

export class Keystream {
  private readonly key: Buffer;
  // One live cipher is kept so that sequential reads of the same stream (the common case
  // when a day is streamed front to back) continue without re-keying, which costs ~3 µs.
  private cipher: Cipher | null = null;
  private curHi = -1;
  private curLo = -1;
  private curPos = -1;

  constructor(seed: number, domain: string) {
    this.key = createHash('sha256')
      .update(`hoard-bench-data/${domain}/${seed >>> 0}`)
      .digest();
  }

  /** Writes bytes [offset, offset + len) of stream (hi, lo) into dest at destOff. */
  fill(hi: number, lo: number, offset: number, dest: Uint8Array, destOff: number, len: number): void {
    if (this.cipher === null || hi !== this.curHi || lo !== this.curLo || offset !== this.curPos) {
      this.seek(hi, lo, offset);
    }
    const cipher = this.cipher!;
    let done = 0;
    while (done < len) {
      const n = Math.min(MAX_UPDATE, len - done);
      dest.set(cipher.update(ZEROS.subarray(0, n)), destOff + done);
      done += n;
    }
    this.curPos = offset + len;
  }

  private seek(hi: number, lo: number, offset: number): void {
    const block = Math.floor(offset / 16);
    const iv = Buffer.alloc(16);
    iv.writeUInt32BE(hi >>> 0, 0);
    iv.writeUInt32BE(lo >>> 0, 4);
    iv.writeUInt32BE(Math.floor(block / 4294967296) >>> 0, 8);
    iv.writeUInt32BE(block >>> 0, 12);
    const cipher = createCipheriv('aes-256-ctr', this.key, iv);
    // CTR keeps the position inside a partly used block, so discarding the leading bytes
    // leaves the cipher exactly at `offset`.
    const skip = offset - block * 16;
    if (skip > 0) cipher.update(ZEROS.subarray(0, skip));
    this.cipher = cipher;
    this.curHi = hi;
    this.curLo = lo;
    this.curPos = offset;
  }
}
