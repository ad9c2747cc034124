/**
 * Errors the chunker raises for caller mistakes. Each names the parameter that is wrong,
 * the value it got and what would be right, so a CLI can print `err.message` as is.
 *
 * Each carries a stable `code` of hoard's error table (@hoard/errors, docs/errors.md). The
 * chunker depends on nothing of hoard's, so the codes are plain literals here; a test
 * checks that the table lists them.
 */
export class ChunkerParameterError extends Error {
  override readonly name = 'ChunkerParameterError';
  readonly code = 'invalid_chunker';
  constructor(
    /** The parameter at fault, e.g. `minSize`, `seed`, `key`. */
    readonly parameter: string,
    /** The value that was given (rendered for the message). */
    readonly value: unknown,
    /** What would be accepted, e.g. "a power of two between 4 KiB and 8 MiB". */
    readonly expected: string,
  ) {
    super(`invalid ${parameter}: got ${renderValue(value)}, expected ${expected}`);
  }
}

/** A saved fingerprint index that cannot be trusted: truncated, bit-flipped or of another format. */
export class IndexFormatError extends Error {
  override readonly name = 'IndexFormatError';
  readonly code = 'data_damaged';
  constructor(
    readonly source: string,
    readonly reason: string,
  ) {
    super(`fingerprint index ${source} is unusable: ${reason}`);
  }
}

function renderValue(value: unknown): string {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1024) {
    return `${value} (${formatBytes(value)})`;
  }
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  return String(value);
}

/** 65536 -> "64 KiB"; exact binary units where they fit, bytes otherwise. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return Number.isInteger(v) ? `${v} ${units[i]}` : `${v.toFixed(2)} ${units[i]}`;
}
