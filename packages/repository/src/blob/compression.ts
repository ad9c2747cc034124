/**
 * A store's compression setting: which payload encoding new blobs get (docs/format.md,
 * "Blobs"). Written `zstd[:LEVEL] | lz4 | none` in store configs and policies; reading
 * never depends on it, each blob's codec byte says how it was written.
 */
import { BlobCodecConfigError } from './errors.js';

export type BlobCompression = { kind: 'zstd'; level: number } | { kind: 'lz4' } | { kind: 'none' };

export const ZSTD_MIN_LEVEL = 1;
export const ZSTD_MAX_LEVEL = 19;
export const ZSTD_DEFAULT_LEVEL = 3;

/** What a new store gets. */
export const DEFAULT_COMPRESSION: BlobCompression = Object.freeze({ kind: 'zstd', level: ZSTD_DEFAULT_LEVEL });
/** What a store whose config predates the setting has always used. */
export const LEGACY_COMPRESSION: BlobCompression = Object.freeze({ kind: 'lz4' });

export const COMPRESSION_SYNTAX = `zstd[:LEVEL] (LEVEL ${ZSTD_MIN_LEVEL}-${ZSTD_MAX_LEVEL}, default ${ZSTD_DEFAULT_LEVEL}), lz4 or none`;

/** `zstd`, `zstd:7`, `lz4`, `none`; undefined for anything else (see `describeCompressionProblem`). */
export function parseCompression(text: string): BlobCompression | undefined {
  if (text === 'lz4' || text === 'none') return { kind: text };
  const m = /^zstd(?::(\d{1,2}))?$/.exec(text);
  if (!m) return undefined;
  const level = m[1] === undefined ? ZSTD_DEFAULT_LEVEL : Number(m[1]);
  return level >= ZSTD_MIN_LEVEL && level <= ZSTD_MAX_LEVEL ? { kind: 'zstd', level } : undefined;
}

/** `parseCompression`, throwing a one-line error that names `where` and the accepted forms. */
export function compressionFrom(text: unknown, where: string): BlobCompression {
  const parsed = typeof text === 'string' ? parseCompression(text) : undefined;
  if (!parsed) throw new BlobCodecConfigError(`${where}: compression must be ${COMPRESSION_SYNTAX}; got ${JSON.stringify(text)}`);
  return parsed;
}

export function formatCompression(c: BlobCompression): string {
  return c.kind === 'zstd' ? `zstd:${c.level}` : c.kind;
}
