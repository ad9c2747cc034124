import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { vmImageSeries, type VmImageSeries } from '@hoard/bench-data';
import { collect, lz4Size, sha256 } from './helpers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const PAGE = 4 * KiB;

function small(seed = 7, days = 4): VmImageSeries {
  return vmImageSeries({ seed, imageBytes: 32 * MiB, days });
}

function pagesOf(regions: { offset: number; length: number }[]): Set<number> {
  const s = new Set<number>();
  for (const r of regions) for (let p = r.offset / PAGE; p < (r.offset + r.length) / PAGE; p++) s.add(p);
  return s;
}

describe('vmImageSeries', () => {
  it('is deterministic across instances and piece sizes', async () => {
    const a = await sha256(small().day(2));
    const b = await sha256(small().day(2, 65536 + 13));
    const c = await sha256(small().day(2, 3 * PAGE + 1));
    expect(a.bytes).toBe(32 * MiB);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).toBe(a.hash);
    expect(a.pieces.every((n) => n === MiB)).toBe(true);
    expect(b.pieces.at(-1)).toBe((32 * MiB) % (65536 + 13));
    // Streaming day 2 after other days (cached state) gives the same bytes.
    const s = small();
    await sha256(s.day(3));
    expect((await sha256(s.day(2))).hash).toBe(a.hash);
  });

  it('depends on the seed', async () => {
    const a = await sha256(small(1, 1).day(0));
    const b = await sha256(small(2, 1).day(0));
    expect(a.hash).not.toBe(b.hash);
  });

  it('yields fresh buffers the consumer may keep', async () => {
    const s = small();
    const kept: Uint8Array[] = [];
    for await (const p of s.day(1, 256 * KiB)) kept.push(p);
    expect(new Set(kept.map((p) => p.buffer)).size).toBe(kept.length);
    const again = await collect(s.day(1, 256 * KiB));
    expect(Buffer.concat(kept).equals(again)).toBe(true);
  });

  it('dayBytes matches the stream length', async () => {
    const s = vmImageSeries({ seed: 3, imageBytes: 5 * MiB + 3 * PAGE, days: 2 });
    for (const d of [0, 1]) expect((await sha256(s.day(d, 100_000))).bytes).toBe(s.dayBytes(d));
  });

  it('day d+1 differs from day d only on pages written that day, at about the configured rate', async () => {
    const rate = 0.02;
    const s = vmImageSeries({ seed: 11, imageBytes: 64 * MiB, days: 4, dailyChangeRate: rate });
    const pages = (64 * MiB) / PAGE;
    let prev = await collect(s.day(0));
    for (let d = 1; d < 4; d++) {
      const cur = await collect(s.day(d));
      const written = pagesOf(s.writes(d));
      let changed = 0;
      let changedOutside = 0;
      for (let p = 0; p < pages; p++) {
        const o = p * PAGE;
        if (prev.compare(cur, o, o + PAGE, o, o + PAGE) !== 0) {
          changed++;
          if (!written.has(p)) changedOutside++;
        }
      }
      expect(changedOutside).toBe(0);
      // Every written page gets new content (new content is never what was there).
      expect(changed).toBe(written.size);
      // At most the extents' page budget plus the 8 scattered pages (overlaps only lower it).
      expect(changed / pages).toBeGreaterThan(0.6 * rate);
      expect(changed).toBeLessThanOrEqual(Math.round(rate * pages) + (64 * MiB) / (8 * MiB));
      prev = cur;
    }
  });

  it('writes are 4 KiB aligned, at most 4 MiB, clustered, and partly into free space', () => {
    const s = vmImageSeries({ seed: 5, imageBytes: 2 * GiB, days: 6 });
    const zero = s.layout(0).filter((r) => r.kind === 'zero');
    const inZero = (o: number): boolean => zero.some((z) => o >= z.offset && o < z.offset + z.length);
    for (let d = 1; d < 6; d++) {
      const w = s.writes(d);
      const extents = w.filter((x) => x.length > PAGE);
      for (const x of w) {
        expect(x.offset % PAGE).toBe(0);
        expect(x.length % PAGE).toBe(0);
        expect(x.length).toBeLessThanOrEqual(4 * MiB);
        expect(x.kind).not.toBe('zero');
      }
      // Extents total the change rate (scattered writes are the 1-page ones on top).
      expect(w.reduce((a, x) => a + x.length, 0)).toBeGreaterThanOrEqual(0.02 * 2 * GiB - PAGE);
      // Clustered: most consecutive extents start within 16 MiB of each other, far less
      // than the ~680 MiB mean distance of uniformly placed ones.
      const near = extents.slice(1).filter((x, i) => Math.abs(x.offset - extents[i].offset) < 16 * MiB).length;
      expect(near / (extents.length - 1)).toBeGreaterThan(0.5);
      expect(extents.some((x) => inZero(x.offset))).toBe(true);
    }
  });

  it('day-0 layout has about 30% zero, 40% incompressible, 30% text, in 1-64 MiB regions', () => {
    for (const seed of [1, 2, 3]) {
      const layout = vmImageSeries({ seed, imageBytes: 2 * GiB, days: 1 }).layout(0);
      const share = { zero: 0, random: 0, text: 0 };
      for (const r of layout) {
        share[r.kind] += r.length / (2 * GiB);
        expect(r.length).toBeGreaterThanOrEqual(MiB);
        expect(r.length).toBeLessThanOrEqual(64 * MiB);
      }
      expect(share.zero).toBeGreaterThan(0.2);
      expect(share.zero).toBeLessThan(0.4);
      expect(share.text).toBeGreaterThan(0.2);
      expect(share.text).toBeLessThan(0.4);
      expect(share.random).toBeGreaterThan(0.3);
      expect(share.random).toBeLessThan(0.5);
      expect(layout.at(-1)!.offset + layout.at(-1)!.length).toBe(2 * GiB);
    }
  });

  it('zero regions are zero, random ones incompressible, text ones compressible text', async () => {
    const s = small(21, 3);
    const img = await collect(s.day(2));
    const text: Buffer[] = [];
    let randomBytes = 0;
    for (const r of s.layout(2)) {
      const b = img.subarray(r.offset, r.offset + r.length);
      if (r.kind === 'zero') {
        expect(b.every((x) => x === 0)).toBe(true);
      } else if (r.kind === 'random') {
        for (let p = 0; p < b.length; p += PAGE) expect(b.subarray(p, p + PAGE).some((x) => x !== 0)).toBe(true);
        if (randomBytes < 2 * MiB) {
          const sample = b.subarray(0, Math.min(b.length, MiB));
          expect(deflateRawSync(sample, { level: 1 }).length).toBeGreaterThan(sample.length * 0.99);
          randomBytes += sample.length;
        }
      } else {
        text.push(b);
        for (const x of b) if (!(x === 10 || (x >= 32 && x < 127))) throw new Error(`non-text byte ${x}`);
      }
    }
    const sample = Buffer.concat(text).subarray(0, 4 * MiB);
    expect(sample.length).toBeGreaterThan(MiB);
    const lz4 = sample.length / lz4Size(sample);
    expect(lz4).toBeGreaterThan(1.8);
    expect(lz4).toBeLessThan(4);
    // No two text pages are equal: text must not create false duplicates.
    const seen = new Set<string>();
    for (let p = 0; p < sample.length; p += PAGE) seen.add(sample.subarray(p, p + PAGE).toString('latin1'));
    expect(seen.size).toBe(sample.length / PAGE);
  });

  it('keeps memory O(extents): a 1 TiB image streams without materialising it', async () => {
    const s = vmImageSeries({ seed: 1, imageBytes: 1024 * GiB, days: 30, dailyChangeRate: 0.0005, scatteredWritesPerDay: 2000 });
    expect(s.dayBytes(29)).toBe(1024 * GiB);
    expect(s.layout(29).length).toBeLessThan(2_000_000);
    let n = 0;
    for await (const p of s.day(29)) {
      expect(p.length).toBe(MiB);
      if (++n === 8) break;
    }
  });

  it('rejects bad arguments', () => {
    expect(() => vmImageSeries({ seed: 1, imageBytes: 1000, days: 1 })).toThrow(RangeError);
    expect(() => vmImageSeries({ seed: -1, imageBytes: PAGE, days: 1 })).toThrow(RangeError);
    expect(() => small().day(4)).toThrow(RangeError);
    expect(() => small().day(0, 0)).toThrow(RangeError);
  });
});
