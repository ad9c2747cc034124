/**
 * One status line on stderr for long work, redrawn at most 4 times a second, only on a
 * terminal (never in --json mode, never into a pipe or log file):
 *
 *   1.20 GiB of 4.00 GiB (30.0%)  98.10 MiB/s  ETA 29s  [extra]
 *
 * The rate is smoothed over the last RATE_WINDOW_MS (RateMeter); until the samples span
 * RATE_MIN_SPAN_MS it is the average since the start and no ETA is shown. With
 * `summary: true` the line is replaced at the end by a final one (`formatFinal`):
 *
 *   1.20 GiB in 12.3 s, 99.90 MiB/s average
 *
 * What is drawn comes from pure functions (progressFigures, formatProgress, formatFinal)
 * so it can be tested without a terminal.
 */
// The subpath: the package's index loads the chunker, its workers and the native hash.
import { formatBytes } from '@hoard/chunker/errors';

/** The rate is smoothed over this much of the recent past. */
export const RATE_WINDOW_MS = 5000;
/** Below this span of samples the rate is not meaningful enough for an ETA. */
export const RATE_MIN_SPAN_MS = 2000;
/** At most this often the line is redrawn. */
const REDRAW_MS = 250;

/**
 * Bytes per second over a sliding window of (time, bytes done) samples. A sample with
 * fewer bytes than the previous one starts over (a new source of a run counts from 0).
 */
export class RateMeter {
  private samples: { at: number; done: number }[] = [];

  constructor(
    private readonly windowMs = RATE_WINDOW_MS,
    private readonly minSpanMs = RATE_MIN_SPAN_MS,
  ) {}

  add(at: number, done: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && (done < last.done || at < last.at)) this.samples = [];
    this.samples.push({ at, done });
    // Keep one sample at or before the window's start, so the window is covered whole.
    while (this.samples.length > 2 && this.samples[1]!.at <= at - this.windowMs) this.samples.shift();
  }

  /** Bytes per second over the window, or undefined while the samples span too little time. */
  rate(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last) return undefined;
    const span = last.at - first.at;
    if (span < this.minSpanMs) return undefined;
    return Math.max(0, (last.done - first.done) / (span / 1000));
  }
}

export interface ProgressView {
  /** Bytes done so far. */
  done: number;
  /** Bytes in all, when known. */
  total?: number;
  /** Seconds since the work started. */
  elapsedSeconds: number;
  /** The smoothed rate (bytes/s), undefined while it is not meaningful yet. */
  rate?: number;
  /** Appended as is. */
  extra?: string;
}

export interface ProgressFigures {
  /** 0..100, one decimal, rounded down (100.0 only when all is done); undefined without a total. */
  percent?: number;
  /** Bytes per second to show: the smoothed rate, else the average since the start. */
  rate?: number;
  /** Seconds left (>= 0); only with a total and a meaningful rate. */
  etaSeconds?: number;
}

const finite = (n: number | undefined): n is number => n !== undefined && Number.isFinite(n);

/** The numbers of a progress line. */
export function progressFigures(v: ProgressView): ProgressFigures {
  const done = finite(v.done) ? Math.max(0, v.done) : 0;
  const total = finite(v.total) && v.total > 0 ? v.total : undefined;
  const figures: ProgressFigures = {};
  if (total !== undefined) figures.percent = Math.min(100, Math.floor((1000 * done) / total) / 10);
  if (finite(v.rate) && v.rate >= 0) figures.rate = v.rate;
  else figures.rate = averageRate(done, v.elapsedSeconds);
  if (total !== undefined && finite(v.rate) && v.rate > 0) {
    const eta = Math.max(0, (total - done) / v.rate);
    if (Number.isFinite(eta)) figures.etaSeconds = eta;
  }
  return figures;
}

/** Bytes per second, or undefined when too little time passed to say. */
function averageRate(bytes: number, seconds: number): number | undefined {
  if (!finite(seconds) || seconds < 0.001) return undefined;
  const rate = bytes / seconds;
  return Number.isFinite(rate) ? rate : undefined;
}

