/**
 * `pnpm bench backup` figures: the ratios hoard/restic and hoard/borg, the targets, and the
 * tables. Pure functions of the measured runs, so they are unit-tested.
 */
import type { ToolName } from './peers.js';
import { fmt, renderTable } from './table.js';

const MiB = 1 << 20;

export interface BackupRun {
  day: number;
  tool: ToolName;
  /** Bytes of that day's file. */
  bytes: number;
  backup_s: number;
  backup_mb_s: number;
  /** Repository size after this day's backup (sum of file sizes). */
  stored_bytes: number;
  peak_rss_bytes: number;
  cpu_s: number;
}

export interface RestoreRun {
  day: number;
  tool: ToolName;
  bytes: number;
  restore_s: number;
  restore_mb_s: number;
  peak_rss_bytes: number;
  cpu_s: number;
}

export interface SeriesResult {
  /** "vm_image" | "db_dump" */
  name: string;
  job: string;
  days: number;
  day_bytes: number[];
  backups: BackupRun[];
  /** Restores of the last day. */
  restores: RestoreRun[];
}

export type Peer = 'restic' | 'borg';

export interface BackupRatios {
  /** Worst (largest) hoard/peer backup time over all days of both series. */
  backup_time_ratio_restic: number | null;
  backup_time_ratio_borg: number | null;
  /** Same, day 0 only (the first, full backup). */
  backup_time_ratio_restic_first_day: number | null;
  backup_time_ratio_borg_first_day: number | null;
  /** Same, days 1.. only (incremental). */
  backup_time_ratio_restic_later_days: number | null;
  backup_time_ratio_borg_later_days: number | null;
  /** hoard/peer repository size after the last day; worst (largest) of the two series. */
  stored_bytes_ratio_restic: number | null;
  stored_bytes_ratio_borg: number | null;
  /** hoard's highest peak RSS over all its runs (backups and restores) / the peer's. */
  peak_rss_ratio_restic: number | null;
  peak_rss_ratio_borg: number | null;
  /** hoard restore throughput of the last day, MB/s (10^6 B/s); worst (lowest) series. */
  restore_mb_s: number | null;
  /** hoard/peer restore time; worst series. */
  restore_time_ratio_restic: number | null;
  restore_time_ratio_borg: number | null;
}

export interface Target {
  measure: keyof BackupRatios;
  op: '<=' | '>=';
  target: number;
  value: number | null;
  /** null when the figure could not be measured (a tool was left out). */
  met: boolean | null;
}

const round = (v: number, digits = 3) => Number(v.toFixed(digits));

function maxOrNull(values: number[]): number | null {
  return values.length === 0 ? null : round(Math.max(...values));
}

/** hoard/peer time ratios for the days `pick` selects, over every series. */
function timeRatios(series: SeriesResult[], peer: Peer, pick: (day: number) => boolean): number[] {
  const out: number[] = [];
  for (const s of series) {
    for (let day = 0; day < s.days; day++) {
      if (!pick(day)) continue;
      const h = s.backups.find((b) => b.day === day && b.tool === 'hoard');
      const p = s.backups.find((b) => b.day === day && b.tool === peer);
      if (h && p) out.push(h.backup_s / p.backup_s);
    }
  }
  return out;
}

function storedRatios(series: SeriesResult[], peer: Peer): number[] {
  const out: number[] = [];
  for (const s of series) {
    const last = s.days - 1;
    const h = s.backups.find((b) => b.day === last && b.tool === 'hoard');
    const p = s.backups.find((b) => b.day === last && b.tool === peer);
    if (h && p) out.push(h.stored_bytes / p.stored_bytes);
  }
  return out;
}

function peakRss(series: SeriesResult[], tool: ToolName): number | null {
  const all = series.flatMap((s) => [...s.backups, ...s.restores]).filter((r) => r.tool === tool);
  return all.length === 0 ? null : Math.max(...all.map((r) => r.peak_rss_bytes));
}

function rssRatio(series: SeriesResult[], peer: Peer): number | null {
  const h = peakRss(series, 'hoard');
  const p = peakRss(series, peer);
  return h === null || p === null ? null : round(h / p);
}

