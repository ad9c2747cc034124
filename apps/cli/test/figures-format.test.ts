/**
 * How the CLI prints its figures (apps/cli/src/dedup.ts, apps/cli/src/time.ts):
 *
 *   - dedup is logical bytes / new bytes, one rule everywhere: never NaN, Infinity or an
 *     absurd quotient (3159125x): `all known` when nothing was new, `>1000x` above 1000;
 *   - a policy's next run is shown on the policy's clock with the zone named and UTC after it.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEDUP_SHOWN_UP_TO, dedupFactor, formatDedup, formatRatio } from '../dist/dedup.js';
import { zonedTime } from '../dist/time.js';

const SHOWN = /^(-|all known|>1000x|\d+(\.\d{1,2})?x)$/;
/** Byte counts as they come: 0, small, huge, and now and then not a count at all. */
const bytes = fc.oneof(
  { weight: 1, arbitrary: fc.constant(0) },
  { weight: 4, arbitrary: fc.integer({ min: 1, max: 4096 }) },
  { weight: 4, arbitrary: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }) },
  { weight: 1, arbitrary: fc.constantFrom<number | null | undefined>(null, undefined, Number.NaN, Number.POSITIVE_INFINITY, -1) },
);

describe('formatDedup', () => {
  it('examples: the quotient of logical and new bytes, and the words for the edges', () => {
    expect(formatDedup(1000, 1000)).toBe('1.00x');
    expect(formatDedup(3 << 20, 1 << 20)).toBe('3.00x');
    expect(formatDedup(455, 10)).toBe('45.5x');
    expect(formatDedup(999_000, 1000)).toBe('999x');
    expect(formatDedup(1000, 1)).toBe('1000x');
    // The figure job history used to print for a run that stored next to nothing.
    expect(formatDedup(3_159_125, 1)).toBe('>1000x');
    expect(formatDedup(3_159_125, 0)).toBe('all known');
    expect(formatDedup(0, 0)).toBe('-');
    expect(formatDedup(null, null)).toBe('-');
    expect(formatDedup(4096, null)).toBe('-');
  });

  it('never prints NaN, Infinity, a negative or a figure above the cap', () => {
    fc.assert(
      fc.property(bytes, bytes, (logical, fresh) => {
        const shown = formatDedup(logical, fresh);
        expect(shown).toMatch(SHOWN);
        const n = /^(\d+(?:\.\d+)?)x$/.exec(shown);
        if (n) expect(Number(n[1])).toBeLessThanOrEqual(DEDUP_SHOWN_UP_TO);
      }),
    );
  });

  it('agrees with dedupFactor, the number --json prints, wherever that has a quotient', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 40 }), fc.integer({ min: 1, max: 2 ** 40 }), (logical, fresh) => {
        const factor = dedupFactor(logical, fresh)!;
        expect(factor).toBe(logical / fresh);
        const shown = formatDedup(logical, fresh);
        if (factor > DEDUP_SHOWN_UP_TO) expect(shown).toBe('>1000x');
        // Half a unit of the last printed digit, and a hair for binary floating point: a
        // factor half-way between two printed values (2.125) prints 2.13, which as a double
        // can lie a few ulps more than 0.005 away.
        else expect(Math.abs(Number(shown.slice(0, -1)) - factor)).toBeLessThanOrEqual((factor < 10 ? 0.005 : factor < 100 ? 0.05 : 0.5) + 1e-9);
      }),
    );
    // The counterexample a CI run found (seed 242786457): 0.875 prints as 0.88.
    expect(formatDedup(14, 16)).toBe('0.88x');
    expect(dedupFactor(4096, 0)).toBeNull();
    expect(dedupFactor(0, 0)).toBeNull();
    expect(dedupFactor(Number.NaN, 1)).toBeNull();
  });

  it('formatRatio (compression, kept/stored) is capped the same way', () => {
    fc.assert(
      fc.property(bytes, bytes, (a, b) => {
        expect(formatRatio(a, b)).toMatch(/^(-|>1000x|\d+(\.\d{1,2})?x)$/);
      }),
    );
    expect(formatRatio(1 << 20, 512 << 10)).toBe('2.00x');
    expect(formatRatio(1 << 20, 0)).toBe('-');
  });
});

describe('zonedTime', () => {
  it("shows the policy's clock, the zone and UTC", () => {
    expect(zonedTime('2026-12-03T00:00:00.000Z', 'Europe/Berlin')).toBe('2026-12-03 01:00 Europe/Berlin (00:00 UTC)');
    // Summer time, and a UTC instant on the day before.
    expect(zonedTime('2026-07-02T22:30:00.000Z', 'Europe/Berlin')).toBe('2026-07-03 00:30 Europe/Berlin (2026-07-02 22:30 UTC)');
    expect(zonedTime('2026-07-03T05:00:00.000Z', 'America/New_York')).toBe('2026-07-03 01:00 America/New_York (05:00 UTC)');
    expect(zonedTime('2026-12-03T00:00:00.000Z', 'UTC')).toBe('2026-12-03 00:00 UTC');
  });

  it('without a zone it knows, says the time is local', () => {
    expect(zonedTime('2026-12-03T00:00:00.000Z', undefined)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d local \((\d{4}-\d\d-\d\d )?00:00 UTC\)$/);
    expect(zonedTime('2026-12-03T00:00:00.000Z', 'Nowhere/Atlantis')).toMatch(/ local \(/);
  });

  it('any instant in any zone: the UTC part is the instant, the zone part its wall clock there', () => {
    const zones = ['Europe/Berlin', 'America/Los_Angeles', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Europe/London'];
    fc.assert(
      fc.property(fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2100, 0, 1) }), fc.constantFrom(...zones), (ms, zone) => {
        const at = new Date(Math.floor(ms / 60_000) * 60_000);
        const shown = zonedTime(at.toISOString(), zone);
        const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d) (\S+) \(((?:\d{4}-\d\d-\d\d )?)(\d\d:\d\d) UTC\)$/.exec(shown);
        expect(m, shown).not.toBeNull();
        expect(m![2]).toBe(zone);
        const iso = at.toISOString();
        expect(m![4]).toBe(iso.slice(11, 16));
        if (m![3] !== '') expect(m![3].trim()).toBe(iso.slice(0, 10));
        else expect(m![1].slice(0, 10)).toBe(iso.slice(0, 10));
      }),
    );
  });
});
