import { createHash } from 'node:crypto';

export async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const p of stream) parts.push(p);
  return Buffer.concat(parts);
}

export async function sha256(stream: AsyncIterable<Uint8Array>): Promise<{ hash: string; bytes: number; pieces: number[] }> {
  const h = createHash('sha256');
  let bytes = 0;
  const pieces: number[] = [];
  for await (const p of stream) {
    h.update(p);
    bytes += p.length;
    pieces.push(p.length);
  }
  return { hash: h.digest('hex'), bytes, pieces };
}

/**
 * Compressed size an LZ4 block compressor (greedy, 64 KiB window, 4-byte minimum match,
 * LZ4's sequence encoding) would produce: the "lz4-like" yardstick for text pages, without
 * a dependency.
 */
export function lz4Size(src: Uint8Array): number {
  const HBITS = 16;
  const table = new Int32Array(1 << HBITS).fill(-1);
  const n = src.length;
  const read32 = (p: number): number => src[p] | (src[p + 1] << 8) | (src[p + 2] << 16) | (src[p + 3] << 24);
  let out = 0;
  const sequence = (literals: number, match: number): void => {
    out += 1 + literals + (literals >= 15 ? Math.floor((literals - 15) / 255) + 1 : 0);
    if (match > 0) {
      out += 2;
      if (match - 4 >= 15) out += Math.floor((match - 4 - 15) / 255) + 1;
    }
  };
  let anchor = 0;
  let i = 0;
  while (i < n - 12) {
    const v = read32(i);
    const h = Math.imul(v, 2654435761) >>> (32 - HBITS);
    const c = table[h];
    table[h] = i;
    if (c >= 0 && i - c <= 65535 && read32(c) === v) {
      let m = 4;
      while (i + m < n - 5 && src[c + m] === src[i + m]) m++;
      sequence(i - anchor, m);
      i += m;
      anchor = i;
    } else {
      i++;
    }
  }
  sequence(n - anchor, 0);
  return out;
}

const GEAR = (() => {
  const t = new Int32Array(256);
  for (let i = 0; i < 256; i++) t[i] = createHash('sha256').update(`gear${i}`).digest().readInt32LE(0);
  return t;
})();

/**
 * Plain gear-hash content-defined chunking (FastCDC without normalisation), enough to show
 * that shifted content still deduplicates; hoard's real chunker lives in packages/chunker.
 */
export function cdcChunks(buf: Uint8Array, avg: number): Uint8Array[] {
  const mask = (avg - 1) << (32 - Math.log2(avg));
  const min = avg / 4;
  const max = avg * 8;
  const out: Uint8Array[] = [];
  for (let s = 0; s < buf.length; ) {
    const end = Math.min(buf.length, s + max);
    let cut = end;
    let h = 0;
    for (let i = s + min; i < end; i++) {
      h = ((h << 1) + GEAR[buf[i]]) | 0;
      if ((h & mask) === 0) {
        cut = i + 1;
        break;
      }
    }
    out.push(buf.subarray(s, cut));
    s = cut;
  }
  return out;
}

export function fixedChunks(buf: Uint8Array, size: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let s = 0; s < buf.length; s += size) out.push(buf.subarray(s, s + size));
  return out;
}

/** Fraction of `next`'s bytes in chunks that already occur in `prev`. */
export function reusedFraction(prev: Uint8Array[], next: Uint8Array[]): number {
  const h = (c: Uint8Array): string => createHash('sha1').update(c).digest('hex');
  const seen = new Set(prev.map(h));
  let reused = 0;
  let total = 0;
  for (const c of next) {
    total += c.length;
    if (seen.has(h(c))) reused += c.length;
  }
  return reused / total;
}
