/**
 * Upload bandwidth caps (a policy's `limits.bandwidth`): a token bucket over the bytes an
 * agent writes into batch bodies. Tokens (bytes) refill at `bytesPerSecond` up to `burst`;
 * taking more than there are puts the bucket in debt and waits until it is paid back, so a
 * piece larger than the burst (a big blob) is never split yet the average holds: by any
 * time t after the start, at most burst + rate x t bytes have been let through.
 * Concurrent takers share the debt and queue behind each other.
 *
 * The clock is injectable, so tests check the arithmetic without timing anything.
 */

export interface ThrottleClock {
  /** Milliseconds, monotonic enough. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const systemThrottleClock: ThrottleClock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', abort);
        resolve();
      }, ms);
      function abort(): void {
        clearTimeout(timer);
        reject(signal!.reason);
      }
      signal?.addEventListener('abort', abort, { once: true });
    }),
};

export interface TokenBucketOptions {
  /** Bytes that may go at once after a pause (default: a quarter second's worth, at least 64 KiB). */
  burst?: number;
  clock?: ThrottleClock;
}

export class TokenBucket {
  readonly burst: number;
  private readonly clock: ThrottleClock;
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSecond: number,
    options: TokenBucketOptions = {},
  ) {
    if (!(Number.isFinite(bytesPerSecond) && bytesPerSecond > 0)) throw new RangeError(`bandwidth must be more than 0 bytes/s; got ${bytesPerSecond}`);
    this.burst = Math.max(1, options.burst ?? Math.max(64 * 1024, Math.floor(bytesPerSecond / 4)));
    this.clock = options.clock ?? systemThrottleClock;
    this.tokens = this.burst;
    this.last = this.clock.now();
  }

  /** Takes `bytes`, waiting as long as the rate requires before they may be sent. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.bytesPerSecond) / 1000);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await this.clock.sleep((-this.tokens * 1000) / this.bytesPerSecond, signal);
  }
}

/** `body` with each piece let through only when `bucket` allows it; `body` itself when there is no bucket. */
export function throttled(body: AsyncIterable<Uint8Array>, bucket: TokenBucket | undefined, signal?: AbortSignal): AsyncIterable<Uint8Array> {
  if (!bucket) return body;
  return (async function* () {
    for await (const piece of body) {
      await bucket.take(piece.length, signal);
      yield piece;
    }
  })();
}
