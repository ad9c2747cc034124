/**
 * Seeded randomness for the generators.
 *
 * Every random decision is derived from a hash of *what* is being decided (seed, day, table,
 * row id, page index...) rather than from one long PRNG stream, so any piece of content can
 * be recomputed in isolation: that is what makes pages randomly accessible and rows a pure
 * function of (seed, table, rowId, version). Math.random is never used.
 */

/** murmur3's 32-bit finalizer: a cheap bijective avalanche of one word. */
export function mix32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  x ^= x >>> 16;
  return x >>> 0;
}

// Fixed-arity variants because they sit on hot paths (one per text page / SQL row) where
// a rest parameter would allocate an array.
export function hash2(a: number, b: number): number {
  return mix32(Math.imul(mix32(a ^ 0x9e3779b9), 0x27d4eb2f) ^ (b >>> 0));
}
export function hash3(a: number, b: number, c: number): number {
  return hash2(hash2(a, b), c);
}
export function hash4(a: number, b: number, c: number, d: number): number {
  return hash2(hash2(hash2(a, b), c), d);
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Chaotic PRNG): passes PractRand to many TB, needs
 * only 32-bit integer ops, which V8 keeps unboxed. Plenty for synthetic workloads.
 */
export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, stream = 0) {
    this.a = mix32(seed ^ 0xa3b195fd);
    this.b = mix32(stream ^ 0x5bd1e995);
    this.c = mix32(seed + stream + 0x1b873593);
    this.d = 1;
    // Warm-up so that nearby seeds (day 1, day 2, ...) decorrelate.
    for (let i = 0; i < 12; i++) this.u32();
  }

  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Uniform in [0, 1) with 53 bits, so int() stays unbiased for counts beyond 2^32. */
  float(): number {
    return ((this.u32() >>> 5) * 67108864 + (this.u32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  /**
   * Log-uniform (reciprocal distribution) integer in [lo, hi]: every octave is equally
   * likely, so small values dominate by count while large ones still dominate by volume,
   * the usual shape of file, region and write sizes.
   */
  logUniform(lo: number, hi: number): number {
    const v = Math.floor(Math.exp(Math.log(lo) + this.float() * (Math.log(hi + 1) - Math.log(lo))));
    return v < lo ? lo : Math.min(v, hi);
  }

  /** Exponential with the given mean (memoryless gaps between nearby writes). */
  exp(mean: number): number {
    return -Math.log(1 - this.float()) * mean;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}
