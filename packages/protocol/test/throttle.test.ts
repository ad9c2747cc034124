/**
 * The upload throttle (TokenBucket, throttled) on a simulated clock: sleeps advance the
 * clock instead of waiting, so the rate arithmetic is checked without timing anything.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenBucket, throttled, type ThrottleClock } from '../dist/index.js';

/** A clock whose sleeps move time forward at once and are recorded. */
function fakeClock(start = 1_000): ThrottleClock & { sleeps: number[]; t: number } {
  const clock = {
    t: start,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      clock.sleeps.push(ms);
      clock.t += ms;
    },
  };
  return clock;
}

async function collect(body: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const piece of body) out.push(piece);
  return out;
}

describe('TokenBucket', () => {
  it('lets a burst through at once, then paces at the rate', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1000, { burst: 500, clock });
    await bucket.take(500);
    expect(clock.sleeps).toEqual([]);
    await bucket.take(250); // 250 bytes of debt at 1000 B/s: 250 ms
    expect(clock.sleeps).toEqual([250]);
    clock.t += 1_000; // idle for a second: refills, but only up to the burst
    await bucket.take(500);
    expect(clock.sleeps).toEqual([250]);
    await bucket.take(1);
    expect(clock.sleeps[1]).toBeCloseTo(1, 6);
  });

  it('a piece larger than the burst goes whole, after the wait the rate requires', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket(1_000_000, { burst: 64 * 1024, clock });
    await bucket.take(4 * 1024 * 1024);
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeCloseTo(((4 * 1024 * 1024 - 64 * 1024) / 1_000_000) * 1000, 6);
  });

  it('default burst: a quarter second of the rate, at least 64 KiB', () => {
    expect(new TokenBucket(25_000_000, { clock: fakeClock() }).burst).toBe(6_250_000);
    expect(new TokenBucket(1_000, { clock: fakeClock() }).burst).toBe(65_536);
    expect(() => new TokenBucket(0)).toThrow(RangeError);
  });

  it('property: by any time t at most burst + rate x t bytes have gone, and the total takes (bytes - burst) / rate', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(fc.integer({ min: 0, max: 3_000_000 }), { maxLength: 40 }),
        async (rate, burst, pieces) => {
          const clock = fakeClock(0);
          const bucket = new TokenBucket(rate, { burst, clock });
          let sent = 0;
          for (const n of pieces) {
            await bucket.take(n);
            sent += n; // sent at clock.t
            expect(sent).toBeLessThanOrEqual(burst + (rate * clock.t) / 1000 + 1e-6 * sent + 1);
          }
          const expected = (Math.max(0, sent - burst) / rate) * 1000;
          expect(clock.t).toBeGreaterThanOrEqual(expected - 1e-6 * expected - 1e-6);
          expect(clock.t).toBeLessThanOrEqual(expected + 1e-6 * expected + 1e-6);
        },
      ),
    );
  });

  it('concurrent takers share the debt: the second waits for the first too', async () => {
    const clock: ThrottleClock & { sleeps: number[] } = { sleeps: [], now: () => 0, sleep: async (ms) => void clock.sleeps.push(ms) };
    const bucket = new TokenBucket(1000, { burst: 1, clock });
    await Promise.all([bucket.take(1001), bucket.take(1000)]);
    expect(clock.sleeps).toEqual([1000, 2000]);
  });
});

describe('throttled', () => {
  it('passes the pieces through unchanged, each after its take; without a bucket it is the body itself', async () => {
    const clock = fakeClock(0);
    const pieces = [new Uint8Array([1, 2, 3]), new Uint8Array(2000), new Uint8Array([9])];
    async function* body(): AsyncGenerator<Uint8Array> {
      yield* pieces;
    }
    const out = await collect(throttled(body(), new TokenBucket(1000, { burst: 3, clock })));
    expect(out).toEqual(pieces);
    expect(clock.t).toBeCloseTo(2001, 6); // 2004 bytes, 3 of burst, at 1000 B/s
    const plain = body();
    expect(throttled(plain, undefined)).toBe(plain);
  });

  it('an abort while waiting ends the body with the abort reason', async () => {
    const clock = fakeClock(0);
    const abort = new AbortController();
    abort.abort(new Error('run cancelled'));
    async function* body(): AsyncGenerator<Uint8Array> {
      yield new Uint8Array(10);
    }
    await expect(collect(throttled(body(), new TokenBucket(1, { burst: 1, clock }), abort.signal))).rejects.toThrow('run cancelled');
  });
});
