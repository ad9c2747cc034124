/**
 * @hoard/retention, the one implementation of retention: planRetention's rules with worked
 * examples, time zones, validation messages and properties over random snapshot
 * histories; keep-within durations (parsing, messages) and their calendar cutoffs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  parseRetentionDuration,
  parseRetentionRules,
  planRetention,
  retentionCutoff,
  RetentionRuleError,
  type RetentionRules,
  type RetentionSnapshot,
} from '../dist/index.js';

const H = 3600_000;
const at = (iso: string, id = iso): RetentionSnapshot => ({ id, time: iso });
const kept = (snaps: RetentionSnapshot[], rules: RetentionRules) =>
  planRetention(snaps, rules)
    .filter((d) => d.keep)
    .map((d) => d.id);

describe('planRetention', () => {
  const daily = Array.from({ length: 40 }, (_, i) => at(new Date(Date.UTC(2026, 10, 20, 3) - i * 24 * H).toISOString(), `d${i}`));

  it('keep-last keeps the n newest; keep-daily the newest of each of the n newest days', () => {
    expect(kept(daily, { keepLast: 3 })).toEqual(['d0', 'd1', 'd2']);
    const twice = [...daily.slice(0, 3), at('2026-11-20T01:00:00Z', 'early')];
    const plan = planRetention(twice, { keepDaily: 2 });
    expect(plan.map((d) => [d.id, d.keep, d.reasons])).toEqual([
      ['d0', true, ['daily 2026-11-20']],
      ['early', false, []],
      ['d1', true, ['daily 2026-11-19']],
      ['d2', false, []],
    ]);
  });

  it('weekly, monthly, yearly buckets; a gap uses no slot; reasons name every rule', () => {
    const plan = planRetention(daily, { keepWeekly: 2, keepMonthly: 2, keepYearly: 1, keepLast: 1 });
    const d0 = plan.find((d) => d.id === 'd0')!;
    expect(d0.reasons).toEqual(['last', 'weekly 2026-W47', 'monthly 2026-11', 'yearly 2026']);
    // 2026-11-20 is a Friday: the next weekly is the Sunday of the week before (d5).
    expect(plan.find((d) => d.id === 'd5')!.reasons).toEqual(['weekly 2026-W46']);
    // The newest of October is 2026-10-31 (d20).
    expect(plan.find((d) => d.id === 'd20')!.reasons).toEqual(['monthly 2026-10']);
    const gappy = [at('2026-11-20T00:00:00Z', 'a'), at('2026-06-01T00:00:00Z', 'b'), at('2025-01-01T00:00:00Z', 'c')];
    expect(kept(gappy, { keepMonthly: 2 })).toEqual(['a', 'b']);
  });

  it('buckets follow the time zone: 23:30 UTC is the next day in Berlin', () => {
    const snaps = [at('2026-11-20T23:30:00Z', 'late'), at('2026-11-20T12:00:00Z', 'noon')];
    expect(kept(snaps, { keepDaily: 2 })).toEqual(['late']);
    expect(planRetention(snaps, { keepDaily: 2, timeZone: 'Europe/Berlin' }).map((d) => d.reasons)).toEqual([['daily 2026-11-21'], ['daily 2026-11-20']]);
  });

  it('keep-within counts back from the newest snapshot, in calendar months for m', () => {
    const plan = planRetention(daily, { keepWithin: parseRetentionDuration('1m') });
    // Newest 2026-11-20 03:00 -> since 2026-10-20 03:00: d0..d31 (d31 is 10-20).
    expect(plan.filter((d) => d.keep).map((d) => d.id)).toEqual(daily.slice(0, 32).map((s) => s.id));
    expect(plan[0].reasons).toEqual(['within 1m']);
    // Combinations, and the text form as input: 1w2d from 11-20 03:00 is 11-11 03:00 (d9).
    expect(kept(daily, { keepWithin: parseRetentionRules({ keepWithin: '1W2D' }).keepWithin })).toEqual(daily.slice(0, 10).map((s) => s.id));
    expect(planRetention(daily, { keepWithin: parseRetentionDuration('1w2d') })[0].reasons).toEqual(['within 1w2d']);
  });

  it("keep-within months step on the wall calendar of the rules' time zone", () => {
    // Newest: 1 April 2026 00:30 in Berlin (31 March 22:30 UTC). One month back on Berlin's
    // calendar is 1 March 00:30 CET (28 Feb 23:30 UTC); on the UTC calendar it would be
    // 28 Feb 22:30 UTC (31 March clamped), which also keeps the 23:00 UTC snapshot.
    const snaps = [at('2026-03-31T22:30:00Z', 'newest'), at('2026-02-28T23:30:00Z', 'edge'), at('2026-02-28T23:00:00Z', 'before')];
    const within = { keepWithin: parseRetentionDuration('1m') };
    expect(kept(snaps, { ...within, timeZone: 'Europe/Berlin' })).toEqual(['newest', 'edge']);
    expect(kept(snaps, within)).toEqual(['newest', 'edge', 'before']);
  });

  it('protected snapshots are kept, take no slot and do not move the keep-within anchor', () => {
    const snaps = [{ ...at('2026-11-21T00:00:00Z', 'p'), protected: true }, ...daily.slice(0, 3)];
    const plan = planRetention(snaps, { keepLast: 1, keepWithin: parseRetentionDuration('24h') });
    expect(plan.map((d) => [d.id, d.reasons])).toEqual([
      ['p', ['protected']],
      ['d0', ['last', 'within 24h']],
      ['d1', ['within 24h']],
      ['d2', []],
    ]);
  });

  it('refuses rules that keep nothing, and bad values, with messages that say what to write', () => {
    expect(() => planRetention(daily, {})).toThrow(/at least one rule/);
    expect(() => planRetention(daily, { keepDaily: 0 })).toThrow(RetentionRuleError);
    expect(planRetention(daily, {}, { allowNoRules: true }).every((d) => !d.keep)).toBe(true);
    expect(() => parseRetentionRules({ keepDaily: 'x' })).toThrow('keep-daily must be a whole number >= 0, got "x"');
    expect(() => parseRetentionRules({ keepLast: -1 })).toThrow('keep-last must be a whole number >= 0, got -1');
    expect(() => parseRetentionRules({ keepHourly: 1.5 })).toThrow(/keep-hourly/);
    expect(() => parseRetentionRules({ keepWithin: '2q' })).toThrow(/keep-within "2q": use a whole number followed by h, d, w, m or y/);
    expect(() => parseRetentionRules({ keepWithin: '10min' })).toThrow(RetentionRuleError);
    expect(() => parseRetentionRules({ timeZone: 'Mars/Olympus' })).toThrow(/time zone "Mars\/Olympus" is not known/);
    expect(parseRetentionRules({ keepDaily: '7', keepWithin: '2m', timeZone: 'Europe/Berlin' })).toEqual({
      keepDaily: 7,
      keepWithin: { text: '2m', years: 0, months: 2, weeks: 0, days: 0, hours: 0 },
      timeZone: 'Europe/Berlin',
    });
  });
});

describe('planRetention properties', () => {
  const history = fc.uniqueArray(
    fc.record({
      id: fc.stringMatching(/^[0-9a-f]{16}$/),
      time: fc.integer({ min: Date.UTC(2020, 0, 1), max: Date.UTC(2027, 0, 1) }),
      protected: fc.boolean(),
    }),
    { selector: (s) => s.id, maxLength: 60 },
  );
  const count = fc.option(fc.integer({ min: 0, max: 8 }), { nil: undefined });
  const rules = fc.record({
    keepLast: count,
    keepHourly: count,
    keepDaily: count,
    keepWeekly: count,
    keepMonthly: count,
    keepYearly: count,
    keepWithin: fc.option(
      fc.tuple(fc.integer({ min: 1, max: 30 }), fc.constantFrom('h', 'd', 'w', 'm', 'y', 'y6m', 'w12h')).map(([n, u]) => parseRetentionDuration(`${n}${u}`)),
      { nil: undefined },
    ),
    timeZone: fc.constantFrom(undefined, 'UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata'),
  });
  const anyRule = (r: RetentionRules) =>
    [r.keepLast, r.keepHourly, r.keepDaily, r.keepWeekly, r.keepMonthly, r.keepYearly].some((n) => (n ?? 0) > 0) || r.keepWithin !== undefined;

  it('keep-last n alone keeps exactly the n newest unprotected snapshots (and the protected ones)', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 1, max: 10 }), (snaps, n) => {
        const plan = planRetention(snaps, { keepLast: n });
        const policy = plan.filter((d) => !snaps.find((s) => s.id === d.id)!.protected);
        expect(policy.filter((d) => d.keep).map((d) => d.id)).toEqual(policy.slice(0, n).map((d) => d.id));
        for (const s of snaps) if (s.protected) expect(plan.find((d) => d.id === s.id)!.reasons).toEqual(['protected']);
      }),
    );
  });

  it('the newest snapshot is kept whenever a rule keeps something; every kept one has a reason', () => {
    fc.assert(
      fc.property(history, rules, (snaps, r) => {
        fc.pre(anyRule(r) && snaps.length > 0);
        const plan = planRetention(snaps, r);
        expect(plan[0].keep).toBe(true);
        for (const d of plan) expect(d.keep).toBe(d.reasons.length > 0);
      }),
    );
  });

  it('is deterministic and independent of input order; more slots never forget more', () => {
    fc.assert(
      fc.property(history, rules, fc.integer(), (snaps, r, seed) => {
        fc.pre(anyRule(r));
        const shuffled = [...snaps].sort((a, b) => ((a.time * 31 + seed) % 97) - ((b.time * 31 + seed) % 97));
        const plan = planRetention(snaps, r);
        expect(planRetention(shuffled, r)).toEqual(plan);
        const bigger = { ...r, keepDaily: (r.keepDaily ?? 0) + 1 };
        const keptBefore = new Set(plan.filter((d) => d.keep).map((d) => d.id));
        const keptAfter = new Set(
          planRetention(snaps, bigger)
            .filter((d) => d.keep)
            .map((d) => d.id),
        );
        for (const id of keptBefore) expect(keptAfter.has(id)).toBe(true);
      }),
    );
  });

  it('each bucket rule keeps at most n snapshots, all in different buckets', () => {
    fc.assert(
      fc.property(
        history,
        fc.integer({ min: 1, max: 6 }),
        fc.constantFrom('keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'),
        (snaps, n, field) => {
          const plan = planRetention(snaps, { [field]: n });
          const labels = plan.filter((d) => d.keep && d.reasons[0] !== 'protected').map((d) => d.reasons[0]);
          expect(labels.length).toBeLessThanOrEqual(n);
          expect(new Set(labels).size).toBe(labels.length);
        },
      ),
    );
  });
});

describe('keep-within durations', () => {
  it.each([
    ['2m', { months: 2 }, '2m'],
    ['14d', { days: 14 }, '14d'],
    ['3w', { weeks: 3 }, '3w'],
    ['1y', { years: 1 }, '1y'],
    ['36h', { hours: 36 }, '36h'],
    ['1Y6M', { years: 1, months: 6 }, '1y6m'],
    [' 1y 2w ', { years: 1, weeks: 2 }, '1y2w'],
  ])('%s', (text, fields, canonical) => {
    const d = parseRetentionDuration(text);
    expect(d).toEqual({ years: 0, months: 0, weeks: 0, days: 0, hours: 0, ...fields, text: canonical });
  });

  it.each([
    ['2 months', '"2 months": write 2m'],
    ['30min', 'no minutes or seconds ("m" means months)'],
    ['6m1y', '"6m1y": use a whole number followed by h, d, w, m or y'],
    ['0d', '"0d" is zero; omit keep-within instead'],
    ['', '"": use a whole number'],
    [12, 'must be a duration'],
  ])('rejects %s with what to write', (text, message) => {
    expect(() => parseRetentionDuration(text)).toThrow(RetentionRuleError);
    expect(() => parseRetentionDuration(text)).toThrow(message);
  });

  it('names the option when given one (a CLI flag or rule name)', () => {
    expect(() => parseRetentionDuration('2q', 'keep-within')).toThrow(/^keep-within "2q": use a whole number/);
    expect(() => parseRetentionDuration('2q')).toThrow(/^"2q": use a whole number/);
  });

  it('computes calendar cutoffs in the time zone', () => {
    const cut = (now: string, d: string, tz?: string): string => retentionCutoff(new Date(now), parseRetentionDuration(d), tz).toISOString();
    // 2m before 20 Nov 2026 10:00 CET is 20 Sep 2026 10:00 CEST.
    expect(cut('2026-11-20T09:00:00Z', '2m', 'Europe/Berlin')).toBe('2026-09-20T08:00:00.000Z');
    // Month ends clamp: 31 May minus 3 months is 28 Feb (29 in a leap year); 31 March minus 1m.
    expect(cut('2026-05-31T12:00:00Z', '3m', 'UTC')).toBe('2026-02-28T12:00:00.000Z');
    expect(cut('2028-05-31T12:00:00Z', '3m')).toBe('2028-02-29T12:00:00.000Z');
    expect(cut('2026-03-31T10:00:00Z', '1m')).toBe('2026-02-28T10:00:00.000Z');
    expect(cut('2026-11-20T12:00:00Z', '1y2w', 'UTC')).toBe('2025-11-06T12:00:00.000Z');
    expect(cut('2026-03-31T10:00:00Z', '36h')).toBe('2026-03-29T22:00:00.000Z');
    // Days are calendar days across DST (23-hour day on 29 March in Berlin); hours are elapsed.
    expect(cut('2026-03-30T10:00:00Z', '1d', 'Europe/Berlin')).toBe('2026-03-29T10:00:00.000Z');
    expect(cut('2026-03-30T10:00:00Z', '24h', 'Europe/Berlin')).toBe('2026-03-29T10:00:00.000Z');
    expect(cut('2026-03-29T12:00:00Z', '1d', 'Europe/Berlin')).toBe('2026-03-28T13:00:00.000Z');
    // A local time that does not exist on the target day moves forward by the gap: 02:30
    // on 29 March 2026 in Berlin is read as 03:30 CEST.
    expect(cut('2026-03-30T00:30:00Z', '1d', 'Europe/Berlin')).toBe('2026-03-29T01:30:00.000Z');
    expect(() => retentionCutoff(new Date(), parseRetentionDuration('1d'), 'Mars/Olympus')).toThrow(/is not known/);
  });

  it('property: the cutoff is earlier than now and later for shorter durations', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2001-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }),
        fc.integer({ min: 1, max: 30 }),
        fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York'),
        (now, n, tz) => {
          const a = retentionCutoff(now, parseRetentionDuration(`${n}m`), tz).getTime();
          const b = retentionCutoff(now, parseRetentionDuration(`${n + 1}m`), tz).getTime();
          expect(a).toBeLessThan(now.getTime());
          expect(b).toBeLessThan(a);
        },
      ),
    );
  });
});
