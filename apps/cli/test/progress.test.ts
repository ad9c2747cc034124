/**
 * The progress line (apps/cli/src/progress.ts) without a terminal:
 * - the pure figures and formatting: percent within 0..100 and never decreasing as bytes
 *   grow, ETA never negative and only once the rate is meaningful, the final line;
 * - RateMeter: smoothed over the last 5 s, no rate until the samples span 2 s, starts
 *   over when the count goes back (the next source of a run);
 * - ProgressLine with a fake clock and writer: redraws at most every 250 ms, the final
 *   line with `summary`, nothing at all when disabled (not a terminal, --json);
 * - the built `hoard` writes nothing on stderr when stderr is not a terminal.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDuration, formatFinal, formatProgress, ProgressLine, progressFigures, RATE_MIN_SPAN_MS, RateMeter } from '../dist/progress.js';
import { hoardCli } from './helpers.js';

const bytes = fc.integer({ min: 0, max: 2 ** 50 });
const positive = fc.integer({ min: 1, max: 2 ** 50 });
const rate = fc.option(fc.double({ min: 0, max: 1e12, noNaN: true }), { nil: undefined });
const seconds = fc.double({ min: 0, max: 1e7, noNaN: true });

const percentIn = (line: string): number | undefined => {
  const m = /\((\d+\.\d)%\)/.exec(line);
  return m ? Number(m[1]) : undefined;
};

describe('progress figures and line (pure)', () => {
  it('percent is within 0..100 whatever the bytes, also past the total, and the text agrees', () => {
    fc.assert(
      fc.property(bytes, positive, rate, seconds, (done, total, r, elapsed) => {
        const f = progressFigures({ done, total, rate: r, elapsedSeconds: elapsed });
        expect(f.percent).toBeGreaterThanOrEqual(0);
        expect(f.percent).toBeLessThanOrEqual(100);
        const shown = percentIn(formatProgress({ done, total, rate: r, elapsedSeconds: elapsed }));
        expect(shown).toBe(f.percent);
        // 100.0% only when everything is done.
        if (done < total) expect(f.percent).toBeLessThan(100);
      }),
    );
  });

  it('ETA is never negative, and is there only with a total and a meaningful rate', () => {
    fc.assert(
      fc.property(bytes, fc.option(positive, { nil: undefined }), rate, seconds, (done, total, r, elapsed) => {
        const f = progressFigures({ done, total, rate: r, elapsedSeconds: elapsed });
        if (f.etaSeconds !== undefined) {
          expect(f.etaSeconds).toBeGreaterThanOrEqual(0);
          expect(total).toBeDefined();
          expect(r).toBeGreaterThan(0);
        }
        if (total === undefined || r === undefined || r === 0) expect(f.etaSeconds).toBeUndefined();
        const line = formatProgress({ done, total, rate: r, elapsedSeconds: elapsed });
        expect(line).not.toMatch(/ETA -/);
        if (r === undefined) expect(line).not.toContain('ETA');
        expect(line).not.toMatch(/NaN|Infinity|undefined/);
      }),
    );
  });

  it('as the bytes done grow (same total, same rate), the percent never goes down and the ETA never up', () => {
    fc.assert(
      fc.property(positive, fc.array(bytes, { minLength: 2, maxLength: 30 }), fc.double({ min: 1, max: 1e10, noNaN: true }), (total, steps, r) => {
        const dones = [...steps].sort((a, b) => a - b);
        let lastPercent = -1;
        let lastEta = Infinity;
        for (const done of dones) {
          const f = progressFigures({ done, total, rate: r, elapsedSeconds: 10 });
          expect(f.percent!).toBeGreaterThanOrEqual(lastPercent);
          expect(f.etaSeconds!).toBeLessThanOrEqual(lastEta);
          lastPercent = f.percent!;
          lastEta = f.etaSeconds!;
        }
      }),
    );
  });

  it('formats a line as bytes of total (percent), rate, ETA, extra', () => {
    expect(formatProgress({ done: 512 * 1024 * 1024, total: 2 * 1024 ** 3, rate: 64 * 1024 * 1024, elapsedSeconds: 8 })).toBe(
      '512 MiB of 2 GiB (25.0%)  64 MiB/s  ETA 24s',
    );
    // Rate not meaningful yet: the average since the start, no ETA.
    expect(formatProgress({ done: 10 * 1024 * 1024, total: 100 * 1024 * 1024, elapsedSeconds: 1 })).toBe('10 MiB of 100 MiB (10.0%)  10 MiB/s');
    // Unknown total: no percent, no ETA.
    expect(formatProgress({ done: 3 * 1024, elapsedSeconds: 3, rate: 1024, extra: 'new 1 KiB' })).toBe('3 KiB  1 KiB/s  new 1 KiB');
    // Done: 100.0% and no ETA.
    expect(formatProgress({ done: 100, total: 100, rate: 10, elapsedSeconds: 10 })).toBe('100 B of 100 B (100.0%)  10 B/s');
    expect(formatProgress({ done: 0, total: 100, elapsedSeconds: 0 })).toBe('0 B of 100 B (0.0%)');
  });

  it('the final line: total bytes, duration, average rate', () => {
    expect(formatFinal(1024 ** 3, 10)).toBe('1 GiB in 10.0 s, 102.40 MiB/s average');
    expect(formatFinal(0, 0)).toBe('0 B in 0.0 s, average rate not measurable');
    fc.assert(
      fc.property(bytes, seconds, (b, s) => {
        const line = formatFinal(b, s);
        expect(line).not.toMatch(/NaN|Infinity|-/);
      }),
    );
  });

  it('durations are whole seconds, never 60s or negative', () => {
    expect(formatDuration(59.5)).toBe('1m00s');
    expect(formatDuration(119.2)).toBe('2m00s');
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe('3h05m');
    expect(formatDuration(-4)).toBe('0s');
    fc.assert(
      fc.property(fc.double({ min: -1e3, max: 1e8, noNaN: true }), (s) => {
        expect(formatDuration(s)).toMatch(/^(\d+s|\d+m[0-5]\ds|\d+h[0-5]\dm)$/);
      }),
    );
  });
});

describe('RateMeter', () => {
  it('no rate until the samples span 2 s; then the rate of the last 5 s', () => {
    const m = new RateMeter();
    m.add(0, 0);
    m.add(1000, 100 * 1024 * 1024);
    expect(m.rate()).toBeUndefined();
    m.add(RATE_MIN_SPAN_MS, 200 * 1024 * 1024);
    expect(m.rate()).toBe(100 * 1024 * 1024);
    // A fast start, then 10 s at 10 MiB/s: the rate follows the recent past, not the average.
    let done = 200 * 1024 * 1024;
    for (let t = 2250; t <= 12_000; t += 250) {
      done += 2.5 * 1024 * 1024;
      m.add(t, done);
    }
    expect(m.rate()).toBeCloseTo(10 * 1024 * 1024, -3);
  });

  it('is never negative and starts over when the count goes back (next source of a run)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 2000 }), bytes), { maxLength: 60 }), (steps) => {
        const m = new RateMeter();
        let t = 0;
        for (const [dt, done] of steps) {
          t += dt;
          m.add(t, done);
          const r = m.rate();
          if (r !== undefined) expect(r).toBeGreaterThanOrEqual(0);
        }
      }),
    );
    const m = new RateMeter();
    m.add(0, 0);
    m.add(3000, 3000);
    expect(m.rate()).toBe(1000);
    m.add(3100, 10);
    expect(m.rate()).toBeUndefined();
  });
});

describe('ProgressLine', () => {
  function fake(enabled: boolean, summary = false): { line: ProgressLine; written: string[]; tick: (ms: number) => void } {
    let now = 1_000_000;
    const written: string[] = [];
    const line = new ProgressLine(enabled, { summary, now: () => now, write: (t) => void written.push(t), columns: () => 200 });
    return { line, written, tick: (ms) => void (now += ms) };
  }

  it('redraws at most every 250 ms, ETA once the rate is meaningful, then the final line', () => {
    const { line, written, tick } = fake(true, true);
    const MiB = 1024 * 1024;
    line.update(0, 100 * MiB);
    for (let i = 1; i <= 40; i++) {
      tick(100);
      line.update(i * MiB, 100 * MiB);
    }
    // 4 s in 100 ms steps: a draw at 0 and then every 300 ms (the first update >= 250 ms after the last).
    expect(written.length).toBe(14);
    expect(written.every((w) => w.startsWith('\r\x1b[K'))).toBe(true);
    expect(written[0]).toBe('\r\x1b[K0 B of 100 MiB (0.0%)');
    expect(written.filter((w) => w.includes('ETA')).length).toBeGreaterThan(0);
    expect(written.slice(0, 6).some((w) => w.includes('ETA'))).toBe(false); // the first 1.5 s
    expect(written[written.length - 1]).toBe('\r\x1b[K39 MiB of 100 MiB (39.0%)  10 MiB/s  ETA 7s');
    line.done();
    line.done();
    expect(written.slice(-2)).toEqual(['\r\x1b[K', '40 MiB in 4.0 s, 10 MiB/s average\n']);
    line.update(50 * MiB, 100 * MiB);
    expect(written.length).toBe(16);
  });

  it('without summary it only clears the line; cut to the terminal width', () => {
    const written: string[] = [];
    const line = new ProgressLine(true, { now: () => 0, write: (t) => void written.push(t), columns: () => 12 });
    line.update(5 * 1024 ** 3, 10 * 1024 ** 3, 'a long extra');
    expect(written).toEqual(['\r\x1b[K5 GiB of 10']);
    line.done();
    expect(written).toEqual(['\r\x1b[K5 GiB of 10', '\r\x1b[K']);
  });

  it('formats an extra given as a function only when it redraws', () => {
    const { line, written, tick } = fake(true);
    let formatted = 0;
    const extra = () => `new ${++formatted}`;
    for (let i = 0; i < 100; i++) {
      tick(10);
      line.update(i * 1000, 100_000, extra);
    }
    // 1 s in 10 ms steps: a draw at the start and then every 250 ms.
    expect(formatted).toBe(written.length);
    expect(formatted).toBeLessThan(6);
    expect(written[written.length - 1]).toContain(`new ${formatted}`);
    const off = fake(false);
    off.line.update(1, 2, extra);
    expect(formatted).toBe(written.length); // disabled: never formatted
  });

  it('disabled (not a terminal, --json): writes nothing, also no final line', () => {
    const { line, written, tick } = fake(false, true);
    for (let i = 0; i < 20; i++) {
      tick(300);
      line.update(i * 1000, 20_000);
    }
    line.done();
    expect(written).toEqual([]);
  });

  it('forCommand: on only when stderr is a terminal and not --json', () => {
    const desc = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    const draws = (json: boolean | undefined, tty: boolean): number => {
      Object.defineProperty(process.stderr, 'isTTY', { value: tty, configurable: true });
      const written: string[] = [];
      const line = ProgressLine.forCommand(json, { summary: true, write: (t) => void written.push(t), columns: () => 200 });
      line.update(10, 100);
      line.done();
      return written.length;
    };
    try {
      expect(draws(undefined, false)).toBe(0);
      expect(draws(false, false)).toBe(0);
      expect(draws(true, true)).toBe(0);
      expect(draws(undefined, true)).toBe(3);
    } finally {
      if (desc) Object.defineProperty(process.stderr, 'isTTY', desc);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }
  });
});

describe('the built hoard, stderr not a terminal', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hoard-test-progress-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('backup of a file of known size and its restore print no progress on stderr', async () => {
    const repo = join(dir, 'repo');
    const file = join(dir, 'image.bin');
    const data = Buffer.alloc(24 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE((i * 2654435761) >>> 0, i);
    await writeFile(file, data);
    expect((await hoardCli(['init', '--repo', repo])).code).toBe(0);
    const b = await hoardCli(['backup', '--repo', repo, '--job', 'img', file]);
    expect(b).toMatchObject({ code: 0, stderr: '' });
    expect(b.stdout).toMatch(/^snapshot [0-9a-f]+ of job img/);
    const r = await hoardCli(['restore', '--repo', repo, 'img', '--to', join(dir, 'restored.bin')]);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('restored snapshot');
    const v = await hoardCli(['restore', '--repo', repo, 'img', '--verify-only']);
    expect(v).toMatchObject({ code: 0, stderr: '' });
  });
});
