/**
 * The capacity math of `hoard report` (pure functions): least squares, the daily
 * cumulative history, the fill date, and the classic planning formula's inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DAY_MS, classicEstimate, classicInputs, dailyCumulative, fillDate, linearRegression, trendOf } from '../dist/capacity.js';

const close = (a: number, b: number, tolerance = 1e-6): boolean => Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(a), Math.abs(b));

describe('linearRegression', () => {
  it('fits a known line exactly', () => {
    const fit = linearRegression([
      { x: 0, y: 1 },
      { x: 1, y: 3 },
      { x: 2, y: 5 },
    ]);
    expect(fit).toEqual({ slope: 2, intercept: 1, r2: 1 });
    // y = x on (0,0), (1,2), (2,1)... a scattered set with a hand-computed answer
    const scattered = linearRegression([
      { x: 1, y: 2 },
      { x: 2, y: 1 },
      { x: 3, y: 4 },
      { x: 4, y: 3 },
    ])!;
    // mean x 2.5, mean y 2.5, sxy = 3, sxx = 5: slope 0.6, intercept 1; r2 = 9 / (5 * 5)
    expect(scattered.slope).toBeCloseTo(0.6, 12);
    expect(scattered.intercept).toBeCloseTo(1, 12);
    expect(scattered.r2).toBeCloseTo(0.36, 12);
  });

  it('has no line for fewer than two distinct x', () => {
    expect(linearRegression([])).toBeUndefined();
    expect(linearRegression([{ x: 3, y: 1 }])).toBeUndefined();
    expect(
      linearRegression([
        { x: 3, y: 1 },
        { x: 3, y: 9 },
      ]),
    ).toBeUndefined();
  });

  it('recovers any line through points on it, at epoch-day x values (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e9, max: 1e9, noNaN: true }),
        fc.double({ min: -1e12, max: 1e12, noNaN: true }),
        fc.uniqueArray(fc.integer({ min: 20_000, max: 21_000 }), { minLength: 2, maxLength: 40 }),
        (slope, intercept, xs) => {
          const fit = linearRegression(xs.map((x) => ({ x, y: intercept + slope * x })))!;
          expect(close(fit.slope, slope, 1e-6) || Math.abs(fit.slope - slope) < 1e-3).toBe(true);
          // predictions agree on the points' span (the intercept itself is far away at x = 0)
          for (const x of xs)
            expect(Math.abs(fit.intercept + fit.slope * x - (intercept + slope * x))).toBeLessThanOrEqual(
              1e-6 * Math.max(1, Math.abs(intercept + slope * x)) + 1,
            );
          // (a flat line with float noise has no meaningful r2)
          if (Math.abs(slope) > 1e-3) expect(fit.r2).toBeGreaterThan(0.999999);
        },
      ),
    );
  });

  it('does not depend on the order of the points, and the residuals sum to zero (property)', () => {
    fc.assert(
      fc.property(
        fc
          .uniqueArray(fc.integer({ min: 0, max: 1000 }), { minLength: 2, maxLength: 30 })
          .chain((xs) => fc.tuple(fc.constant(xs), fc.array(fc.integer({ min: 0, max: 1e9 }), { minLength: xs.length, maxLength: xs.length }))),
        ([xs, ys]) => {
          const points = xs.map((x, i) => ({ x, y: ys[i]! }));
          const a = linearRegression(points)!;
          const b = linearRegression([...points].reverse())!;
          expect(close(a.slope, b.slope, 1e-9)).toBe(true);
          expect(close(a.intercept, b.intercept, 1e-9)).toBe(true);
          const residuals = points.reduce((n, p) => n + (p.y - (a.intercept + a.slope * p.x)), 0);
          expect(Math.abs(residuals)).toBeLessThan(1e-3 * Math.max(1, ...ys));
          expect(a.r2).toBeGreaterThanOrEqual(0);
          expect(a.r2).toBeLessThanOrEqual(1);
        },
      ),
    );
  });
});

describe('dailyCumulative and trendOf', () => {
  const day = (iso: string): number => Date.parse(iso);

  it('sums bytes per UTC day, cumulative, from the first day with data within the window', () => {
    const now = day('2026-11-05T12:00:00Z');
    const points = dailyCumulative(
      [
        { at: day('2026-11-02T01:00:00Z'), bytes: 100 },
        { at: day('2026-11-02T23:00:00Z'), bytes: 50 },
        { at: day('2026-11-04T10:00:00Z'), bytes: 200 },
        { at: day('2026-11-05T13:00:00Z'), bytes: 999 }, // after now: not yet
      ],
      now,
    );
    expect(points.map((p) => [p.day, p.cumulative])).toEqual([
      ['2026-11-02', 150],
      ['2026-11-03', 150],
      ['2026-11-04', 350],
      ['2026-11-05', 350],
    ]);
    expect(points[3]!.at).toBe(now);
    // Before the window: counted in the starting level, but no point of its own.
    const windowed = dailyCumulative(
      [
        { at: day('2026-09-01T00:00:00Z'), bytes: 7 },
        { at: day('2026-11-05T00:00:00Z'), bytes: 3 },
      ],
      now,
      30,
    );
    expect(windowed).toHaveLength(30);
    expect(windowed[0]!.cumulative).toBe(7);
    expect(windowed[29]!.cumulative).toBe(10);
    expect(dailyCumulative([], now)).toEqual([]);
  });

  it('is non-decreasing, ends at the sum of the past events, and has at most windowDays points (property)', () => {
    const now = day('2026-11-30T18:00:00Z');
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: now - 90 * DAY_MS, max: now + DAY_MS }), bytes: fc.integer({ min: 0, max: 1e9 }) }), { maxLength: 60 }),
        fc.integer({ min: 1, max: 60 }),
        (events, window) => {
          const points = dailyCumulative(events, now, window);
          const past = events.filter((e) => e.at <= now);
          if (past.length === 0) {
            expect(points).toEqual([]);
            return;
          }
          expect(points.length).toBeLessThanOrEqual(window);
          for (let i = 1; i < points.length; i++) expect(points[i]!.cumulative).toBeGreaterThanOrEqual(points[i - 1]!.cumulative);
          expect(points[points.length - 1]!.cumulative).toBe(past.reduce((n, e) => n + e.bytes, 0));
        },
      ),
    );
  });

  it('a steady 1 GB a day is a trend of 1 GB a day', () => {
    const now = day('2026-11-30T23:59:59.999Z');
    const events = Array.from({ length: 30 }, (_, i) => ({ at: now - i * DAY_MS - 3_600_000, bytes: 1e9 }));
    const trend = trendOf(dailyCumulative(events, now, 30))!;
    expect(trend.days).toBe(30);
    expect(trend.bytesPerDay).toBeCloseTo(1e9, 0);
    expect(trend.r2).toBeCloseTo(1, 9);
    expect(trendOf(dailyCumulative(events.slice(0, 1), now, 30))).toBeUndefined();
  });
});

describe('fillDate', () => {
  const now = Date.parse('2026-11-01T00:00:00Z');

  it('extrapolates linearly from now', () => {
    expect(fillDate(4e12, 1e11, 10e12, now)).toEqual({ status: 'date', at: new Date(now + 60 * DAY_MS), days: 60 });
    expect(fillDate(10e12, 1e11, 10e12, now)).toEqual({ status: 'full', at: new Date(now) });
    expect(fillDate(1, 0, 10, now)).toEqual({ status: 'never' });
    expect(fillDate(1, -5, 10, now)).toEqual({ status: 'never' });
  });

  it('lands on the quota, later for a bigger quota and earlier for a faster growth (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e12 }),
        fc.integer({ min: 1, max: 1e12 }),
        fc.double({ min: 1e6, max: 1e12, noNaN: true }),
        fc.integer({ min: 1, max: 1e12 }),
        (current, extra, rate, more) => {
          const quota = current + extra;
          const f = fillDate(current, rate, quota, now);
          if (f.status !== 'date') throw new Error(`expected a date, got ${f.status}`);
          const days = (f.at.getTime() - now) / DAY_MS;
          expect(Math.abs(current + rate * days - quota)).toBeLessThanOrEqual(rate * 1e-6 + quota * 1e-9 + 1);
          const bigger = fillDate(current, rate, quota + more, now);
          expect(bigger.status === 'date' && bigger.at.getTime() >= f.at.getTime()).toBe(true);
          const faster = fillDate(current, rate * 2, quota, now);
          expect(faster.status === 'date' && faster.at.getTime() <= f.at.getTime()).toBe(true);
        },
      ),
    );
  });
});

describe('the classic formula', () => {
  it('computes (base x fulls + incremental x incrementals x fulls) x (1 + growth)^years x compression', () => {
    expect(classicEstimate({ base: 100, fullsKept: 4, incremental: 10, incrementalsPerFull: 6, growth: 0.5, years: 2, compression: 0.5 })).toBe(
      (400 + 240) * 2.25 * 0.5,
    );
  });

  it('takes its inputs from kept backups and measured sessions', () => {
    const t0 = Date.parse('2025-11-01T00:00:00Z');
    const year = 365.25 * DAY_MS;
    const inputs = classicInputs(
      [
        { at: t0, full: true, logicalBytes: 1000 },
        { at: t0 + DAY_MS, full: false, logicalBytes: 1010 },
        { at: t0 + 2 * DAY_MS, full: false, logicalBytes: 1020 },
        { at: t0 + year, full: true, logicalBytes: 1500 },
        { at: t0 + year + DAY_MS, full: false, logicalBytes: 1510 },
      ],
      [10, 20, 30],
      600,
      1200,
      3,
    );
    expect(inputs).toEqual({ base: 1500, fullsKept: 2, incremental: 20, incrementalsPerFull: 1.5, growth: expect.closeTo(0.5, 9), years: 3, compression: 0.5 });
    // No full kept: the oldest kept backup is the base; no growth from a single full.
    const noFull = classicInputs(
      [
        { at: t0 + DAY_MS, full: false, logicalBytes: 7 },
        { at: t0, full: false, logicalBytes: 5 },
      ],
      [],
      0,
      0,
      1,
    );
    expect(noFull).toEqual({ base: 5, fullsKept: 1, incremental: 0, incrementalsPerFull: 1, growth: 0, years: 1, compression: 1 });
    expect(classicInputs([], [], 0, 0, 1)).toEqual({ base: 0, fullsKept: 0, incremental: 0, incrementalsPerFull: 0, growth: 0, years: 1, compression: 1 });
  });
});
