/**
 * The dedup figure, one rule wherever the CLI prints one (docs/cli.md, "Dedup"):
 *
 *   dedup = logical bytes / new bytes
 *
 * where the new bytes are the raw bytes of the chunks the store did not have, before
 * compression (a backup's `bytesNew`; a store's unique bytes). Compression is a figure of
 * its own (unique / stored) and never part of dedup. A backup that found everything in
 * the store has no quotient to show: it is `all known`; one whose new bytes are a sliver
 * of what it read shows `>1000x` rather than a number that says nothing (3159125x).
 */

/** Above this, the figure is shown as `>1000x`. */
export const DEDUP_SHOWN_UP_TO = 1000;

const isByteCount = (n: number | null | undefined): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;

/**
 * Logical bytes / new bytes as a number (for --json), or null when there is no quotient:
 * nothing read, nothing new, or a count that is not one.
 */
export function dedupFactor(logicalBytes: number | null | undefined, newBytes: number | null | undefined): number | null {
  if (!isByteCount(logicalBytes) || !isByteCount(newBytes) || logicalBytes === 0 || newBytes === 0) return null;
  return logicalBytes / newBytes;
}

/**
 * The dedup figure as tables and progress lines print it: `-` when it does not apply
 * (nothing read, a task, figures not known), `all known` when nothing was new, `>1000x`
 * above DEDUP_SHOWN_UP_TO, else the factor with 2 decimals below 10, 1 below 100, none above.
 */
export function formatDedup(logicalBytes: number | null | undefined, newBytes: number | null | undefined): string {
  if (!isByteCount(logicalBytes) || !isByteCount(newBytes) || logicalBytes === 0) return '-';
  if (newBytes === 0) return 'all known';
  const factor = logicalBytes / newBytes;
  if (factor > DEDUP_SHOWN_UP_TO) return `>${DEDUP_SHOWN_UP_TO}x`;
  return `${factor.toFixed(factor < 10 ? 2 : factor < 100 ? 1 : 0)}x`;
}

/**
 * Another ratio of bytes to bytes (compression, logical kept / stored): `-` without a
 * quotient, capped as dedup is, so no table prints an absurd figure.
 */
export function formatRatio(numerator: number | null | undefined, denominator: number | null | undefined): string {
  if (!isByteCount(numerator) || !isByteCount(denominator) || numerator === 0 || denominator === 0) return '-';
  const factor = numerator / denominator;
  if (factor > DEDUP_SHOWN_UP_TO) return `>${DEDUP_SHOWN_UP_TO}x`;
  return `${factor.toFixed(factor < 10 ? 2 : factor < 100 ? 1 : 0)}x`;
}
