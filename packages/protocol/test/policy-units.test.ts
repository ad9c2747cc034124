import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { inRunWindow, parseBandwidth, parsePercent, parseRetentionDuration, parseRunWindow, retentionCutoff } from '../dist/index.js';

describe('bandwidth', () => {
  it.each([
    ['50MB/s', 50_000_000],
    ['200Mbit/s', 25_000_000],
    ['1GiB/s', 1024 ** 3],
    ['800 kB/s', 800_000],
    ['1.5MB/s', 1_500_000],
    ['8bit/s', 1],
  ])('%s', (text, bytes) => expect(parseBandwidth(text).bytesPerSecond).toBe(bytes));
  it.each([
    ['50MB', 'write the rate per second with "/s"'],
    ['50mb/s', '"mb" is ambiguous'],
    ['fast', 'is not a rate'],
    ['1bit/s', 'less than 1 byte/s'],
    [50, 'must be a rate'],
  ])('rejects %s', (text, message) => expect(() => parseBandwidth(text)).toThrow(message));
});

describe('run window', () => {
  it('parses and wraps midnight', () => {
    const w = parseRunWindow('22:00-6:00');
    expect(w).toEqual({ text: '22:00-06:00', start: 1320, end: 360 });
    expect(inRunWindow(w, new Date('2026-11-20T21:30:00Z'), 'Europe/Berlin')).toBe(true); // 22:30
    expect(inRunWindow(w, new Date('2026-11-20T05:00:00Z'), 'Europe/Berlin')).toBe(false); // 06:00, end exclusive
    expect(inRunWindow(w, new Date('2026-11-20T04:59:00Z'), 'Europe/Berlin')).toBe(true);
    expect(parseRunWindow('00:00-24:00')).toEqual({ text: '00:00-24:00', start: 0, end: 1440 });
  });
  it.each([
    ['22:00', 'is not a time range'],
    ['25:00-06:00', 'start "25:00" is not a time'],
    ['22:00-24:30', 'end "24:30" is not a time'],
    ['06:00-06:00', 'is empty'],
  ])('rejects %s', (text, message) => expect(() => parseRunWindow(text)).toThrow(message));
  it('property: membership matches a direct definition', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1439 }), fc.integer({ min: 1, max: 1440 }), fc.integer({ min: 0, max: 1439 }), (start, end, m) => {
        fc.pre(start !== end % 1440 || end === 1440);
        const fmt = (x: number): string => `${String(Math.floor(x / 60)).padStart(2, '0')}:${String(x % 60).padStart(2, '0')}`;
        const w = parseRunWindow(`${fmt(start)}-${fmt(end)}`);
        const at = new Date(Date.UTC(2026, 0, 1, 0, m));
        const inside = start < end ? m >= start && m < end : m >= start || m < end;
        expect(inRunWindow(w, at, 'UTC')).toBe(inside);
      }),
    );
  });
});

describe('percent', () => {
  it('parses and checks range', () => {
    expect(parsePercent('10%')).toBe(10);
    expect(parsePercent('2.5 %')).toBe(2.5);
    expect(() => parsePercent('0%')).toThrow('more than 0%');
    expect(() => parsePercent('10')).toThrow('percentage such as 10%');
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
  ])('%s', (text, fields, canonical) => {
    const d = parseRetentionDuration(text);
    expect(d).toEqual({ years: 0, months: 0, weeks: 0, days: 0, hours: 0, ...fields, text: canonical });
  });
  it.each([
    ['2 months', 'write 2m'],
    ['30min', '"m" means months'],
    ['6m1y', 'is not a duration'],
    ['0d', 'is zero'],
    ['', 'is not a duration'],
  ])('rejects %s', (text, message) => expect(() => parseRetentionDuration(text)).toThrow(message));

  it('computes calendar cutoffs in the time zone', () => {
    const at = (s: string): string => retentionCutoff(new Date(s), parseRetentionDuration('2m'), 'Europe/Berlin').toISOString();
    // 2m before 20 Nov 2026 10:00 CET is 20 Sep 2026 10:00 CEST.
    expect(at('2026-11-20T09:00:00Z')).toBe('2026-09-20T08:00:00.000Z');
    // Month ends clamp: 31 May minus 3 months is 28 Feb.
    expect(retentionCutoff(new Date('2026-05-31T12:00:00Z'), parseRetentionDuration('3m'), 'UTC').toISOString()).toBe('2026-02-28T12:00:00.000Z');
    expect(retentionCutoff(new Date('2028-05-31T12:00:00Z'), parseRetentionDuration('3m'), 'UTC').toISOString()).toBe('2028-02-29T12:00:00.000Z');
    expect(retentionCutoff(new Date('2026-11-20T12:00:00Z'), parseRetentionDuration('1y2w'), 'UTC').toISOString()).toBe('2025-11-06T12:00:00.000Z');
    // Days are calendar days across DST (23-hour day on 29 March in Berlin); hours are elapsed.
    expect(retentionCutoff(new Date('2026-03-30T10:00:00Z'), parseRetentionDuration('1d'), 'Europe/Berlin').toISOString()).toBe('2026-03-29T10:00:00.000Z');
    expect(retentionCutoff(new Date('2026-03-30T10:00:00Z'), parseRetentionDuration('24h'), 'Europe/Berlin').toISOString()).toBe('2026-03-29T10:00:00.000Z');
    expect(retentionCutoff(new Date('2026-03-29T12:00:00Z'), parseRetentionDuration('1d'), 'Europe/Berlin').toISOString()).toBe('2026-03-28T13:00:00.000Z');
  });

  it('property: the cutoff is earlier than now and later for shorter durations', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date('2001-01-01'), max: new Date('2090-01-01'), noInvalidDate: true }), fc.integer({ min: 1, max: 30 }), fc.constantFrom('UTC', 'Europe/Berlin', 'America/New_York'), (now, n, tz) => {
        const a = retentionCutoff(now, parseRetentionDuration(`${n}m`), tz).getTime();
        const b = retentionCutoff(now, parseRetentionDuration(`${n + 1}m`), tz).getTime();
        expect(a).toBeLessThan(now.getTime());
        expect(b).toBeLessThan(a);
      }),
    );
  });
});
