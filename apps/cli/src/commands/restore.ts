/**
 * `hoard restore --repo R JOB [--at TIME | --snapshot ID] --to <path|->`
 *
 * A file is written as `<path>.partial` and renamed into place only when every byte has
 * been checked, so a failed restore never leaves a plausible-looking file behind; an
 * existing file is replaced only with --force. A block device is written in place.
 */
import { rename, rm, stat } from 'node:fs/promises';
import { formatBytes } from '@hoard/chunker';
import {
  FileSink,
  IntegrityError,
  RestoreWriteError,
  ObjectFormatError,
  BlobCorruptError,
  readArchiveEntries,
  restore,
  NullSink,
  StreamSink,
  validateJobName,
  type ArchiveSource,
  type Repository,
  type RestoreSink,
  type SnapshotInfo,
} from '@hoard/repository';
import { UsageError } from '../errors.js';
import { ProgressLine } from '../progress.js';
import { openRepository, type RepoOptions } from '../repo-location.js';
import { parseTime } from '../time.js';
import { DatabaseSink, damagedAfterData, isDatabaseUrl, parseDatabaseTarget, sinkToIterable, type ParallelRestore } from './restore-database.js';

export interface RestoreCommandOptions extends RepoOptions {
  at?: string;
  snapshot?: string;
  to?: string;
  force?: boolean;
  offset?: string;
  length?: string;
  json?: boolean;
  /** Read and check everything, write nothing. */
  verifyOnly?: boolean;
  /** `--jobs`/`--temp-dir`, checked (restore-database.ts): a parallel pg_restore. */
  parallel?: ParallelRestore;
}

function parseCount(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} ${value}: give a number of bytes (0 or more)`);
  return n;
}

export async function runRestore(job: string, options: RestoreCommandOptions, out: (line: string) => void): Promise<void> {
  validateJobName(job);
  if (options.verifyOnly) return runVerifyOnly(job, options, out);
  if (!options.to) throw new UsageError('--to is required: a file path, a block device, a database URL (postgres://, mysql://), or - for stdout');
  if (options.to.startsWith('agent:'))
    throw new UsageError(`--to ${options.to}: restoring onto an agent's host goes through the media server; add --server URL`);
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  if (isDatabaseUrl(options.to)) return runRestoreToDatabase(job, options, out);
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
  const progress = ProgressLine.forCommand(options.json || toStdout, { summary: true });
  let complete = 0; // bytes of the target known written: windows finish in stream order
  try {
    const result = await restore(repo, snapshot, sink, {
      range,
      onProgress: (p) => {
        complete = p.bytesWritten;
        progress.update(p.bytesWritten, p.bytesTotal);
      },
    });
    progress.done();
    if (partial) await rename(partial, target!.path);
    const seconds = result.durationMs / 1000;
    const summary = {
      snapshot: snapshot.id,
      job,
      startedAt: snapshot.meta.startedAt,
      to: options.to,
      file: null,
      bytes: result.bytesWritten,
      seconds,
      streamHashChecked: result.streamHashChecked,
    };
    if (options.json) out(JSON.stringify(summary));
    else if (!toStdout) {
      out(`restored snapshot ${snapshot.id} of job ${job} (started ${snapshot.meta.startedAt}) to ${options.to}`);
      out(
        `  ${formatBytes(result.bytesWritten)} in ${seconds.toFixed(1)} s${result.streamHashChecked ? '; every chunk and the whole-stream hash checked' : '; every chunk checked (partial restore: no whole-stream hash)'}`,
      );
    } else {
      process.stderr.write(
        `restored snapshot ${snapshot.id} of job ${job} (started ${snapshot.meta.startedAt}): ${formatBytes(result.bytesWritten)}, verified\n`,
      );
    }
  } catch (err) {
    progress.done();
    if (partial) await rm(partial, { force: true });
    // The pipeline cannot know the target's name; the user needs it (disk full: which disk).
    if (err instanceof RestoreWriteError && target) err.message = err.message.replace('the restored data', target.path);
    // A device cannot be left untouched: say which part of it is suspect (the error keeps its class and exit code).
    if (target?.kind === 'device' && err instanceof Error) {
      const end = range?.length ?? total;
      err.message += `; ${target.path}: bytes 0..${complete} are restored, bytes ${complete}..${end} are not (they hold older data or part of this restore)`;
    }
    throw err;
  }
}

/** The snapshot `--at`/`--snapshot` pick, with the repository it is in. */
async function pickSnapshot(job: string, options: RestoreCommandOptions): Promise<{ repo: Repository; snapshot: SnapshotInfo }> {
  if (options.at !== undefined && options.snapshot !== undefined) throw new UsageError('give --at or --snapshot, not both');
  const at = options.at !== undefined ? parseTime(options.at) : undefined;
  const repo = await openRepository(options, true);
  return { repo, snapshot: await repo.findSnapshot(job, { id: options.snapshot, at }) };
}

