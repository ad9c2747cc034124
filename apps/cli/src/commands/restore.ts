/**
 * `hoard restore --repo R JOB [--at TIME | --snapshot ID] --to <path|->`
 *
 * A file is written as `<path>.partial` and renamed into place only when every byte has
 * been checked, so a failed restore never leaves a plausible-looking file behind; an
 * existing file is replaced only with --force. A block device is written in place.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { formatBytes } from '@hoard/chunker';
import { FileSink, restore, StreamSink, validateJobName, type RestoreSink } from '@hoard/repository';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { parseTime } from '../time.js';

export interface RestoreCommandOptions extends RepoOptions {
  at?: string;
  snapshot?: string;
  to?: string;
  force?: boolean;
  offset?: string;
  length?: string;
  json?: boolean;
}

function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} ${value}: give a number of bytes (0 or more)`);
  return n;
}

export async function runRestore(job: string, options: RestoreCommandOptions, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  if (!options.to) throw new UsageError('--to is required: a file path, a block device, or - for stdout');
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  const at = options.at !== undefined ? parseTime(options.at) : undefined;
  const offset = parseCount('--offset', options.offset);
  const length = parseCount('--length', options.length);
  const toStdout = options.to === '-';
  if (toStdout && options.json) throw new UsageError('--json and --to - both want stdout: restore to a file, or drop --json');
  let target: { kind: 'new' | 'replace' | 'device'; path: string } | undefined;
  if (!toStdout) {
    const info = await stat(options.to).catch(() => undefined);
    if (info?.isBlockDevice()) target = { kind: 'device', path: options.to };
    else if (info?.isDirectory()) throw new UsageError(`--to ${options.to} is a directory: give the path of the file to write`);
    else if (info && !options.force) throw new UsageError(`--to ${options.to} exists: restore elsewhere, or add --force to replace it`);
    else target = { kind: info ? 'replace' : 'new', path: options.to };
  }
  const repo = await openRepository(options, true);
  const snapshot = await repo.findSnapshot(job, { id: options.snapshot, at });
  const total = snapshot.meta.logicalBytes;
  const range = offset !== undefined || length !== undefined ? { offset: offset ?? 0, length: length ?? total - (offset ?? 0) } : undefined;
  const partial = target && target.kind !== 'device' ? `${target.path}.partial` : undefined;
  let sink: RestoreSink;
  if (!target) sink = new StreamSink(process.stdout);
  else if (target.kind === 'device') sink = await FileSink.overwrite(target.path);
  else sink = await FileSink.create(partial!, { exclusive: false });
  const progress = ProgressLine.forCommand(options.json || toStdout);
  try {
    const result = await restore(repo, snapshot, sink, { range, onProgress: (p) => progress.update(p.bytesWritten, p.bytesTotal) });
    progress.done();
    if (partial) await rename(partial, target!.path);
    const seconds = result.durationMs / 1000;
    const summary = {
      snapshot: snapshot.id,
      job,
      started_at: snapshot.meta.startedAt,
      to: options.to,
      bytes: result.bytesWritten,
      seconds,
      stream_hash_checked: result.streamHashChecked,
    };
    if (options.json) out(JSON.stringify(summary));
    else if (!toStdout) {
      out(`restored snapshot ${snapshot.id} of job ${job} (started ${snapshot.meta.startedAt}) to ${options.to}`);
      out(`  ${formatBytes(result.bytesWritten)} in ${seconds.toFixed(1)} s${result.streamHashChecked ? '; every chunk and the whole-stream hash checked' : '; every chunk checked (partial restore: no whole-stream hash)'}`);
    } else {
      process.stderr.write(`restored snapshot ${snapshot.id} of job ${job}: ${formatBytes(result.bytesWritten)}, verified\n`);
    }
  } catch (err) {
    progress.done();
    if (partial) await rm(partial, { force: true });
    throw err;
  }
}
