/**
 * A chunker spec as it travels in a session's begin answer. JSON has no bytes or bigints,
 * so an encrypted store's gear seed goes as `{"base64": ...}` (bytes) or `{"bigint": ...}`
 * (decimal text); both sides use this pair, so the agent chunks exactly as the store does.
 */
import type { ChunkerSpec } from '@hoard/chunker';
import type { WireChunker } from './api/replies.js';

export function chunkerToWire(spec: ChunkerSpec): WireChunker {
  const out: Record<string, unknown> = { ...spec };
  if (spec.kind === 'fastcdc' && spec.seed !== undefined) {
    out.seed = spec.seed instanceof Uint8Array ? { base64: Buffer.from(spec.seed).toString('base64') } : { bigint: spec.seed.toString() };
  }
  return out as WireChunker;
}

export function chunkerFromWire(json: Record<string, unknown>): ChunkerSpec {
  const spec = { ...json };
  const seed = spec.seed as { base64?: string; bigint?: string } | undefined;
  if (seed && typeof seed === 'object') spec.seed = seed.base64 !== undefined ? Uint8Array.from(Buffer.from(seed.base64, 'base64')) : BigInt(seed.bigint!);
  return spec as unknown as ChunkerSpec;
}