/** Data damage: IntegrityError and its kin (exit 3). */
export function isDamage(err: unknown): err is Error {
  return err instanceof IntegrityError || err instanceof ObjectFormatError || err instanceof BlobCorruptError;
}

/** `--to postgres://...` / `--to mysql://...`: the whole dump streamed into the database's own tool. */
async function runRestoreToDatabase(job: string, options: RestoreCommandOptions, out: (line: string) => void): Promise<void> {
  if (options.offset !== undefined || options.length !== undefined) throw new UsageError('a database is restored from the whole dump: drop --offset/--length');
  const target = await parseDatabaseTarget(options.to!);
  const { repo, snapshot } = await pickSnapshot(job, options);
  const sink = new DatabaseSink(target, { parallel: options.parallel, dumpBytes: snapshot.meta.logicalBytes });
  const progress = ProgressLine.forCommand(options.json, { summary: true });
  let result;
  try {
    result = await restore(repo, snapshot, sink, { onProgress: (p) => progress.update(p.bytesWritten, p.bytesTotal) });
  } catch (err) {
    progress.done();
    if (isDamage(err) && sink.started) throw damagedAfterData(err, sink);
    throw err;
  } finally {
    progress.done();
  }
  const seconds = result.durationMs / 1000;
  if (options.json) {
    out(
      JSON.stringify({
        snapshot: snapshot.id,
        job,
        startedAt: snapshot.meta.startedAt,
        to: target.name,
        tool: sink.tool,
        bytes: result.bytesWritten,
        seconds,
        streamHashChecked: result.streamHashChecked,
      }),
    );
    return;
  }
  out(`restored snapshot ${snapshot.id} of job ${job} (started ${snapshot.meta.startedAt}) into ${target.name} with ${sink.tool}`);
  out(`  ${formatBytes(result.bytesWritten)} in ${seconds.toFixed(1)} s; every chunk and the whole-stream hash checked`);
}

/**
 * `--verify-only`: the whole restore and every check, nothing written: every chunk
 * against its fingerprint, the whole-stream hash, and for a directory snapshot the
 * archive's trailer and entry table parsed.
 */
async function runVerifyOnly(job: string, options: RestoreCommandOptions, out: (line: string) => void): Promise<void> {
  if (options.to !== undefined) throw new UsageError('--verify-only writes nothing: drop --to');
  if (options.offset !== undefined || options.length !== undefined) throw new UsageError('--verify-only checks the whole snapshot: drop --offset/--length');
  const { repo, snapshot } = await pickSnapshot(job, options);
  const started = Date.now();
  let entries: number | undefined;
  if (snapshot.meta.source.kind === 'directory') {
    const source: ArchiveSource = {
      snapshot: snapshot.id,
      length: snapshot.meta.logicalBytes,
      read: (offset, length) => sinkToIterable((sink) => restore(repo, snapshot, sink, { range: { offset, length } })),
    };
    let n = 0;
    await readArchiveEntries(source, () => void n++);
    entries = n;
  }
  // discards: the workers decode and check every chunk and nothing comes back to this thread.
  const sink = new NullSink({ discards: true });
  const progress = ProgressLine.forCommand(options.json, { summary: true });
  let bytes: number;
  try {
    bytes = (await restore(repo, snapshot, sink, { onProgress: (p) => progress.update(p.bytesWritten, p.bytesTotal) })).bytesWritten;
  } finally {
    progress.done();
  }
  printVerified(out, options.json === true, {
    snapshot: snapshot.id,
    job,
    startedAt: snapshot.meta.startedAt,
    bytes,
    seconds: (Date.now() - started) / 1000,
    entries,
  });
}

/** The summary of a `--verify-only` that found nothing wrong (shared with the server path). */
export function printVerified(
  out: (line: string) => void,
  json: boolean,
  v: { snapshot: string; job: string; startedAt: string; bytes: number; seconds: number; entries?: number },
): void {
  if (json) {
    out(
      JSON.stringify({
        snapshot: v.snapshot,
        job: v.job,
        startedAt: v.startedAt,
        verified: true,
        bytes: v.bytes,
        seconds: v.seconds,
        streamHashChecked: true,
        entries: v.entries ?? null,
      }),
    );
    return;
  }
  const table = v.entries !== undefined ? `, and the archive's entry table (${v.entries} entries) read` : '';
  out(
    `verified snapshot ${v.snapshot} of job ${v.job} (started ${v.startedAt}): ${v.bytes} bytes (${formatBytes(v.bytes)}), every chunk and the stream hash checked${table}; nothing was written`,
  );
}
