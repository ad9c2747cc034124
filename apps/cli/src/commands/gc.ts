/** `hoard gc --repo R [--dry-run] [--json] [--repack-threshold 0.2] [--grace 24h] [--break-lock]` */
import { formatBytes } from '@hoard/chunker';
import { collectGarbage, type GcReport } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { formatDuration, ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';

export interface GcCommandOptions extends RepoOptions {
  dryRun?: boolean;
  json?: boolean;
  repackThreshold?: string;
  grace?: string;
  breakLock?: boolean;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3600_000, d: 86400_000 };

/** `--grace`: a whole number and s, m (minutes here: no calendar months in a grace period), h or d. */
export function parseGrace(text: string): number {
  const match = /^(\d{1,7})([smhd])$/.exec(text.trim());
  if (!match) throw new UsageError(`--grace ${JSON.stringify(text)}: use a whole number followed by s, m, h or d (seconds, minutes, hours, days), e.g. 24h`);
  return Number(match[1]) * UNITS[match[2]];
}

/** `--repack-threshold`: a share from 0 to 1, or a percentage. */
export function parseRepackThreshold(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  const value = t.endsWith('%') ? Number(t.slice(0, -1)) / 100 : Number(t);
  if (t === '' || !Number.isFinite(value) || value < 0 || value > 1) {
    throw new UsageError(`--repack-threshold ${text}: give the dead share above which a pack is repacked, from 0 to 1 (or 0% to 100%), e.g. 0.2`);
  }
  return value;
}

export async function runGc(options: GcCommandOptions, out: (line: string) => void): Promise<void> {
  const repackThreshold = parseRepackThreshold(options.repackThreshold);
  const graceMs = options.grace !== undefined ? parseGrace(options.grace) : undefined;
  const repo = await openRepository(options, false);
  const progress = ProgressLine.forCommand(options.json);
  const report = await collectGarbage(repo, {
    dryRun: options.dryRun,
    repackThreshold,
    graceMs,
    breakLock: options.breakLock,
    onProgress: (p) => progress.update(p.done, undefined, `${p.phase} ${p.done}/${p.total}`),
  });
  progress.done();
  printGcReport(report, options, out);
}

/** What Object Lock kept and extended; optional, since an older server does not report it. */
type LockedReport = Omit<GcReport['locked'], 'extended'> & { extended?: number };

export function printGcReport(report: Omit<GcReport, 'locked'> & { locked?: LockedReport }, options: { json?: boolean }, out: (line: string) => void): void {
  if (options.json) {
    out(JSON.stringify(report));
    return;
  }
  const would = report.dryRun ? 'would be ' : '';
  out(
    `${report.dryRun ? 'dry run: ' : ''}${report.snapshots} snapshot(s) reference ${report.blobs.live} blob(s) (${formatBytes(report.bytes.live)} stored); ${report.blobs.dead} blob(s) (${formatBytes(report.bytes.dead)}) are dead`,
  );
  out(
    `packs: ${report.packs.total} in the bucket; ${report.packs.condemned} ${would}condemned, ${report.packs.repacked} ${would}repacked into ${report.dryRun ? 'new packs' : `${report.packs.written} new`}, ` +
      `${report.packs.deleted} ${would}deleted, ${report.packs.revived} ${would}revived, ${report.packs.waiting} waiting out their grace period`,
  );
  out(
    `chunk-list pages: ${report.pages.total}; ${report.pages.condemned} ${would}condemned, ${report.pages.deleted} ${would}deleted, ${report.pages.waiting} waiting`,
  );
  out(
    `stored bytes: ${formatBytes(report.bytes.before)} before, ${formatBytes(report.bytes.after)} after${report.dryRun ? ' (projected)' : ''} ` +
      `(${formatBytes(report.bytes.deleted)} ${would}deleted, ${formatBytes(report.bytes.written)} ${would}written)`,
  );
  const locked = report.locked;
  if (locked && locked.packs + locked.pages > 0) {
    out(
      `kept: ${locked.packs} pack(s) and ${locked.pages} chunk-list page(s) that nothing needs are locked (S3 Object Lock) until ${locked.lastUnlock}` +
        (locked.firstUnlock !== locked.lastUnlock ? ` (the first until ${locked.firstUnlock})` : '') +
        '; a gc run after that removes them',
    );
  }
  if (locked?.extended) out(`object lock extended for ${locked.extended} pack(s) and chunk-list page(s) that snapshots still reference`);
  out(`condemned objects are deleted by a gc run at least ${formatDuration(report.graceMs / 1000)} later, if nothing references them again`);
  if (report.missingChunks > 0) out(`warning: ${report.missingChunks} chunk reference(s) point at blobs no pack holds: run \`hoard verify\``);
  for (const s of report.skipped) out(`warning: ${s.pack} was not repacked: ${s.problem}`);
  out(`done in ${(report.durationMs / 1000).toFixed(1)} s`);
}
