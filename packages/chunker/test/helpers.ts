import { randomFillSync } from 'node:crypto';

/** Deterministic pseudo-random bytes (xorshift32), so failures reproduce from a seed. */
export function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 0x9e3779b9;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export function cryptoRandom(length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i += 65536) randomFillSync(out, i, Math.min(65536, length - i));
  return out;
}

/** Splits `data` into reads of the given sizes (cycled), as a stream would deliver them. */
export async function* inReads(data: Uint8Array, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  let k = 0;
  for (let pos = 0; pos < data.length; k++) {
    const n = Math.max(1, sizes[k % sizes.length]);
    // copy: a real stream hands out fresh buffers, and the chunker must not rely on ours
    yield data.slice(pos, Math.min(data.length, pos + n));
    pos += n;
  }
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
