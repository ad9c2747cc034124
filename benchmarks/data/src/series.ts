/** The contract every generator satisfies, plus the argument checks they share. */

export interface DataSeries {
  /** "vm-image" | "db-dump" */
  readonly name: string;
  readonly days: number;
  /** Exact byte length of that day's stream. */
  dayBytes(day: number): number;
  /**
   * The whole day's content in order, in pieces of pieceBytes (default 1 MiB; the last one
   * shorter). Every piece is a fresh buffer the consumer may keep. The bytes depend only on
   * the options and the day, never on pieceBytes or on how fast the consumer pulls.
   */
  day(day: number, pieceBytes?: number): AsyncIterable<Uint8Array>;
}

export const MiB = 1 << 20;
export const DEFAULT_PIECE = MiB;

export function checkDay(day: number, days: number): void {
  if (!Number.isInteger(day) || day < 0 || day >= days) {
    throw new RangeError(`day must be an integer in [0, ${days}), got ${day}`);
  }
}

export function checkPiece(pieceBytes: number): void {
  if (!Number.isInteger(pieceBytes) || pieceBytes < 1) {
    throw new RangeError(`pieceBytes must be a positive integer, got ${pieceBytes}`);
  }
}

export function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`seed must be a uint32, got ${seed}`);
  }
  return seed >>> 0;
}

export function checkDays(days: number): void {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`days must be a positive integer, got ${days}`);
}

export function checkRate(name: string, rate: number): void {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`${name} must be in [0, 1], got ${rate}`);
}