/** The status line: `DONE [of TOTAL (P%)]  RATE/s  [ETA T]  [extra]`. */
export function formatProgress(v: ProgressView): string {
  const f = progressFigures(v);
  let line = formatBytes(Math.max(0, Math.round(finite(v.done) ? v.done : 0)));
  if (f.percent !== undefined) line += ` of ${formatBytes(v.total!)} (${f.percent.toFixed(1)}%)`;
  if (f.rate !== undefined) line += `  ${formatBytes(Math.round(f.rate))}/s`;
  if (f.etaSeconds !== undefined && f.percent !== undefined && f.percent < 100) line += `  ETA ${formatDuration(f.etaSeconds)}`;
  if (v.extra) line += `  ${v.extra}`;
  return line;
}

/** The final line: `TOTAL in S s, RATE/s average`. */
export function formatFinal(bytes: number, seconds: number): string {
  const b = finite(bytes) ? Math.max(0, Math.round(bytes)) : 0;
  const s = finite(seconds) ? Math.max(0, seconds) : 0;
  const average = averageRate(b, s);
  const rate = average !== undefined ? `${formatBytes(Math.round(average))}/s average` : 'average rate not measurable';
  return `${formatBytes(b)} in ${s.toFixed(1)} s, ${rate}`;
}

export interface ProgressLineOptions {
  /** Replace the line by a final one (bytes, duration, average rate) at done(). */
  summary?: boolean;
  /** For tests: the clock (ms) and where the line goes. */
  now?: () => number;
  write?: (text: string) => void;
  /** Terminal width; longer lines are cut so that \r redraws one line. */
  columns?: () => number | undefined;
}

export class ProgressLine {
  private last = -Infinity;
  private readonly started: number;
  private readonly meter = new RateMeter();
  private readonly now: () => number;
  private readonly write: (text: string) => void;
  private readonly columns: () => number | undefined;
  private shown = false;
  private finished = false;
  private latest: number | undefined;

  constructor(
    private readonly enabled: boolean,
    private readonly options: ProgressLineOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.write = options.write ?? ((text) => void process.stderr.write(text));
    this.columns = options.columns ?? (() => process.stderr.columns);
    this.started = this.now();
  }

  /** Enabled only when stderr is a terminal and the command does not print JSON. */
  static forCommand(json: boolean | undefined, options: ProgressLineOptions = {}): ProgressLine {
    return new ProgressLine(!json && process.stderr.isTTY === true, options);
  }

  /**
   * `done`/`total` in bytes (total may be unknown); `extra` is appended as is. A backup
   * calls this once per chunk: give `extra` as a function and it is only formatted when
   * the line is redrawn (a few times a second), not hundreds of thousands of times.
   */
  update(done: number, total: number | undefined, extra: string | (() => string) = ''): void {
    if (!this.enabled || this.finished) return;
    const now = this.now();
    this.meter.add(now, done);
    this.latest = done;
    if (now - this.last < REDRAW_MS) return;
    this.last = now;
    const text = typeof extra === 'function' ? extra() : extra;
    let line = formatProgress({ done, total, elapsedSeconds: (now - this.started) / 1000, rate: this.meter.rate(), extra: text });
    const width = this.columns();
    if (width !== undefined && width > 1 && line.length >= width) line = line.slice(0, width - 1);
    this.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  /** Clears the line (or, with `summary`, replaces it by the final line); later calls do nothing. */
  done(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.shown) this.write('\r\x1b[K');
    if (this.enabled && this.options.summary && this.latest !== undefined) this.write(`${formatFinal(this.latest, (this.now() - this.started) / 1000)}\n`);
    this.shown = false;
  }
}

/** `42s`, `3m07s`, `2h05m`: whole seconds, never negative. */
export function formatDuration(seconds: number): string {
  const s = Number.isFinite(seconds) ? Math.max(0, Math.ceil(seconds)) : 0;
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}
