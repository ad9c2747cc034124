// Unit tests of internal modules, imported from the built output by path.
import { describe, expect, it } from 'vitest';
import { Keystream } from '../dist/keystream.js';
import { Rng } from '../dist/prng.js';
import { Kind, flatten, overlay, type Span } from '../dist/spans.js';

describe('spans', () => {
  it('flatten + overlay equal painting writes page by page (later wins)', () => {
    const rng = new Rng(99);
    for (let round = 0; round < 200; round++) {
      const pages = 1 + rng.int(300);
      // Naive model: owner id per page.
      const model: string[] = [];
      let base: Span[] = [];
      for (let start = 0, idx = 0; start < pages; idx++) {
        const end = Math.min(pages, start + 1 + rng.int(40));
        base.push({ start, end, kind: Kind.Random, day: 0, idx, cpage: 0 });
        for (let p = start; p < end; p++) model[p] = `0/${idx}/${p - start}`;
        start = end;
      }
      for (let day = 1; day <= 3; day++) {
        const writes: Span[] = [];
        for (let i = 0, n = rng.int(30); i < n; i++) {
          const start = rng.int(pages);
          const end = Math.min(pages, start + 1 + rng.int(20));
          const cpage = rng.int(5);
          writes.push({ start, end, kind: Kind.Text, day, idx: i, cpage });
          for (let p = start; p < end; p++) model[p] = `${day}/${i}/${cpage + p - start}`;
        }
        const over = flatten(writes);
        for (let i = 1; i < over.length; i++) expect(over[i].start).toBeGreaterThanOrEqual(over[i - 1].end);
        base = overlay(base, over);
        const got: string[] = [];
        let expectStart = 0;
        for (const s of base) {
          expect(s.start).toBe(expectStart);
          expect(s.end).toBeGreaterThan(s.start);
          for (let p = s.start; p < s.end; p++) got[p] = `${s.day}/${s.idx}/${s.cpage + p - s.start}`;
          expectStart = s.end;
        }
        expect(expectStart).toBe(pages);
        expect(got).toEqual(model);
      }
    }
  });
});

describe('Keystream', () => {
  it('gives the same bytes for any read pattern (seekable CTR)', () => {
    const whole = new Uint8Array(10_000);
    new Keystream(1, 't').fill(3, 4, 0, whole, 0, whole.length);
    const rng = new Rng(5);
    for (let i = 0; i < 100; i++) {
      const off = rng.int(9_000);
      const len = 1 + rng.int(1_000);
      const part = new Uint8Array(len);
      const ks = new Keystream(1, 't');
      // Split the read in two to exercise continuation and re-seeking.
      const cut = rng.int(len);
      ks.fill(3, 4, off, part, 0, cut);
      ks.fill(3, 4, off + cut, part, cut, len - cut);
      expect(Buffer.from(part).equals(Buffer.from(whole.subarray(off, off + len)))).toBe(true);
    }
    const other = new Uint8Array(64);
    new Keystream(1, 't').fill(3, 5, 0, other, 0, 64);
    expect(Buffer.from(other).equals(Buffer.from(whole.subarray(0, 64)))).toBe(false);
  });
});

describe('Rng', () => {
  it('is deterministic and roughly uniform', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const counts = new Array(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const x = a.int(10);
      expect(b.int(10)).toBe(x);
      counts[x]++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    for (let i = 0; i < 1000; i++) {
      const v = a.logUniform(1, 1024);
      expect(v).toBeGreaterThanOrEqual(1);
      expect(v).toBeLessThanOrEqual(1024);
    }
  });
});
