/**
 * `hoard sync --from R1 --to R2 [--job J ...] [--snapshot ID ...] [--dry-run] [--verify-data] [--json]`:
 * copies snapshots into a second repository (docs/sync.md).
 *
 * Passphrases: each side's --from-/--to-passphrase-file, else HOARD_PASSPHRASE (one
 * passphrase for both), else a prompt per side on a terminal. S3 endpoints: the usual
 * environment for both, or --from-endpoint / --to-endpoint for a side on another server.
 */
import { readFile } from 'node:fs/promises';
import { formatBytes } from '@hoard/chunker';
import { Repository, snapshotId, syncRepositories, type ObjectStore, type SyncReport } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { promptHidden } from '../prompt.js';
import { openObjectStore } from '../repo-location.js';

export interface SyncCommandOptions {
  from?: string;
  to?: string;
  fromPassphraseFile?: string;
  toPassphraseFile?: string;
  fromEndpoint?: string;
  toEndpoint?: string;
  job?: string[];
  snapshot?: string[];
  dryRun?: boolean;
  verifyData?: boolean;
  allowUnencryptedTarget?: boolean;
  json?: boolean;
}

type Side = 'from' | 'to';

async function openStore(side: Side, location: string | undefined, endpoint: string | undefined): Promise<ObjectStore> {
  if (!location) throw new UsageError(`--${side} is required: the repository to copy ${side === 'from' ? 'from' : 'into'}, a directory or s3://bucket/prefix`);
  if (endpoint === undefined) return openObjectStore(location);
  if (!location.startsWith('s3://')) throw new UsageError(`--${side}-endpoint applies to an s3:// repository; --${side} ${location} is a directory`);
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3ObjectStore } = await import('@hoard/repository/s3');
  return S3ObjectStore.open({ url: location, endpoint });
}

async function sidePassphrase(side: Side, file: string | undefined): Promise<string | undefined> {
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --${side}-passphrase-file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const line = text.split(/\r?\n/, 1)[0];
    if (!line) throw new UsageError(`--${side}-passphrase-file ${file} is empty`);
    return line;
  }
  const env = process.env.HOARD_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  if (!process.stdin.isTTY) return undefined;
  return promptHidden(`passphrase of the --${side} repository: `);
}

/** One side of a copy, opened with its own endpoint and passphrase (also `hoard init --fingerprints-from`). */
export async function openSide(
  side: Side,
  location: string | undefined,
  endpoint: string | undefined,
  passphraseFile: string | undefined,
): Promise<Repository> {
  const onWarning = (message: string): void => void process.stderr.write(`hoard: warning: ${message}\n`);
  const repo = await Repository.open(await openStore(side, location, endpoint), { onWarning });
  if (!repo.encrypted) {
    if (passphraseFile !== undefined) throw new UsageError(`--${side}-passphrase-file: the --${side} repository ${repo.location} is not encrypted`);
    return repo;
  }
  return repo.withPassphrase(await sidePassphrase(side, passphraseFile));
}

/** Resolves to true when every asked-for snapshot is in the target and checked out (exit 0), else false (exit 3). */
export async function runSync(options: SyncCommandOptions, out: (line: string) => void): Promise<boolean> {
  if (options.from !== undefined && options.from === options.to)
    throw new UsageError(`--from and --to are both ${options.from}: give the second repository as --to`);
  const source = await openSide('from', options.from, options.fromEndpoint, options.fromPassphraseFile);
  const target = await openSide('to', options.to, options.toEndpoint, options.toPassphraseFile);
  const progress = ProgressLine.forCommand(options.json);
  let current = '';
  const report = await syncRepositories(source, target, {
    jobs: options.job,
    snapshots: options.snapshot,
    dryRun: options.dryRun,
    verifyData: options.verifyData,
    allowUnencryptedTarget: options.allowUnencryptedTarget,
    onEvent: (event) => {
      if (event.kind === 'copying') current = `${event.snapshot.meta.job}/${event.snapshot.id} (${event.index + 1}/${event.total})`;
      else if (event.kind === 'progress')
        progress.update(event.progress.bytesDone, event.progress.bytesTotal, `${current}  new ${formatBytes(event.progress.bytesNew)}`);
      else if (event.kind === 'verifying') progress.update(event.done, event.total, `verifying ${event.done}/${event.total}`);
      else if (event.kind === 'copied' && !options.json) {
        progress.done();
        const c = event.copy;
        out(
          `copied ${c.source.meta.job}/${c.source.id} -> ${c.target.id}: ${formatBytes(c.target.meta.logicalBytes)}, ${c.blobsWritten} new blob(s) ` +
            `(${formatBytes(c.bytesNew)}, ${formatBytes(c.bytesStored)} stored), read ${formatBytes(c.bytesFetched)}`,
        );
      }
    },
  });
  progress.done();
  printSyncReport(report, options, out);
  return report.ok;
}

export function printSyncReport(report: SyncReport, options: { json?: boolean }, out: (line: string) => void): void {
  if (options.json) {
    out(JSON.stringify({ ...report, verification: report.verification ?? null }));
    return;
  }
  if (report.dryRun) {
    out(`dry run: nothing is written to ${report.to}`);
    for (const s of report.snapshots) {
      if (s.status === 'to-copy') out(`would copy ${s.job}/${snapshotId(s.source)} (${formatBytes(s.logicalBytes)})`);
    }
  }
  const toCopy = report.snapshots.filter((s) => s.status === 'to-copy').length;
  out(
    `${report.snapshots.length} snapshot(s) of ${report.from}: ${report.present} already in ${report.to}, ` +
      (report.dryRun ? `${toCopy} to copy` : `${report.copied} copied (${report.blobsWritten} new blob(s), ${formatBytes(report.bytesStored)} stored)`),
  );
  for (const d of report.damaged) out(`not copied, its manifest is damaged: ${d.key}: ${d.problem}`);
  const v = report.verification;
  if (v && v.snapshots > 0) {
    const bad = v.checks.filter((c) => c.problems.length > 0);
    out(
      `verified ${v.snapshots} cop${v.snapshots === 1 ? 'y' : 'ies'} in ${report.to}: ${v.pages} page(s), ${v.chunks} chunk(s), ${v.packs} pack(s)` +
        (v.dataChecked ? `, ${formatBytes(v.bytesChecked)} read and checked` : '') +
        (bad.length === 0 ? ': no problems found' : `: ${bad.length} damaged`),
    );
    for (const c of bad) for (const p of c.problems) out(`  ${c.key}: ${p}`);
  }
}
