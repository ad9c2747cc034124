/**
 * Chunker parameters: what callers ask for (`ChunkerSpec`) and the validated, fully
 * resolved form the cut functions run on. Validation lives here only, so every entry
 * point (sequential, parallel, benchmarks) rejects the same mistakes with the same words.
 */
import { ChunkerParameterError, formatBytes } from './errors.js';
import { gearTable } from './gear.js';

export const KiB = 1024;
export const MiB = 1024 * 1024;
/** Largest chunk any spec may produce: bounds every buffer in the pipeline. */
export const MAX_CHUNK_SIZE = 16 * MiB;
export const MIN_AVG_SIZE = 4 * KiB;
export const MAX_AVG_SIZE = 8 * MiB;
/** Below this the 32-byte rolling window is not yet full at the first cut candidate. */
export const MIN_MIN_SIZE = 64;

export type FastCdcVariant = '2016' | '2020';

export interface FastCdcSpec {
  kind: 'fastcdc';
  /** '2016' rolls one byte per step; '2020' rolls two. Both produce identical cut points. */
  variant?: FastCdcVariant;
  /** Target average chunk size: a power of two from 4 KiB to 8 MiB. */
  avgSize: number;
  /** Default avgSize / 4. */
  minSize?: number;
  /** Default min(avgSize * 4, 16 MiB). */
  maxSize?: number;
  /** Normalized chunking level 0..3 (default 2): how hard sizes are pulled toward avgSize. */
  normalization?: number;
  /** Optional 64-bit secret that permutes the gear table (keyed stores). */
  seed?: bigint | Uint8Array;
}

export interface FixedSpec {
  kind: 'fixed';
  /** Block size, e.g. 4 MiB to match what the block layer sees. 4 KiB .. 16 MiB. */
  size: number;
}

export type ChunkerSpec = FastCdcSpec | FixedSpec;

export interface ResolvedFastCdc {
  kind: 'fastcdc';
  variant: FastCdcVariant;
  minSize: number;
  avgSize: number;
  maxSize: number;
  normalization: number;
  /** Mask used before avgSize: bits + normalization ones (harder to match). */
  maskS: number;
  /** Mask used after avgSize: bits - normalization ones (easier to match). */
  maskL: number;
  gear: Int32Array;
}

export interface ResolvedFixed {
  kind: 'fixed';
  minSize: number;
  maxSize: number;
  size: number;
}

export type ResolvedChunker = ResolvedFastCdc | ResolvedFixed;

function requireInteger(parameter: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new ChunkerParameterError(parameter, value, 'a positive integer number of bytes');
  }
  return value;
}

/**
 * A mask of `ones` set bits placed just below bit 31. The high bits of the gear hash
 * depend on the most bytes (bit j sees the last j+1 bytes), so the cut condition looks at
 * a ~31-byte window. Bit 31 itself is kept clear so the 2020 two-byte variant, which tests
 * the hash shifted left by one, sees exactly the same bits.
 */
export function cutMask(ones: number): number {
  return (((1 << ones) >>> 0) - 1) << (31 - ones);
}

export function resolveChunker(spec: ChunkerSpec): ResolvedChunker {
  if (spec === null || typeof spec !== 'object') {
    throw new ChunkerParameterError('chunker', spec, "an object with kind 'fastcdc' or 'fixed'");
  }
  if (spec.kind === 'fixed') {
    const size = requireInteger('size', spec.size);
    if (size < 4 * KiB || size > MAX_CHUNK_SIZE) {
      throw new ChunkerParameterError('size', size, `a block size from 4 KiB to ${formatBytes(MAX_CHUNK_SIZE)}`);
    }
    return { kind: 'fixed', size, minSize: size, maxSize: size };
  }
  if (spec.kind !== 'fastcdc') {
    throw new ChunkerParameterError('kind', (spec as { kind: unknown }).kind, "'fastcdc' or 'fixed'");
  }
  const variant = spec.variant ?? '2020';
  if (variant !== '2016' && variant !== '2020') {
    throw new ChunkerParameterError('variant', variant, "'2016' or '2020'");
  }
  const avgSize = requireInteger('avgSize', spec.avgSize);
  if (avgSize < MIN_AVG_SIZE || avgSize > MAX_AVG_SIZE) {
    throw new ChunkerParameterError('avgSize', avgSize, 'a power of two from 4 KiB to 8 MiB');
  }
  const bits = Math.log2(avgSize);
  if (!Number.isInteger(bits)) {
    throw new ChunkerParameterError('avgSize', avgSize, 'a power of two (the cut mask has log2(avgSize) bits), e.g. 65536 or 1048576');
  }
  const minSize = spec.minSize === undefined ? avgSize / 4 : requireInteger('minSize', spec.minSize);
  const maxSize = spec.maxSize === undefined ? Math.min(avgSize * 4, MAX_CHUNK_SIZE) : requireInteger('maxSize', spec.maxSize);
  if (minSize < MIN_MIN_SIZE) {
    throw new ChunkerParameterError('minSize', minSize, `at least ${MIN_MIN_SIZE} bytes`);
  }
  if (minSize > avgSize) {
    throw new ChunkerParameterError('minSize', minSize, `at most avgSize (${formatBytes(avgSize)})`);
  }
  if (maxSize > MAX_CHUNK_SIZE) {
    throw new ChunkerParameterError('maxSize', maxSize, `at most ${formatBytes(MAX_CHUNK_SIZE)}`);
  }
  if (maxSize < avgSize) {
    throw new ChunkerParameterError('maxSize', maxSize, `at least avgSize (${formatBytes(avgSize)})`);
  }
  const normalization = spec.normalization ?? 2;
  if (!Number.isInteger(normalization) || normalization < 0 || normalization > 3 || bits - normalization < 1) {
    throw new ChunkerParameterError('normalization', normalization, 'an integer level from 0 to 3');
  }
  return {
    kind: 'fastcdc',
    variant,
    minSize,
    avgSize,
    maxSize,
    normalization,
    maskS: cutMask(bits + normalization),
    maskL: cutMask(bits - normalization),
    gear: gearTable(spec.seed),
  };
}
