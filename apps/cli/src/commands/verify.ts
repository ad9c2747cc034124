/** `hoard verify --repo R [--read-data [--subset N%]] [--json]` */
import { formatBytes } from '@hoard/chunker';
import { verify, type VerifyReport } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';

export interface VerifyCommandOptions extends RepoOptions {
  readData?: boolean;
  subset?: string;
  job?: string;
  json?: boolean;
}

/** `--subset N%` (only with --read-data): the share of packs whose data is read. */
export function parseSubset(options: { readData?: boolean; subset?: string }): number | undefined {
  if (options.subset === undefined) return undefined;
  if (!options.readData) throw new UsageError('--subset only applies with --read-data');
  const subsetPercent = Number(options.subset.replace(/%$/, ''));
  if (!Number.isFinite(subsetPercent) || subsetPercent <= 0 || subsetPercent > 100)
    throw new UsageError(`--subset ${options.subset}: give a percentage above 0 and at most 100, e.g. 10%`);
  return subsetPercent;
}

/** Resolves to true when the repository is sound. */
export async function runVerify(options: VerifyCommandOptions, out: (line: string) => void): Promise<boolean> {
  const subsetPercent = parseSubset(options);
  const repo = await openRepository(options, false);
  const progress = ProgressLine.forCommand(options.json);
  const report = await verify(repo, {
    readData: options.readData,
    subsetPercent,
    job: options.job,
    onProgress: (p) => progress.update(p.done, undefined, `${p.phase} ${p.done}/${p.total}`),
  });
  progress.done();
  printVerifyReport(report, options, out);
  return report.ok;
}

export function printVerifyReport(report: VerifyReport, options: { readData?: boolean; json?: boolean }, out: (line: string) => void): void {
  if (options.json) {
    out(
      JSON.stringify({
        ...report,
        findings: report.findings.map((f) => ({ snapshot: f.snapshot ?? null, object: f.object, offset: f.offset ?? null, problem: f.problem })),
      }),
    );
    return;
  }
  out(
    `checked ${report.snapshots} snapshot(s), ${report.pages} chunk-list page(s), ${report.segments} index segment(s), ${report.packs} pack(s)` +
      (options.readData ? `; read ${formatBytes(report.bytesRead)}, ${report.blobsChecked} blobs` : ''),
  );
  for (const note of report.notes ?? []) out(`note: ${note}`);
  if (report.unreferencedPacks.length > 0) {
    out(`${report.unreferencedPacks.length} unreferenced pack(s) (left by interrupted backups; garbage collection removes them):`);
    for (const key of report.unreferencedPacks.slice(0, 20)) out(`  ${key}`);
    if (report.unreferencedPacks.length > 20) out(`  ... and ${report.unreferencedPacks.length - 20} more`);
  }
  if (report.findings.length === 0) out('no problems found');
  else {
    out(`${report.findings.length} problem(s):`);
    for (const f of report.findings) {
      out(`  ${f.snapshot ? `snapshot ${f.snapshot}: ` : ''}${f.object}${f.offset !== undefined ? ` at offset ${f.offset}` : ''}: ${f.problem}`);
    }
    out('`hoard repair --repo <repository> --dry-run` shows what can be rebuilt from the packs and which snapshots are lost (docs/repair.md)');
  }
}