function restoreRatios(series: SeriesResult[], peer: Peer): number[] {
  const out: number[] = [];
  for (const s of series) {
    const h = s.restores.find((r) => r.tool === 'hoard');
    const p = s.restores.find((r) => r.tool === peer);
    if (h && p) out.push(h.restore_s / p.restore_s);
  }
  return out;
}

export function computeRatios(series: SeriesResult[]): BackupRatios {
  const all = () => true;
  const first = (d: number) => d === 0;
  const later = (d: number) => d > 0;
  const hoardRestores = series.flatMap((s) => s.restores.filter((r) => r.tool === 'hoard'));
  return {
    backup_time_ratio_restic: maxOrNull(timeRatios(series, 'restic', all)),
    backup_time_ratio_borg: maxOrNull(timeRatios(series, 'borg', all)),
    backup_time_ratio_restic_first_day: maxOrNull(timeRatios(series, 'restic', first)),
    backup_time_ratio_borg_first_day: maxOrNull(timeRatios(series, 'borg', first)),
    backup_time_ratio_restic_later_days: maxOrNull(timeRatios(series, 'restic', later)),
    backup_time_ratio_borg_later_days: maxOrNull(timeRatios(series, 'borg', later)),
    stored_bytes_ratio_restic: maxOrNull(storedRatios(series, 'restic')),
    stored_bytes_ratio_borg: maxOrNull(storedRatios(series, 'borg')),
    peak_rss_ratio_restic: rssRatio(series, 'restic'),
    peak_rss_ratio_borg: rssRatio(series, 'borg'),
    restore_mb_s: hoardRestores.length === 0 ? null : round(Math.min(...hoardRestores.map((r) => r.restore_mb_s)), 1),
    restore_time_ratio_restic: maxOrNull(restoreRatios(series, 'restic')),
    restore_time_ratio_borg: maxOrNull(restoreRatios(series, 'borg')),
  };
}

/** The targets: half restic's backup time (first and later days), no more storage or memory than restic, restore >= 1 GB/s. */
export function evaluateTargets(r: BackupRatios): Target[] {
  const t = (measure: keyof BackupRatios, op: '<=' | '>=', target: number): Target => {
    const value = r[measure];
    return { measure, op, target, value, met: value === null ? null : op === '<=' ? value <= target : value >= target };
  };
  return [
    t('backup_time_ratio_restic_first_day', '<=', 0.5),
    t('backup_time_ratio_restic_later_days', '<=', 0.5),
    t('stored_bytes_ratio_restic', '<=', 1),
    t('peak_rss_ratio_restic', '<=', 1),
    t('restore_mb_s', '>=', 1000),
  ];
}

const mib = (b: number) => (b / MiB).toFixed(1);
const secs = (s: number) => s.toFixed(2);

export function renderSeries(s: SeriesResult): string {
  const backups = renderTable(
    ['day', 'tool', 'MiB', 'backup s', 'MB/s', 'stored MiB', 'peak RSS MiB', 'CPU s'],
    s.backups.map((b) => [
      String(b.day),
      b.tool,
      mib(b.bytes),
      secs(b.backup_s),
      fmt.mbps(b.backup_mb_s),
      mib(b.stored_bytes),
      mib(b.peak_rss_bytes),
      secs(b.cpu_s),
    ]),
  );
  const restores = renderTable(
    ['restore', 'day', 'MiB', 'restore s', 'MB/s', 'peak RSS MiB', 'CPU s'],
    s.restores.map((r) => [r.tool, String(r.day), mib(r.bytes), secs(r.restore_s), fmt.mbps(r.restore_mb_s), mib(r.peak_rss_bytes), secs(r.cpu_s)]),
  );
  return `${s.name} (${s.days} days, ${mib(s.day_bytes[0])} MiB on day 0)\n\n${backups}\n\n${restores}`;
}

export function renderSummary(r: BackupRatios, targets: Target[]): string {
  const show = (v: number | null) => (v === null ? '-' : String(v));
  const ratios = renderTable(
    ['measure', 'value'],
    Object.entries(r).map(([k, v]) => [k, show(v as number | null)]),
  );
  const goals = renderTable(
    ['target', 'value', 'goal', 'met'],
    targets.map((t) => [t.measure, show(t.value), `${t.op} ${t.target}`, t.met === null ? 'not measured' : t.met ? 'met' : 'MISSED']),
  );
  return `${ratios}\n\n${goals}`;
}
