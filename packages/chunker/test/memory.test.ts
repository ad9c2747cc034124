import { describe, expect, it } from 'vitest';
import { Chunker, MiB } from '../dist/index.js';
import { cryptoRandom } from './helpers.js';

/**
 * A long generated stream (pieces are views of one random pool at shifting offsets, with
 * zero stretches), so it costs no memory of its own: whatever memory grows is the chunker's.
 */
async function* generated(totalBytes: number, pool: Uint8Array, piece: number): AsyncGenerator<Uint8Array> {
  let k = 0;
  for (let sent = 0; sent < totalBytes; k++) {
    const n = Math.min(piece, totalBytes - sent);
    const at = (k * 7919 * 4093) % (pool.length - piece);
    yield k % 50 === 7 ? new Uint8Array(n) : pool.subarray(at, at + n);
    sent += n;
  }
}

async function peakMemory(totalBytes: number, pool: Uint8Array, workers: number): Promise<{ chunks: number; peak: number; bytes: number }> {
  const chunker = new Chunker({ chunker: { kind: 'fastcdc', avgSize: 1 * MiB }, workers });
  const baseline = process.memoryUsage().arrayBuffers;
  let peak = 0;
  let chunks = 0;
  let bytes = 0;
  for await (const c of chunker.chunk(generated(totalBytes, pool, 4 * MiB))) {
    chunks++;
    bytes += c.length;
    if (chunks % 16 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - baseline);
  }
  await chunker.close();
  return { chunks, peak, bytes };
}

describe('bounded memory', () => {
  it('chunking a multi-GiB stream holds memory bounded by max chunk size and buffering, not by length', async () => {
    const pool = cryptoRandom(64 * MiB);
    const small = await peakMemory(256 * MiB, pool, 2);
    const large = await peakMemory(3 * 1024 * MiB, pool, 2);
    expect(large.bytes).toBe(3 * 1024 * MiB);
    expect(large.chunks).toBeGreaterThan(2000);
    // In flight: 5 segments of 16 MiB + 4 MiB overlap, plus garbage the GC has not taken
    // yet. A buffer that grew with the stream would pass 3 GiB.
    expect(large.peak).toBeLessThan(512 * MiB);
    expect(large.peak).toBeLessThan(small.peak + 256 * MiB);
    const inThread = await peakMemory(1024 * MiB, pool, 0);
    expect(inThread.peak).toBeLessThan(256 * MiB);
  });
});
