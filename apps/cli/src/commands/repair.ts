/** `hoard repair --repo R [--dry-run] [--forget-broken] [--undelete] [--break-lock] [--json]` (docs/repair.md) */
import { hiddenObjects, repair, undeleteObjects, type RepairReport } from '@hoard/repository';
import { ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';

export interface RepairCommandOptions extends RepoOptions {
  dryRun?: boolean;
  forgetBroken?: boolean;
  /** S3 Object Lock: remove the delete markers hiding locked objects. */
  undelete?: boolean;
  breakLock?: boolean;
  json?: boolean;
}

/** Hidden objects found (S3 Object Lock) and whether they were made visible again. */
export interface HiddenReport {
  keys: string[];
  undeleted: boolean;
}

/** Resolves to true when nothing damaged or lost is left (exit 0), else false (exit 3). */
export async function runRepair(options: RepairCommandOptions, out: (line: string) => void): Promise<boolean> {
  const repo = await openRepository(options, false);
  // First, so that what comes back is checked and indexed like everything else.
  const hidden: HiddenReport = { keys: await hiddenObjects(repo), undeleted: false };
  if (options.undelete && !options.dryRun && hidden.keys.length > 0) {
    await undeleteObjects(repo, hidden.keys);
    hidden.undeleted = true;
  }
  const progress = ProgressLine.forCommand(options.json);
  const report = await repair(repo, {
    dryRun: options.dryRun,
    forgetBroken: options.forgetBroken,
    breakLock: options.breakLock,
    onProgress: (p) => progress.update(p.done, undefined, `${p.phase} ${p.done}/${p.total}`),
  });
  progress.done();
  printRepairReport(report, repo.location, options, out, hidden);
  return report.ok;
}

const list = (items: string[], out: (line: string) => void, max = 20): void => {
  for (const item of items.slice(0, max)) out(`  ${item}`);
  if (items.length > max) out(`  ... and ${items.length - max} more (--json lists all)`);
};

export function printRepairReport(
  report: RepairReport,
  location: string,
  options: { json?: boolean; forgetBroken?: boolean; undelete?: boolean },
  out: (line: string) => void,
  hidden?: HiddenReport,
): void {
  if (options.json) {
    out(
      JSON.stringify({
        ...report,
        ...(hidden ? { hidden } : {}),
        snapshots: { ...report.snapshots, broken: report.snapshots.broken.map((b) => ({ ...b, firstMissing: b.firstMissing ?? null })) },
      }),
    );
    return;
  }
  const dry = report.dryRun;
  const { segments, packs, snapshots } = report;
  if (dry) out('dry run: nothing is written or deleted');
  if (hidden && hidden.keys.length > 0) {
    out(
      hidden.undeleted
        ? `undeleted ${hidden.keys.length} object(s) that were hidden behind S3 delete markers (Object Lock had kept their bytes):`
        : `${hidden.keys.length} object(s) are hidden behind S3 delete markers (deleted without their version; Object Lock kept their bytes): ${dry ? '--undelete without --dry-run would bring them back' : `hoard repair --repo ${location} --undelete brings them back`}:`,
    );
    list(hidden.keys, out);
  }
  out(`index segments: ${segments.readable} readable, ${segments.damaged.length} damaged; packs: ${packs.total} in the bucket`);
  for (const note of report.notes) out(`note: ${note}`);
  if (segments.damaged.length > 0) {
    out(`damaged index segment(s):`);
    list(
      segments.damaged.map(
        (d) =>
          `${d.key}: ${d.problem} (${d.removed ? 'removed, after its replacement was written' : dry && packs.unreadable.length === 0 ? 'would be removed once the new segments are written' : 'kept'})`,
      ),
      out,
    );
  }
  if (packs.reindexed.length > 0) {
    out(
      `${packs.reindexed.length} pack(s) that no readable index segment listed ${dry ? 'would be' : 'are'} indexed again from their own trailers, ` +
        `in ${segments.written.length} new segment(s):`,
    );
    list(
      segments.written.map((s) => `${s.key} (store ${s.store}, ${s.packs} pack(s))`),
      out,
    );
  } else out('every pack in the bucket is listed by a readable index segment');
  if (packs.condemned > 0) out(`${packs.condemned} unlisted pack(s) are condemned by garbage collection and left to it`);
  if (packs.unknownStore.length > 0)
    out(
      `warning: ${packs.unknownStore.length} reindexed pack(s) belong to a store with no readable record (stores/...): ${packs.unknownStore
        .slice(0, 3)
        .map((p) => `${p.key} (store ${p.store})`)
        .join(', ')}`,
    );
  if (packs.unreadable.length > 0) {
    out(
      `${packs.unreadable.length} pack(s) no readable segment lists have a damaged trailer; they are kept (repair never deletes a pack) but cannot be indexed:`,
    );
    list(
      packs.unreadable.map((p) => `${p.key}: ${p.problem}`),
      out,
    );
  }
  if (packs.missing.length > 0) {
    out(`${packs.missing.length} pack(s) that index segments name are not in the bucket (\`hoard gc\` drops them from the segments):`);
    list(
      packs.missing.map((p) => `${p.key} (named by ${p.segment})`),
      out,
    );
  }
  if (snapshots.broken.length === 0) out(`snapshots: ${snapshots.checked} checked; all of their data is in the bucket`);
  else {
    out(`snapshots: ${snapshots.checked} checked; ${snapshots.broken.length} have data that is gone:`);
    list(
      snapshots.broken.map((b) => `${b.key} (job ${b.job}, id ${b.id}${b.protected ? ', protected' : ''}): ${b.problem}`),
      out,
    );
    if (snapshots.forgotten.length > 0) {
      out(
        `${dry ? 'would forget' : 'forgot'} ${snapshots.forgotten.length} snapshot(s) (their manifests${dry ? ' would be' : ' are'} deleted; \`hoard gc\` frees what only they used):`,
      );
      list(snapshots.forgotten, out, 1000);
    }
    for (const k of snapshots.kept) out(`not forgotten: ${k.key}: ${k.reason}`);
    if (!options.forgetBroken) out(`to forget them: hoard repair --repo ${location} --forget-broken${dry ? ' --dry-run' : ''}`);
  }
  out(report.ok ? 'nothing damaged or lost is left' : dry ? 'damage found (exit 3); run without --dry-run to repair it' : 'damage is left (exit 3): see above');
  out(`done in ${(report.durationMs / 1000).toFixed(1)} s`);
}
