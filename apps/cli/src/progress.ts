/**
 * One status line on stderr for long work, redrawn at most 4 times a second, only on a
 * terminal (never in --json mode, never into a pipe or log file).
 */
import { formatBytes } from '@hoard/chunker';

export class ProgressLine {
  private last = 0;
  private readonly started = Date.now();
  private shown = false;

  constructor(private readonly enabled: boolean) {}

  static forCommand(json: boolean | undefined): ProgressLine {
    return new ProgressLine(!json && process.stderr.isTTY === true);
  }

  /** `done`/`total` in bytes (total may be unknown); `extra` is appended as is. */
  update(done: number, total: number | undefined, extra = ''): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.last < 250) return;
    this.last = now;
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    let line = `${formatBytes(Math.round(done))}`;
    if (total !== undefined && total > 0) line += ` of ${formatBytes(total)} (${((100 * done) / total).toFixed(1)}%)`;
    line += `  ${formatBytes(Math.round(rate))}/s`;
    if (extra) line += `  ${extra}`;
    if (total !== undefined && rate > 0 && done < total) line += `  ETA ${formatDuration((total - done) / rate)}`;
    process.stderr.write(`\r\x1b[K${line}`);
    this.shown = true;
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
    this.shown = false;
  }
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.ceil(seconds)}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${String(Math.ceil(seconds % 60)).padStart(2, '0')}s`;
  return `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m`;
}
