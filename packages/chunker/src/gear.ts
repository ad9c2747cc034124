/**
 * The gear table: 256 random 32-bit values, one per byte value, that the rolling hash adds
 * in. The default table is fixed (derived from a constant), so every hoard build cuts the
 * same data at the same places and stores written by one version dedup against the next.
 *
 * A store with a secret may pass a 64-bit seed: the table is then a seeded permutation of
 * the default one, so boundaries (and thus chunk lengths, which leak through object sizes)
 * cannot be predicted from public data alone.
 */
import { ChunkerParameterError } from './errors.js';

const DEFAULT_TABLE_SEED = 0x6a09e667f3bcc908n; // first 64 bits of frac(sqrt(2)): nothing up the sleeve
const U64 = (1n << 64n) - 1n;

/** splitmix64: tiny, well-distributed, and trivially reproducible in any language. */
function* splitmix64(seed: bigint): Generator<bigint, never> {
  let state = seed & U64;
  for (;;) {
    state = (state + 0x9e3779b97f4a7c15n) & U64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & U64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & U64;
    yield z ^ (z >> 31n);
  }
}

let defaultTable: Int32Array | undefined;

/** The unseeded table (shared, do not mutate). */
export function defaultGearTable(): Int32Array {
  if (!defaultTable) {
    const t = new Int32Array(256);
    const rng = splitmix64(DEFAULT_TABLE_SEED);
    for (let i = 0; i < 256; i++) t[i] = Number(rng.next().value >> 32n) | 0;
    defaultTable = t;
  }
  return defaultTable;
}

/** Accepts a seed as a bigint in [0, 2^64) or as exactly 8 bytes (little-endian). */
export function normalizeSeed(seed: bigint | Uint8Array): bigint {
  if (typeof seed === 'bigint') {
    if (seed < 0n || seed > U64) {
      throw new ChunkerParameterError('seed', seed, 'an unsigned 64-bit integer (0 .. 2^64-1)');
    }
    return seed;
  }
  if (seed instanceof Uint8Array) {
    if (seed.length !== 8) throw new ChunkerParameterError('seed', seed, 'exactly 8 bytes (a 64-bit seed)');
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(seed[i]);
    return v;
  }
  throw new ChunkerParameterError('seed', seed, 'a bigint or an 8-byte Uint8Array');
}

/** The gear table for a seed: a Fisher-Yates permutation of the default table. */
export function gearTable(seed?: bigint | Uint8Array): Int32Array {
  const base = defaultGearTable();
  if (seed === undefined) return base;
  const t = base.slice();
  const rng = splitmix64(normalizeSeed(seed) ^ DEFAULT_TABLE_SEED);
  for (let i = 255; i > 0; i--) {
    const j = Number(rng.next().value % BigInt(i + 1));
    const tmp = t[i];
    t[i] = t[j];
    t[j] = tmp;
  }
  return t;
}
