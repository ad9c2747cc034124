/**
 * `pnpm bench backup` figures: the ratios hoard/restic and hoard/borg, the targets, and the
 * tables. Pure functions of the measured runs, so they are unit-tested.
 */
import { type Floors, firstBackupFloorSeconds } from './floors.js';
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

/** hoard restore through a media server on loopback (the client's figures, plus the server's). */
export interface ServerRestoreRun extends RestoreRun {
  /** CPU seconds the media server process used during the restore (/proc/PID/stat). */
  server_cpu_s: number | null;
  /** The server's peak RSS (VmHWM) after the restore: its whole life, started for this restore. */
  server_peak_rss_bytes: number | null;
}

export interface SeriesResult {
  /** "vm_image" | "db_dump" */
  name: string;
  job: string;
  days: number;
  day_bytes: number[];
  backups: BackupRun[];
  /** Restores of the last day from the local repositories. */
  restores: RestoreRun[];
  /** hoard restores of the last day through a media server serving the same repository. */
  server_restores?: ServerRestoreRun[];
  /** A real-data series (usr_tar, pgbench_dump): its ratios are reported apart (`*_real`). */
  real?: boolean;
  /** What a real-data series' bytes are. */
  describe?: string;
}

/** Restores of the last VM-image day from one Ceph RGW, each tool from its own bucket. */
export interface S3Result {
  /** measured; skipped (--no-s3, or hoard or restic left out); failed (RGW missing, a tool failed). */
  status: 'measured' | 'skipped' | 'failed';
  reason: string | null;
  series: string;
  bytes: number | null;
  /** The untimed-for-the-figures backups into the buckets (recorded anyway). */
  backups: Array<{ tool: ToolName; backup_s: number; peak_rss_bytes: number; cpu_s: number }>;
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
  /** The same over backups only (issue 14's figure: an embedded backup's memory). */
  backup_peak_rss_ratio_restic: number | null;
  /**
   * The first-backup floor (cut + BLAKE3 + zstd of day 0's bytes on all cores, nothing
   * else: floors.ts) / restic's day-0 time; worst series. Above 0.5, half restic's time is
   * out of reach on this machine at the default compression.
   */
  backup_floor_ratio_restic_first_day: number | null;
  /** hoard's day-0 time / that floor; worst series: how far hoard is from it. */
  backup_time_over_floor_first_day: number | null;
  /** hoard restore throughput of the last day, MB/s (10^6 B/s); worst (lowest) series. */
  restore_mb_s: number | null;
  /** hoard/peer restore time; worst series. */
  restore_time_ratio_restic: number | null;
  restore_time_ratio_borg: number | null;
  /** Peer restore throughput, MB/s; slower series. */
  restore_mb_s_restic: number | null;
  restore_mb_s_borg: number | null;
  /** hoard restore through a media server on loopback, MB/s; slower series. */
  restore_server_mb_s: number | null;
  /** Through the server / embedded (`--repo`) MB/s, same snapshot, same run; worst series. */
  restore_server_ratio_embedded: number | null;
  /** Restores of the last VM-image day from the same Ceph RGW, MB/s. */
  restore_s3_mb_s: number | null;
  restore_s3_mb_s_restic: number | null;
  /** hoard/restic restore time from S3. */
  restore_s3_time_ratio_restic: number | null;
  /** hoard restore peak RSS / restic restore peak RSS; worst of the local series and S3. */
  restore_peak_rss_ratio_restic: number | null;
  /**
   * The real-data series (usr_tar, pgbench_dump) apart: the figures above are the generated
   * series' only, so that they compare with earlier runs.
   */
  backup_time_ratio_restic_real: number | null;
  backup_time_ratio_borg_real: number | null;
  stored_bytes_ratio_restic_real: number | null;
  stored_bytes_ratio_borg_real: number | null;
  peak_rss_ratio_restic_real: number | null;
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

function peakBackupRss(series: SeriesResult[], tool: ToolName): number | null {
  const all = series.flatMap((s) => s.backups).filter((r) => r.tool === tool);
  return all.length === 0 ? null : Math.max(...all.map((r) => r.peak_rss_bytes));
}

function rssRatio(series: SeriesResult[], peer: Peer, peak = peakRss): number | null {
  const h = peak(series, 'hoard');
  const p = peak(series, peer);
  return h === null || p === null ? null : round(h / p);
}

/** Per series with floors: [floor s / restic's day-0 s, hoard's day-0 s / floor s]. */
function floorRatios(series: SeriesResult[], floors: Floors | undefined): { overRestic: number[]; hoardOver: number[] } {
  const overRestic: number[] = [];
  const hoardOver: number[] = [];
  for (const s of series) {
    const f = floors?.by_series[s.name];
    const h = s.backups.find((b) => b.day === 0 && b.tool === 'hoard');
    const r = s.backups.find((b) => b.day === 0 && b.tool === 'restic');
    const stored = h ? { bytes: h.stored_bytes, durableMbS: floors?.durable_write_mb_s } : undefined;
    const floor = f && floors?.cores ? firstBackupFloorSeconds(f, s.day_bytes[0], floors.cores, stored) : null;
    if (!floor) continue;
    if (r) overRestic.push(floor / r.backup_s);
    if (h) hoardOver.push(h.backup_s / floor);
  }
  return { overRestic, hoardOver };
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

function minMbS(runs: RestoreRun[], tool: ToolName): number | null {
  const mine = runs.filter((r) => r.tool === tool);
  return mine.length === 0 ? null : round(Math.min(...mine.map((r) => r.restore_mb_s)), 1);
}

/** server MB/s / embedded MB/s of the same series (= embedded s / server s). */
function serverRatios(series: SeriesResult[]): number[] {
  const out: number[] = [];
  for (const s of series) {
    const e = s.restores.find((r) => r.tool === 'hoard');
    const n = s.server_restores?.find((r) => r.tool === 'hoard');
    if (e && n) out.push(e.restore_s / n.restore_s);
  }
  return out;
}

/** hoard/restic restore peak RSS per local series and for the S3 restores. */
function restoreRssRatios(series: SeriesResult[], s3: S3Result | null): number[] {
  const pairs = [...series.map((s) => s.restores), ...(s3?.status === 'measured' ? [s3.restores] : [])];
  const out: number[] = [];
  for (const runs of pairs) {
    const h = runs.find((r) => r.tool === 'hoard');
    const p = runs.find((r) => r.tool === 'restic');
    if (h && p) out.push(h.peak_rss_bytes / p.peak_rss_bytes);
  }
  return out;
}

export function computeRatios(allSeries: SeriesResult[], s3: S3Result | null = null, floors?: Floors): BackupRatios {
  const series = allSeries.filter((s) => !s.real);
  const real = allSeries.filter((s) => s.real);
  const all = () => true;
  const first = (d: number) => d === 0;
  const later = (d: number) => d > 0;
  const hoardRestores = series.flatMap((s) => s.restores.filter((r) => r.tool === 'hoard'));
  const localRestores = series.flatMap((s) => s.restores);
  const serverRestores = series.flatMap((s) => s.server_restores ?? []);
  const s3Restores = s3?.status === 'measured' ? s3.restores : [];
  const s3h = s3Restores.find((r) => r.tool === 'hoard');
  const s3r = s3Restores.find((r) => r.tool === 'restic');
  const serverRatio = serverRatios(series);
  const floor = floorRatios(series, floors);
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
    backup_peak_rss_ratio_restic: rssRatio(series, 'restic', peakBackupRss),
    backup_floor_ratio_restic_first_day: maxOrNull(floor.overRestic),
    backup_time_over_floor_first_day: maxOrNull(floor.hoardOver),
    restore_mb_s: hoardRestores.length === 0 ? null : round(Math.min(...hoardRestores.map((r) => r.restore_mb_s)), 1),
    restore_time_ratio_restic: maxOrNull(restoreRatios(series, 'restic')),
    restore_time_ratio_borg: maxOrNull(restoreRatios(series, 'borg')),
    restore_mb_s_restic: minMbS(localRestores, 'restic'),
    restore_mb_s_borg: minMbS(localRestores, 'borg'),
    restore_server_mb_s: minMbS(serverRestores, 'hoard'),
    restore_server_ratio_embedded: serverRatio.length === 0 ? null : round(Math.min(...serverRatio)),
    restore_s3_mb_s: minMbS(s3Restores, 'hoard'),
    restore_s3_mb_s_restic: minMbS(s3Restores, 'restic'),
    restore_s3_time_ratio_restic: s3h && s3r ? round(s3h.restore_s / s3r.restore_s) : null,
    restore_peak_rss_ratio_restic: maxOrNull(restoreRssRatios(series, s3)),
    backup_time_ratio_restic_real: maxOrNull(timeRatios(real, 'restic', all)),
    backup_time_ratio_borg_real: maxOrNull(timeRatios(real, 'borg', all)),
    stored_bytes_ratio_restic_real: maxOrNull(storedRatios(real, 'restic')),
    stored_bytes_ratio_borg_real: maxOrNull(storedRatios(real, 'borg')),
    peak_rss_ratio_restic_real: rssRatio(real, 'restic'),
  };
}

/**
 * The issues' targets: half restic's backup time (first and later days), no more storage or
 * memory than restic, restore >= 1 GB/s; restore in half restic's time on both series
 * (the worst one) and from S3, through the server at >= 0.9x the embedded restore, with
 * no more memory than restic's restore.
 */
export function evaluateTargets(r: BackupRatios): Target[] {
  const t = (measure: keyof BackupRatios, op: '<=' | '>=', target: number): Target => {
    const value = r[measure];
    return { measure, op, target, value, met: value === null ? null : op === '<=' ? value <= target : value >= target };
  };
  return [
    t('backup_time_ratio_restic_first_day', '<=', 0.5),
    t('backup_time_ratio_restic_later_days', '<=', 0.5),
    t('stored_bytes_ratio_restic', '<=', 1),
    t('backup_peak_rss_ratio_restic', '<=', 1),
    t('restore_mb_s', '>=', 1000),
    t('restore_time_ratio_restic', '<=', 0.5),
    t('restore_s3_time_ratio_restic', '<=', 0.5),
    t('restore_server_ratio_embedded', '>=', 0.9),
    t('restore_peak_rss_ratio_restic', '<=', 1),
    t('stored_bytes_ratio_restic_real', '<=', 0.9),
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
  return `${s.name} (${s.real ? 'real data: ' : ''}${s.describe ? `${s.describe}; ` : ''}${s.days} days, ${mib(s.day_bytes[0])} MiB on day 0)\n\n${backups}\n\n${restores}`;
}

/** Every restore of the run side by side: local repositories, through the server, from S3. */
export function renderRestores(series: SeriesResult[], s3: S3Result | null): string {
  const rows: string[][] = [];
  const row = (from: string, name: string, r: RestoreRun, server?: ServerRestoreRun) =>
    rows.push([
      `${r.tool} ${from}`,
      name,
      mib(r.bytes),
      secs(r.restore_s),
      fmt.mbps(r.restore_mb_s),
      mib(r.peak_rss_bytes),
      secs(r.cpu_s),
      server?.server_cpu_s == null ? '' : secs(server.server_cpu_s),
    ]);
  for (const s of series) {
    for (const r of s.restores) row('local', s.name, r);
    for (const r of s.server_restores ?? []) row('server', s.name, r, r);
  }
  if (s3?.status === 'measured') for (const r of s3.restores) row('s3', s3.series, r);
  const table = renderTable(['restore from', 'series', 'MiB', 's', 'MB/s', 'peak RSS MiB', 'CPU s', 'server CPU s'], rows);
  const s3Note = s3 === null || s3.status === 'measured' ? '' : `\nS3 restores: ${s3.status}${s3.reason ? `: ${s3.reason}` : ''}`;
  return `Restores of the last day (local = --repo DIR; server = hoard restore --server on loopback; s3 = Ceph RGW on loopback)\n\n${table}${s3Note}`;
}

/** The machine's floors, measured in the same run. */
export function renderFloors(f: Floors): string {
  const show = (v: number | null | undefined) => (v === null || v === undefined ? '-' : fmt.mbps(v));
  const names = Object.keys(f.by_series);
  const rows: string[][] = [
    ['lz4_decode_mb_s', show(f.lz4_decode_mb_s), ...names.map((n) => show(f.by_series[n].lz4_decode_mb_s))],
    ['blake3_mb_s', show(f.blake3_mb_s), ...names.map((n) => show(f.by_series[n].blake3_mb_s))],
    ['page_cache_write_mb_s', show(f.page_cache_write_mb_s), ...names.map(() => '')],
  ];
  if (f.durable_write_mb_s !== undefined) rows.push(['durable_write_mb_s', show(f.durable_write_mb_s), ...names.map(() => '')]);
  if (names.some((n) => f.by_series[n].zstd_compress_mb_s !== undefined)) {
    rows.push(
      ['cdc_mb_s', '', ...names.map((n) => show(f.by_series[n].cdc_mb_s))],
      ['zstd3_compress_mb_s', '', ...names.map((n) => show(f.by_series[n].zstd_compress_mb_s))],
    );
  }
  const kib = f.block_bytes / 1024;
  const sample = names
    .map((n) => `${n} ${mib(f.by_series[n].sample_bytes)} MiB sampled, ${(f.by_series[n].compressed_share * 100).toFixed(0)}% of it lz4-compressible`)
    .join('; ');
  return (
    `Floors (this machine, this run; MB/s, 1 core; the figure is the slower series)\n\n${renderTable(['floor', 'MB/s', ...names], rows)}\n` +
    `lz4: lz4-napi uncompressSync of ${kib} KiB blocks of the last day's files (zero blocks left out); BLAKE3: @napi-rs/blake-hash on the same blocks;\n` +
    `page cache: ${(f.page_cache_write_bytes / MiB).toFixed(0)} MiB in 4 MiB writes to a new file, no fsync. ${sample}` +
    (f.cores
      ? `\nFirst-backup floor: the larger of day 0's bytes x (1/cdc + non-zero share/BLAKE3 + non-zero x zstd share/zstd) / ${f.cores} cores and hoard's day-0 stored bytes / durable_write_mb_s (cut points of each series' preset; zstd level 3 in pieces of its average chunk size).`
      : '')
  );
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
