import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
// keep-within durations and cutoffs are tested once, with @hoard/retention (packages/retention/test).
import { agentRunLimit, inRunWindow, nextRunWindowOpen, parseBandwidth, parsePercent, parsePolicyDocument, parseRunWindow } from '../dist/index.js';

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
  it('finds when the window next opens (the scheduler holds retries and catch-ups until then)', () => {
    const w = parseRunWindow('22:00-06:00');
    const open = (at: string, tz = 'UTC', window = w): string => nextRunWindowOpen(window, new Date(at), tz).toISOString();
    expect(open('2026-11-20T23:00:00Z')).toBe('2026-11-20T23:00:00.000Z'); // inside: now
    expect(open('2026-11-20T03:00:00Z')).toBe('2026-11-20T03:00:00.000Z'); // inside, after midnight
    expect(open('2026-11-20T06:00:00Z')).toBe('2026-11-20T22:00:00.000Z'); // end excluded
    expect(open('2026-11-20T12:00:00Z', 'Europe/Berlin')).toBe('2026-11-20T21:00:00.000Z'); // 22:00 CET
    expect(open('2026-11-20T23:30:00Z', 'UTC', parseRunWindow('01:00-02:00'))).toBe('2026-11-21T01:00:00.000Z'); // tomorrow
    // A start that does not exist (02:30 on 29 March 2026 in Berlin) moves forward by the gap.
    expect(open('2026-03-28T23:00:00Z', 'Europe/Berlin', parseRunWindow('02:30-04:00'))).toBe('2026-03-29T01:30:00.000Z');
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

describe('agent run limit', () => {
  it('is the smallest max-concurrent-jobs-per-agent of the policies naming the agent; 1 without one', () => {
    const policy = (name: string, agents: string, limits = '') =>
      `name: ${name}\nsources: [{agents: [${agents}], specs: ["cmd:true"]}]\nschedule: {timezone: UTC, full: daily}\n${limits}`;
    const [a, b, c] = parsePolicyDocument(
      [
        policy('a', 'kvm-01', 'limits: {max-concurrent-jobs-per-agent: 3}'),
        policy('b', 'kvm-01, kvm-02', 'limits: {max-concurrent-jobs-per-agent: 2}'),
        policy('c', 'kvm-03'),
      ].join('\n---\n'),
    );
    expect(agentRunLimit([a!, b!, c!], 'kvm-01')).toBe(2);
    expect(agentRunLimit([a!], 'kvm-01')).toBe(3);
    expect(agentRunLimit([a!, b!, c!], 'kvm-03')).toBe(1); // a policy without the limit counts as 1
    expect(agentRunLimit([a!, b!, c!], 'kvm-09')).toBe(1); // named by no policy
  });
});
