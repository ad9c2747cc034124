import { describe, expect, it } from 'vitest';
import { demoSeries, dumpSeries, type DumpSeries } from '@hoard/bench-data';
import { cdcChunks, collect, fixedChunks, reusedFraction, sha256 } from './helpers.js';

const MiB = 1024 * 1024;

function small(seed = 7, approxBytes = 8 * MiB, days = 4): DumpSeries {
  return dumpSeries({ seed, approxBytes, days });
}

function lines(b: Buffer): string[] {
  return b.toString('latin1').split('\n');
}

const INSERT = /^INSERT INTO public\.(customers|orders|events) VALUES \((.*)\);$/;

describe('dumpSeries', () => {
  it('is deterministic across instances and piece sizes', async () => {
    const a = await sha256(small().day(2));
    const b = await sha256(small().day(2, 7777));
    expect(b.hash).toBe(a.hash);
    expect(b.pieces.slice(0, -1).every((n) => n === 7777)).toBe(true);
    // One-byte pieces: every row takes the split-across-pieces path.
    const tiny = (): DumpSeries => small(7, 64 * 1024);
    const c = await sha256(tiny().day(2, 1));
    expect(c.pieces.every((n) => n === 1)).toBe(true);
    expect(c.hash).toBe((await sha256(tiny().day(2))).hash);
    expect((await sha256(small(8).day(2))).hash).not.toBe(a.hash);
    // Visiting days out of order (state replayed from a cache or from day 0) changes nothing.
    const s = small();
    await sha256(s.day(3));
    expect((await sha256(s.day(2))).hash).toBe(a.hash);
  });

  it('dayBytes matches the stream length, whether asked before or after streaming', async () => {
    const before = small(3);
    const after = small(3);
    for (let d = 0; d < 4; d++) {
      const expected = before.dayBytes(d);
      const got = await sha256(after.day(d, 100_000));
      expect(got.bytes).toBe(expected);
      expect(after.dayBytes(d)).toBe(expected);
      expect((await sha256(before.day(d))).hash).toBe(got.hash);
    }
  });

  it('day 0 is close to approxBytes', () => {
    for (const size of [MiB, 16 * MiB, 64 * MiB]) {
      const bytes = dumpSeries({ seed: 1, approxBytes: size, days: 1 }).dayBytes(0);
      expect(Math.abs(bytes - size) / size).toBeLessThan(0.03);
    }
  });

  it('looks like a pg_dump --inserts dump', async () => {
    const s = small(5, 4 * MiB, 2);
    const text = lines(await collect(s.day(1)));
    expect(text[1]).toBe('-- PostgreSQL database dump');
    expect(text.at(-4)).toBe('-- PostgreSQL database dump complete');
    let inserts = 0;
    let inData = false;
    let blank = 0;
    for (const line of text) {
      if (line.startsWith('-- Data for Name: ')) {
        inData = true;
        blank = 0;
        continue;
      }
      if (inData) {
        if (line === '' || line === '--') {
          if (line === '' && ++blank === 3) inData = false; // "--", "", rows, "", ""
          continue;
        }
        const m = INSERT.exec(line);
        if (!m) throw new Error(`unexpected data line: ${line.slice(0, 80)}`);
        // SQL literals: quotes come in pairs ('' inside a literal is an escaped quote).
        expect((line.match(/'/g) ?? []).length % 2).toBe(0);
        inserts++;
      } else {
        expect(line).toMatch(/^(--.*|SET .*|SELECT pg_catalog\..*|CREATE .*|ALTER .*| {4}.*|\);|)$/);
      }
    }
    const live = s.tables(1).reduce((a, t) => a + t.liveRows, 0);
    expect(inserts).toBe(live);
    expect(text.some((l) => l.includes("O''Brien") || l.includes("O''Connor") || l.includes("D''Angelo"))).toBe(true);
  });

  it('rows have varied shapes and lengths around 80-400 bytes', async () => {
    const text = lines(await collect(small(2, 4 * MiB, 1).day(0)));
    const byTable = new Map<string, number[]>();
    for (const line of text) {
      const m = INSERT.exec(line);
      if (!m) continue;
      const l = byTable.get(m[1]) ?? [];
      l.push(line.length + 1);
      byTable.set(m[1], l);
    }
    expect([...byTable.keys()].sort()).toEqual(['customers', 'events', 'orders']);
    for (const lens of byTable.values()) {
      const mean = lens.reduce((a, b) => a + b, 0) / lens.length;
      expect(mean).toBeGreaterThan(80);
      expect(mean).toBeLessThan(400);
      expect(Math.max(...lens)).toBeGreaterThan(Math.min(...lens));
    }
  });

  it('day d+1 shares most lines with day d, at shifted offsets', async () => {
    const s = small(11, 8 * MiB, 3);
    const d0 = await collect(s.day(0));
    const d1 = await collect(s.day(1));
    const count = new Map<string, number>();
    for (const l of lines(d0)) count.set(l, (count.get(l) ?? 0) + 1);
    let shared = 0;
    const l1 = lines(d1);
    for (const l of l1) {
      const c = count.get(l) ?? 0;
      if (c > 0) {
        shared++;
        count.set(l, c - 1);
      }
    }
    const frac = shared / l1.length;
    // ~1% updated, 0.5% inserted, 0.2% deleted.
    expect(frac).toBeGreaterThan(0.97);
    expect(frac).toBeLessThan(0.995);
    // Fixed-size blocks do not survive the shifts; content-defined chunks mostly do: the
    // case CDC exists for.
    for (const [size, atLeast] of [
      [16 * 1024, 0.6],
      [64 * 1024, 0.2],
    ]) {
      const fixed = reusedFraction(fixedChunks(d0, size), fixedChunks(d1, size));
      const cdc = reusedFraction(cdcChunks(d0, size), cdcChunks(d1, size));
      console.log(`db-dump day 0 -> 1, ${size / 1024} KiB chunks: reused fixed ${fixed.toFixed(3)}, cdc ${cdc.toFixed(3)}`);
      expect(fixed).toBeLessThan(0.05);
      expect(cdc).toBeGreaterThan(atLeast);
    }
  });

  it('churns rows at the configured rates', () => {
    const s = dumpSeries({ seed: 4, approxBytes: 32 * MiB, days: 11 });
    const live0 = s.tables(0).reduce((a, t) => a + t.liveRows, 0);
    const live10 = s.tables(10).reduce((a, t) => a + t.liveRows, 0);
    // Net growth ~ (0.005 - 0.002) per day, compounded.
    const growth = live10 / live0 - 1;
    expect(growth).toBeGreaterThan(0.02);
    expect(growth).toBeLessThan(0.04);
    const ids0 = s.tables(0).map((t) => t.maxId);
    const ids10 = s.tables(10).map((t) => t.maxId);
    for (let i = 0; i < 3; i++) expect(ids10[i]).toBeGreaterThan(ids0[i]);
  });

  it('rejects bad arguments', () => {
    expect(() => dumpSeries({ seed: 1, approxBytes: 10, days: 1 })).toThrow(RangeError);
    expect(() => dumpSeries({ seed: 1, approxBytes: MiB, days: 0 })).toThrow(RangeError);
    expect(() => dumpSeries({ seed: 1, approxBytes: MiB, days: 1, updateRate: 2 })).toThrow(RangeError);
    expect(() => small().day(-1)).toThrow(RangeError);
  });
});

describe('demoSeries', () => {
  it('is small: a 64 MiB image and a ~16 MiB dump, 4 days each', () => {
    const { vm, dump } = demoSeries();
    expect(vm.name).toBe('vm-image');
    expect(dump.name).toBe('db-dump');
    expect(vm.days).toBe(4);
    expect(dump.days).toBe(4);
    expect(vm.dayBytes(3)).toBe(64 * MiB);
    expect(Math.abs(dump.dayBytes(0) - 16 * MiB)).toBeLessThan(MiB);
  });
});
